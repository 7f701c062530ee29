"""Loading transformers models for local targets: where the model is, how it is quantized and
placed, and which LoRA adapters ride on it. Every mistake is reported with what to do instead."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, MissingDependencyError, missing_extra, third_party_quiet

from ._gguf import converted_model_dir, is_gguf
from ._manifest import MANIFEST
from ._registry import SharedModel

__all__ = ["QUANTIZE", "adapter_scope", "attach_adapters", "check_quantize", "load_causal_lm",
           "local_config", "resolve_source"]

QUANTIZE = (None, "int8", "bnb-8bit", "bnb-4bit")
_SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size")


def import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("torch and transformers", "local", exc) from exc
    return torch, transformers


def resolve_source(path_or_name: str | Path, gguf_file: str | Path | None = None) -> str:
    """A transformers model directory or hub name for ``path_or_name`` (GGUF files converted once)."""
    if gguf_file is not None:
        g = Path(gguf_file)
        if not g.is_absolute() and Path(path_or_name).is_dir():
            g = Path(path_or_name) / g
        return str(converted_model_dir(g))
    p = Path(path_or_name).expanduser()
    if p.is_file():
        if is_gguf(p):
            return str(converted_model_dir(p))
        raise ConfigError(f"{str(p)!r} is a file but not a GGUF model; pass a transformers model directory, "
                          "a hub name, or a .gguf file")
    if p.is_dir():
        if (p / "config.json").exists():
            return str(p.resolve())
        if (p / "adapter_config.json").exists():
            raise ConfigError(f"{str(p)!r} is a LoRA adapter, not a model: pass its base model as the path "
                              f"and this directory as lora=, e.g. HFTarget(base, lora={str(p)!r})")
        if (p / MANIFEST).exists():
            raise ConfigError(f"{str(p)!r} holds a {MANIFEST}: load it with costmw.adapters.load({str(p)!r})")
        raise ConfigError(f"{str(p)!r} is not a model directory (it has no config.json)")
    text = str(path_or_name)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise ConfigError(f"model path {text!r} does not exist")
    return text  # a hub name, resolved by transformers (from its local cache when offline)


def local_config(source: str) -> dict[str, Any] | None:
    """The model's config.json when ``source`` is a local directory."""
    file = Path(source) / "config.json"
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_quantize(quantize: str | None, device_map: Any) -> None:
    """Fail fast on a quantization this machine or this placement cannot run."""
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be one of {QUANTIZE[1:]} or None, got {quantize!r}")
    if quantize == "int8" and device_map not in (None, "cpu", {"": "cpu"}):
        raise ConfigError("quantize='int8' is CPU dynamic quantization; on GPUs use quantize='bnb-8bit'")
    if quantize in ("bnb-8bit", "bnb-4bit"):
        torch, _ = import_torch_transformers()
        if not torch.cuda.is_available():
            raise ConfigError(f"quantize={quantize!r} runs on CUDA GPUs only (bitsandbytes), and no CUDA device "
                              "is available here; on CPU use quantize='int8' or a GGUF model with LlamaCppTarget")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise MissingDependencyError(f"quantize={quantize!r} needs bitsandbytes on a CUDA machine: "
                                         "pip install bitsandbytes")


def _dtype(torch: Any, dtype: Any, on_gpu: bool) -> Any:
    if dtype is None:
        return "auto" if on_gpu else torch.float32
    if isinstance(dtype, str) and dtype != "auto":
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"dtype {dtype!r} is not a torch dtype (try 'float32', 'bfloat16', 'float16', 'auto')")
        return value
    return dtype


def _load_kwargs(torch: Any, transformers: Any, quantize: str | None, device_map: Any,
                 max_memory: Mapping[Any, Any] | None, dtype: Any, trust_remote_code: bool) -> dict[str, Any]:
    on_gpu = quantize in ("bnb-8bit", "bnb-4bit") or (device_map not in (None, "cpu") and torch.cuda.is_available())
    kwargs: dict[str, Any] = {"dtype": _dtype(torch, dtype, on_gpu), "trust_remote_code": trust_remote_code}
    if quantize == "bnb-8bit":
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
    elif quantize == "bnb-4bit":
        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
            bnb_4bit_use_double_quant=True)
    if quantize in ("bnb-8bit", "bnb-4bit") and device_map is None:
        device_map = "auto"
    if device_map is not None:
        if importlib.util.find_spec("accelerate") is None:
            raise missing_extra("accelerate (for device_map)", "local")
        kwargs["device_map"] = device_map
    if max_memory is not None:
        if device_map is None:
            raise ConfigError("max_memory= needs device_map= (e.g. device_map='auto') to place the layers")
        kwargs["max_memory"] = dict(max_memory)
    return kwargs


def load_causal_lm(key: Any, source: str, *, quantize: str | None, device_map: Any,
                   max_memory: Mapping[Any, Any] | None, dtype: Any, trust_remote_code: bool,
                   adapters: tuple[str, ...] = (), merge: bool = False) -> SharedModel:
    """Load a causal LM and its tokenizer; ``adapters`` are attached (and merged with ``merge``) before int8."""
    torch, transformers = import_torch_transformers()
    kwargs = _load_kwargs(torch, transformers, quantize, device_map, max_memory, dtype, trust_remote_code)
    try:
        with third_party_quiet():
            model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"could not load {source!r} as a causal language model: {exc}") from exc
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "left"
    entry = SharedModel(key=key, model=model, tokenizer=tokenizer, info={"source": source, "quantize": quantize})
    if adapters:
        attach_adapters(entry, adapters)
        if merge:
            entry.model = entry.model.merge_and_unload()
            entry.info["merged"] = list(adapters)
            entry.adapters.clear()
    if quantize == "int8":
        from ._int8 import quantize_int8

        entry.info["int8"] = quantize_int8(entry.model, tokenizer)
        _release_freed_memory()
    return entry


def _release_freed_memory() -> None:
    """Hand the memory of the dropped fp32 weights back to the OS (glibc keeps freed heap otherwise)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the process reuses the memory instead
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _adapter_config(path: Path) -> dict[str, Any]:
    file = path / "adapter_config.json"
    if not path.is_dir() or not file.exists():
        hint = " (it is a model directory: use it as the base)" if (path / "config.json").exists() else ""
        raise ConfigError(f"{str(path)!r} is not a LoRA adapter directory (no adapter_config.json){hint}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{str(file)!r} is not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _check_base(path: Path, config: dict[str, Any], model: Any) -> None:
    """Compare the adapter's recorded base with the loaded one, when the recorded base is at hand."""
    base = config.get("base_model_name_or_path")
    base_config = local_config(str(base)) if base else None
    if base_config is None:
        return
    ours = model.config.to_dict()
    diffs = [f"{k} {base_config[k]!r} vs {ours.get(k)!r}" for k in _SHAPE_KEYS
             if k in base_config and base_config[k] != ours.get(k)]
    if diffs:
        raise ConfigError(f"LoRA adapter {str(path)!r} was made for a different base model ({base}): "
                          + ", ".join(diffs) + "; load it on the base it was trained from")


def attach_adapters(entry: SharedModel, paths: tuple[str, ...]) -> dict[str, str]:
    """Attach LoRA adapters (directories) to a shared model once each; returns path -> peft name."""
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise missing_extra("peft", "local", exc) from exc
    with entry.lock:
        for raw in paths:
            path = Path(raw).resolve()
            if str(path) in entry.adapters:
                continue
            config = _adapter_config(path)
            _check_base(path, config, entry.model)
            name = f"adapter{len(entry.adapters)}"
            try:
                if isinstance(entry.model, PeftModel):
                    entry.model.load_adapter(str(path), adapter_name=name)
                else:
                    with third_party_quiet():
                        entry.model = PeftModel.from_pretrained(entry.model, str(path), adapter_name=name)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise ConfigError(f"LoRA adapter {str(path)!r} does not fit base model "
                                  f"{entry.info.get('source')!r} (was it trained on another base?): {exc}") from exc
            entry.model.eval()
            entry.adapters[str(path)] = name
    return {p: entry.adapters[str(Path(p).resolve())] for p in paths}


@contextlib.contextmanager
def adapter_scope(entry: SharedModel, names: list[str | None]) -> Iterator[dict[str, Any]]:
    """Make the adapters of one batch active; yields extra ``generate`` kwargs. Hold ``entry.lock``."""
    model = entry.model
    if not entry.adapters:
        yield {}
        return
    distinct = set(names)
    if distinct == {None}:
        with model.disable_adapter():
            yield {}
    elif len(distinct) == 1:
        model.set_adapter(next(iter(distinct)))
        yield {}
    else:  # one forward pass, a different adapter on each row
        yield {"adapter_names": [n if n is not None else "__base__" for n in names]}
