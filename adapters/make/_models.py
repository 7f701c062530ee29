"""Loading, saving and measuring models for the tools that make cheaper ones.

A model argument may be a transformers folder (``config.json`` plus weights) or a folder with a
``costmw-target.json`` manifest of kind "hf"; a LoRA adapter named there is merged in, so the tools
chain (tune, then prune, then quantize). Saving is atomic: a folder appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, missing_extra

__all__ = ["atomic_dir", "dir_size", "load_model", "model_bytes", "resolve_model", "save_model"]

MANIFEST = "costmw-target.json"


def require(extra: str = "local") -> None:
    """Fail with an install hint when torch or transformers is missing."""
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise missing_extra("torch and transformers", extra, exc) from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with contextlib.suppress(Exception):
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def resolve_model(path: str | Path, what: str = "base model") -> tuple[Path, Path | None]:
    """(model folder, LoRA adapter folder or None) for ``path``; ConfigError says what to fix."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} {str(p)!r} does not exist: pass a transformers model folder "
                          "(config.json and weights) or a folder made by costmw")
    if (p / MANIFEST).exists():
        from ..local._manifest import read_manifest

        m = read_manifest(p)
        if m["kind"] != "hf":
            raise ConfigError(f"{what} {str(p)!r} is a {m['kind']!r} target; costmw's tools need a transformers model")
        if m.get("quantize"):
            raise ConfigError(f"{what} {str(p)!r} is quantized ({m['quantize']}); "
                              "use the unquantized model it came from")
        base = Path(m["base"])
        if not (base / "config.json").exists():
            raise ConfigError(f"{what} {str(p)!r}: its manifest's base {str(base)!r} has no config.json")
        return base, Path(m["adapter"]) if m.get("adapter") else None
    if (p / "adapter_config.json").exists():
        raise ConfigError(f"{what} {str(p)!r} is a LoRA adapter, not a model: pass the folder made by "
                          "`costmw tune lora` (it has a costmw-target.json) or the base model")
    if not (p / "config.json").exists():
        raise ConfigError(f"{what} {str(p)!r} has no config.json: it is not a transformers model folder")
    return p, None


def check_adapter(base: Path, adapter: Path) -> None:
    """Fail when the LoRA adapter's shapes do not fit the base model (the adapter was made for another)."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    files = list(adapter.glob("adapter_model.safetensors"))
    if not files:
        raise ConfigError(f"adapter {str(adapter)!r} has no adapter_model.safetensors")
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base))  # type: ignore[no-untyped-call]
    modules = dict(skeleton.named_modules())
    with safe_open(str(files[0]), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            if ".lora_A." not in key:
                continue
            name = key.split(".lora_A.")[0].removeprefix("base_model.model.")
            module = modules.get(name)
            width = f.get_slice(key).get_shape()[-1]
            if module is None or getattr(module, "in_features", width) != width:
                raise ConfigError(f"adapter {str(adapter)!r} does not match base model {str(base)!r} "
                                  f"(its layer {name!r} is missing or has another width); pass the base it was "
                                  "trained from")


def load_model(path: str | Path, *, merge_adapter: bool = True, what: str = "base model") -> tuple[Any, Any]:
    """(model, tokenizer) in float32 on the CPU; a manifest's LoRA adapter is merged into the weights."""
    require()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, adapter = resolve_model(path, what)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tok_dir = Path(path) if (Path(path) / "tokenizer_config.json").exists() else base
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter is not None and merge_adapter:
        from peft import PeftModel

        check_adapter(base, adapter)
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer


def swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by the finished folder ``tmp`` (the old one is removed only after the swap)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it becomes ``final``, on error it vanishes."""
    target = Path(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        swap_in(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_model(model: Any, tokenizer: Any, directory: str | Path) -> Path:
    """Save a model and its tokenizer as safetensors, atomically."""
    with atomic_dir(directory) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(directory)


def dir_size(path: str | Path) -> int:
    """Bytes of the weight files under ``path`` (safetensors, bin, gguf)."""
    p = Path(path)
    files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file() and "checkpoints" not in f.parts]
    return sum(f.stat().st_size for f in files if f.suffix in (".safetensors", ".bin", ".gguf", ".pt"))


def model_bytes(model: Any) -> int:
    """Bytes the model's weights take in memory (int8-quantized linear layers counted as stored)."""
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        if hasattr(module, "_packed") and hasattr(module, "weight_bytes"):  # costmw's own int8 layers
            total += int(module.weight_bytes)
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(module, "weight") and callable(module.weight):
            w = module.weight()
            total += w.numel() * w.element_size() + 8
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            total += 0 if bias is None else bias.numel() * bias.element_size()
            continue
        for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
    return total


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)
