"""Quantization: the same model in fewer bits, with its size, speed and quality measured.

- ``int8``: int8 weights and dynamically quantized activations for CPUs. The target folder holds a
  manifest with ``quantize: "int8"`` pointing at the float32 model, which
  :func:`costmw.adapters.load` quantizes as it loads (a LoRA adapter is merged and saved first):
  torch cannot save packed int8 weights without pickle, so the int8 form is rebuilt at load time.
  The measurements here use the same quantizer the loader uses.
- ``gguf``: a GGUF file (Q8_0, F16 or F32) for llama.cpp, written by costmw's own exporter for
  llama-like models; its manifest is of kind "llamacpp".
- ``bnb-8bit`` / ``bnb-4bit``: a manifest with a bitsandbytes configuration; loading it needs
  CUDA and bitsandbytes, so on a CPU it is written but not measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._gguf_export import GGUF_TYPES, export_gguf
from ._models import dir_size, load_model, model_bytes, resolve_model, save_model
from ._result import MakeResult
from ._sft import clear_manifest, get_split, quality_row, register
from ._tokenize import encode_examples, format_prompt

__all__ = ["BNB_CONFIGS", "int8_dynamic", "quantize"]

METHODS = ("int8", "gguf", "bnb-8bit", "bnb-4bit")
BNB_CONFIGS: dict[str, dict[str, Any]] = {
    "bnb-8bit": {"load_in_8bit": True},
    "bnb-4bit": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                 "bnb_4bit_compute_dtype": "bfloat16"},
}


def int8_dynamic(model: Any, tokenizer: Any = None) -> Any:
    """``model`` with int8 linear layers for CPU inference, made exactly as :func:`costmw.adapters.load`
    makes it for a manifest with ``quantize: "int8"`` (smoothed, per-channel int8 weights)."""
    from ..local._int8 import quantize_int8

    quantize_int8(model, tokenizer)
    return model


def _row(stage: str, model: Any, tokenizer: Any, val_ex: list[Any], val_enc: list[Any], speed_ex: list[Any],
         eval_answers: int, max_new_tokens: int) -> dict[str, Any]:
    return {"stage": stage, "memory_mb": model_bytes(model) / 2**20,
            **quality_row(model, tokenizer, val_ex, val_enc, speed_ex, eval_answers=eval_answers,
                          max_new_tokens=max_new_tokens)}


def _gguf_row(path: Path, val_ex: list[Any], speed_prompts: list[str], eval_answers: int,
              max_new_tokens: int) -> dict[str, Any]:
    """Quality and speed of the GGUF file through llama-cpp-python (skipped when it is not installed).

    Speed is measured like :func:`measure_speed`: 16 new tokens per prompt, best of two runs."""
    import time

    import torch

    from ._evaluate import agreement

    row: dict[str, Any] = {"stage": "gguf", "disk_mb": path.stat().st_size / 2**20}
    try:
        from llama_cpp import Llama
    except ImportError:
        row["note"] = "llama-cpp-python not installed: file written, not measured"
        return row
    threads = torch.get_num_threads()
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)

    def ask(ex: Any, n: int) -> str:
        out: Any = llm.create_chat_completion(messages=ex.messages, max_tokens=n, temperature=0.0)
        return str(out["choices"][0]["message"]["content"] or "").strip()

    held = val_ex[:eval_answers]
    if held:
        answers = [ask(ex, max_new_tokens) for ex in held]
        refs = [ex.answer for ex in held]
        row.update(agreement_exact=agreement(answers, refs, "exact"), agreement_f1=agreement(answers, refs, "f1"))
    wall, cpu = [], []
    for prompt in speed_prompts:
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        best = (float("inf"), float("inf"))
        for _ in range(2):
            llm.reset()  # type: ignore[no-untyped-call]
            t0, c0 = time.perf_counter(), time.process_time()
            for k, _token in enumerate(llm.generate(tokens, temp=0.0)):
                if k + 1 >= 16:
                    break
            best = min(best[0], time.perf_counter() - t0), min(best[1], time.process_time() - c0)
        wall.append(best[0])
        cpu.append(best[1])
    if wall:
        row["ms_per_prompt"] = 1000 * sum(wall) / len(wall)
        row["cpu_ms_per_prompt"] = 1000 * sum(cpu) / len(cpu)
    return row


def quantize(model: str | Path, out: str | Path, *, method: str = "int8", gguf_type: str = "q8_0", data: Any = None,
             validation: Any = 0.1, max_length: int = 256, eval_answers: int = 32, max_new_tokens: int = 32,
             speed_prompts: int = 4, measure: bool = True, name: str | None = None, price: Any = None) -> MakeResult:
    """Quantize ``model`` with ``method`` ("int8", "gguf", "bnb-8bit", "bnb-4bit") into a target folder.

    With ``data``, quality (validation loss, agreement with the reference answers) is measured
    before and after; size and speed are measured on a few prompts.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if method == "gguf" and gguf_type not in GGUF_TYPES:
        raise ConfigError(f"gguf_type must be one of {GGUF_TYPES}, got {gguf_type!r}")
    out = Path(out)
    base_dir, adapter = resolve_model(model)
    if method.startswith("bnb"):
        return _bnb(out, method, base_dir, adapter, name, price)
    _, val_ex = get_split(data, validation) if data is not None else ([], [])
    net, tokenizer = load_model(model)
    val_enc = encode_examples(tokenizer, val_ex, max_length, what="validation")
    speed_ex = val_ex[:speed_prompts] or [_probe()]
    rows = []
    if measure:
        rows.append({**_row("float32", net, tokenizer, val_ex, val_enc, speed_ex, eval_answers, max_new_tokens),
                     "disk_mb": dir_size(base_dir) / 2**20})
    clear_manifest(out)
    out.mkdir(parents=True, exist_ok=True)
    if method == "int8":
        if adapter is not None:  # the loader quantizes a plain model: save the merged weights first
            base_dir = save_model(net, tokenizer, out / "model")
        quantized = int8_dynamic(net, tokenizer)
        if measure:
            rows.append(_row("int8", quantized, tokenizer, val_ex, val_enc, speed_ex, eval_answers, max_new_tokens))
        metrics: dict[str, Any] = {"technique": "quantize-int8", "stages": rows}
        manifest = register(out, base=base_dir, quantize="int8", metrics=metrics, name=name, price=price,
                            created_by="costmw quantize --method int8")
    else:
        path = export_gguf(net, tokenizer, out / f"model-{gguf_type}.gguf", qtype=gguf_type, model_dir=base_dir,
                           name=name or out.name)
        if measure:
            prompts = [format_prompt(tokenizer, ex.messages) for ex in speed_ex]
            rows.append(_gguf_row(path, val_ex, prompts, eval_answers, max_new_tokens))
        metrics = {"technique": f"quantize-gguf-{gguf_type}", "stages": rows}
        manifest = _register_gguf(out, path, metrics, name, price)
    first, last = (rows[0], rows[-1]) if rows else ({}, {})
    before = first.get("memory_mb")
    after = last.get("memory_mb", last.get("disk_mb"))
    message = f"{method} quantization" + (f": {before:.1f} MB -> {after:.1f} MB" if before and after else "")
    return MakeResult(path=out, manifest=manifest, metrics=metrics, message=message)


def _probe() -> Any:
    from ._examples import Example

    return Example(messages=[{"role": "user", "content": "Say hello."}], answer="Hello.")


def _register_gguf(out: Path, path: Path, metrics: dict[str, Any], name: str | None, price: Any) -> Path:
    from ..local._manifest import write_manifest
    from ._sft import _price_dict

    fields: dict[str, Any] = {"gguf_file": path.resolve(), "metrics": metrics,
                              "created_by": "costmw quantize --method gguf"}
    if price is not None:
        fields["price"] = _price_dict(price)
    return write_manifest(out, kind="llamacpp", base=path.resolve(), name=name, **fields)


def _bnb(out: Path, method: str, base_dir: Path, adapter: Path | None, name: str | None, price: Any) -> MakeResult:
    """Write a bitsandbytes target; it runs only where CUDA and bitsandbytes are present."""
    import importlib.util

    cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = bool(torch.cuda.is_available())
    ready = cuda and importlib.util.find_spec("bitsandbytes") is not None
    metrics = {"technique": f"quantize-{method}", "config": BNB_CONFIGS[method], "runnable_here": ready}
    clear_manifest(out)
    manifest = register(out, base=base_dir, adapter=adapter, quantize=method, metrics=metrics, name=name, price=price,
                        created_by=f"costmw quantize --method {method}")
    note = "" if ready else " (needs CUDA and bitsandbytes to load; not measured here)"
    return MakeResult(path=out, manifest=manifest, metrics=metrics, message=f"{method} config written{note}")
