"""GPTCacheStore: keep a GPTCache data manager (Milvus, FAISS, pgvector, ... behind SQLite,
Postgres, ...) as costmw's storage, so a GPTCache setup carries over. costmw's keys, scopes,
verifier and threshold still decide every hit; GPTCache only stores and finds vectors."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import cache_root, missing_extra

from ._entry import Entry
from ._store import Store

if TYPE_CHECKING:
    import numpy as np

__all__ = ["GPTCacheStore"]


def default_data_manager(path: str | Path, dimension: int, max_size: int) -> Any:
    """GPTCache's SQLite + FAISS data manager in ``path`` (its dependencies checked first, so
    GPTCache never tries to install anything itself)."""
    for module, package in (("gptcache", "gptcache"), ("sqlalchemy", "sqlalchemy"), ("faiss", "faiss-cpu")):
        if importlib.util.find_spec(module) is None:
            raise missing_extra(package, "gptcache")
    from gptcache.manager import CacheBase, VectorBase, get_data_manager

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{folder / 'gptcache.db'}"),
        VectorBase("faiss", dimension=dimension, index_path=str(folder / "faiss.index"), top_k=10),
        max_size=max_size)


class GPTCacheStore(Store):
    """A store over a GPTCache data manager. Pass ``data_manager`` (e.g. built with
    ``gptcache.manager.get_data_manager``) or a ``path`` for GPTCache's SQLite + FAISS layout.

    Each entry is saved as a GPTCache row whose question is the user's turn and whose answer is
    costmw's entry JSON. GPTCache has no lookup by key, so exact hits are found through the
    vector search too; ``top_k`` should grow with the number of tenants sharing the manager.
    """

    name = "gptcache"

    def __init__(self, data_manager: Any = None, *, path: str | Path | None = None, dimension: int = 384,
                 max_entries: int = 100_000, top_k: int = 10) -> None:
        self.max_entries = max_entries
        self.top_k = top_k
        self._dm = data_manager if data_manager is not None else default_data_manager(
            path or cache_root() / "gptcache", dimension, max_entries)
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def data_manager(self) -> Any:
        return self._dm

    def get(self, key: str, now: float) -> Entry | None:
        return None

    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        import numpy as np

        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._lock:
            found = self._dm.search(q, top_k=max(k, self.top_k)) or []
            out: list[tuple[Entry, float]] = []
            for res in found:
                data = self._dm.get_scalar_data(res)
                if data is None or not data.answers:
                    continue
                answer = data.answers[0]
                try:
                    entry = Entry.from_json(str(getattr(answer, "answer", answer)))
                except (ValueError, KeyError, TypeError):
                    continue  # a row GPTCache itself wrote, not one of costmw's
                if entry.group != group or entry.expired(now):
                    continue
                stored = np.asarray(data.embedding_data, dtype=np.float32).reshape(-1)
                entry.vector = stored
                self._ids[entry.key] = int(res[1])
                out.append((entry, float(stored @ q)))
        out.sort(key=lambda pair: -pair[1])
        return out[:k]

    def put(self, entry: Entry) -> None:
        if entry.vector is None:
            return  # GPTCache finds rows only by vector
        with self._lock:
            self._dm.save(entry.text, entry.to_json(), entry.vector)

    def touch(self, key: str, now: float) -> None:
        with self._lock:
            row = self._ids.get(key)
            if row is not None:
                self._dm.hit_cache_callback((0.0, row))

    def delete(self, key: str) -> None:
        with self._lock:
            row = self._ids.pop(key, None)
            if row is not None:
                self._forget([row])

    def _forget(self, rows: list[int]) -> None:
        self._dm.s.mark_deleted(rows)
        self._dm.v.delete(rows)
        self._dm.s.clear_deleted_data()

    def clear(self) -> None:
        with self._lock:
            rows = [int(r) for r in self._dm.s.get_ids(deleted=False)]
            if rows:
                self._forget(rows)
            self._ids.clear()

    def count(self) -> int:
        with self._lock:
            return int(self._dm.s.count())

    def close(self) -> None:
        with self._lock:
            self._dm.close()
