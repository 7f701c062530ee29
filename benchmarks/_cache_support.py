"""Shared pieces of the cache benchmark: data, cached embeddings, and the GPTCache side."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
PAIRS = REPO / "benchmarks" / "data" / "cache_pairs.tsv"
DEV_SIBLINGS = REPO / "benchmarks" / "data" / "cache_dev_siblings.tsv"
DEV_NEAR = REPO / "benchmarks" / "data" / "cache_dev_near.tsv"  # near-verbatim siblings
DEV_PAIRS = REPO / "tests" / "plugins" / "cache" / "data" / "verifier_dev.tsv"
MOCK_DATA = SHARED_DATA / "gptcache" / "mock_data.json"


def load_mock_data() -> list[dict[str, str]] | None:
    if not MOCK_DATA.exists():
        return None
    return list(json.loads(MOCK_DATA.read_text(encoding="utf-8")))


def mock_data_split(rows: Sequence[dict[str, str]] | None = None) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """mock_data.json cut in two by origin, the same way every time: (train half, held-out half).

    The rule lives with the learned verifier's training (an origin is held out when the first
    byte of the SHA-256 of its text is odd); benchmarks report the held-out half.
    """
    from costmw.plugins.cache._train import mock_data_split as split

    return split(load_mock_data() or [] if rows is None else list(rows))


def load_dev_siblings() -> list[dict[str, str]]:
    """costmw's tuning sets in mock_data's shape: near-duplicate origins, one paraphrase each."""
    rows = []
    for path in (DEV_SIBLINGS, DEV_NEAR):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                group, origin, similar = line.split("\t")
                rows.append({"group": f"{path.stem}:{group}", "origin": origin, "similar": similar})
    return rows


def load_pairs(path: Path = PAIRS) -> list[tuple[bool, str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, kind, a, b = line.split("\t")
            rows.append((label == "1", kind, a, b))
    return rows


def minilm_vectors(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2 vectors of ``texts``, computed once and kept in benchmarks/results/."""
    unique = sorted(set(texts))
    digest = hashlib.sha256("\x1f".join(unique).encode()).hexdigest()[:12]
    path = RESULTS / f"cache_minilm_{digest}.npy"
    if path.exists():
        matrix = np.load(path)
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from costmw.embeddings import LocalEmbedder

        matrix = LocalEmbedder(cache_size=1).embed(unique)
        RESULTS.mkdir(parents=True, exist_ok=True)
        np.save(path, matrix)
    return dict(zip(unique, matrix))


class PrecomputedEmbedder:
    """Looks vectors up instead of computing them, so lookups are timed without embedding; it
    names the same space as the model that made the vectors. Texts it was not given (the cache's
    template check embeds parts of prompts) are embedded by all-MiniLM-L6-v2 on the spot."""

    def __init__(self, vectors: dict[str, np.ndarray], name: str = "all-MiniLM-L6-v2") -> None:
        self.vectors = vectors
        self.name = name
        self.dim = int(next(iter(vectors.values())).shape[0]) if vectors else 0
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from costmw.embeddings import LocalEmbedder

                self._model = LocalEmbedder()
            self.vectors.update(zip(missing, self._model.embed(missing)))
        return np.stack([self.vectors[t] for t in texts])


def gptcache_available() -> str | None:
    """None when GPTCache with SQLite + FAISS can run here, else why not (never let GPTCache
    install packages itself)."""
    for module in ("gptcache", "sqlalchemy", "faiss"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


class GPTCacheSide:
    """GPTCache through its own API: SQLite + FAISS data manager, the given vectors passed in as
    the embedding function, and its default similarity evaluation (search distance)."""

    def __init__(self, vectors: dict[str, np.ndarray], threshold: float = 0.8, top_k: int = 1) -> None:
        import faiss
        from gptcache import Cache, Config
        from gptcache.manager import CacheBase, VectorBase, get_data_manager

        faiss.omp_set_num_threads(1)  # the same one thread costmw's search gets
        from gptcache.processor.pre import get_prompt
        from gptcache.similarity_evaluation import SearchDistanceEvaluation

        self._dir = tempfile.TemporaryDirectory(prefix="costmw-gptcache-")
        dim = int(next(iter(vectors.values())).shape[0])
        manager = get_data_manager(
            CacheBase("sqlite", sql_url=f"sqlite:///{self._dir.name}/cache.db"),
            VectorBase("faiss", dimension=dim, index_path=f"{self._dir.name}/faiss.index", top_k=top_k),
            max_size=10_000_000)
        self.cache = Cache()
        self.cache.init(pre_embedding_func=get_prompt, embedding_func=lambda text, **_: vectors[text],
                        data_manager=manager, similarity_evaluation=SearchDistanceEvaluation(),
                        config=Config(similarity_threshold=threshold))

    def set_threshold(self, threshold: float) -> None:
        from gptcache import Config

        self.cache.config = Config(similarity_threshold=threshold)

    def load(self, questions: list[str], answers: list[str]) -> None:
        for i in range(0, len(questions), 5000):
            self.cache.import_data(questions[i:i + 5000], answers[i:i + 5000])

    def get(self, question: str) -> Any:
        from gptcache.adapter.api import get

        return get(question, cache_obj=self.cache)

    def close(self) -> None:
        manager = self.cache.data_manager
        try:
            manager.close()
        finally:
            manager.close = lambda: None  # GPTCache closes it again at exit, after the folder is gone
            self._dir.cleanup()


def gptcache_threshold_for_cosine(cosine: float) -> float:
    """GPTCache's threshold that admits exactly cosine >= ``cosine``: its score is 4 minus the
    squared L2 distance of unit vectors (2 + 2cos), compared with 4 x threshold."""
    return (cosine + 1.0) / 2.0


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_s) * 1000.0
    return {"p50_ms": round(float(np.percentile(arr, 50)), 4), "p99_ms": round(float(np.percentile(arr, 99)), 4)}
