"""Tiny random llama models with their own small tokenizer, for tests, examples and dry runs.

A few hundred thousand parameters train in seconds on a CPU, so every tool can be exercised end
to end without downloading anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ._models import require, save_model

__all__ = ["CHATML_TEMPLATE", "tiny_llama"]

CHATML_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_llama(directory: str | Path, texts: Iterable[str], *, hidden_size: int = 48, layers: int = 2,
               heads: int = 4, kv_heads: int = 2, intermediate_size: int = 96, vocab_size: int = 400,
               seed: int = 0) -> Path:
    """Write a randomly initialised LlamaForCausalLM and a byte-level BPE tokenizer trained on ``texts``
    (ChatML chat template) into ``directory``, and return it."""
    require()
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([*list(texts), "system user assistant"], trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         head_dim=hidden_size // heads, max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return save_model(model, tokenizer, directory)
