"""In-process vector search over one semantic group: exact NumPy by default, and an HNSW index
(usearch, the ``ann`` extra) once a group grows past ``ann_min`` entries. Either way the
candidates are re-scored exactly, so a similarity means the same thing on every path."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..._errors import missing_extra

if TYPE_CHECKING:
    import numpy as np

__all__ = ["VectorIndex", "ann_available"]

log = logging.getLogger("costmw.cache")


_blas: Any = None


def _one_blas_thread() -> Any:
    """A context that runs BLAS on one thread (threadpoolctl, when installed): a matrix-vector
    product of this size is memory-bound, and on a busy machine extra BLAS threads cost 10-30x."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        except Exception:
            _blas = False
    if _blas is False:
        import contextlib

        return contextlib.nullcontext()
    return _blas.limit(limits=1, user_api="blas")


def ann_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("usearch") is not None


class VectorIndex:
    """Keys and unit vectors of one group. ``ann``: "auto" (HNSW past ``ann_min`` entries when
    usearch is installed), True (HNSW past ``ann_min``, usearch required) or False (always exact)."""

    def __init__(self, dim: int, *, ann: bool | str = "auto", ann_min: int = 20_000) -> None:
        import numpy as np

        if ann is True and not ann_available():
            raise missing_extra("usearch", "ann")
        self.dim = dim
        self._ann_wanted = ann_available() if ann == "auto" else bool(ann)
        self._ann_min = ann_min
        self._mat = np.zeros((16, dim), dtype=np.float32)
        self._keys: list[str] = []
        self._pos: dict[str, int] = {}
        self._labels: list[int] = []
        self._label_pos: dict[int, int] = {}
        self._next_label = 0
        self._hnsw: Any = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._pos

    @property
    def uses_ann(self) -> bool:
        return self._hnsw is not None

    def add(self, key: str, vector: np.ndarray) -> None:
        import numpy as np

        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"vector has {v.shape[0]} dimensions, the index {self.dim}")
        with self._lock:
            pos = self._pos.get(key)
            if pos is None:
                pos = len(self._keys)
                if pos == self._mat.shape[0]:
                    grown = np.zeros((pos * 2, self.dim), dtype=np.float32)
                    grown[:pos] = self._mat
                    self._mat = grown
                self._keys.append(key)
                self._pos[key] = pos
                self._labels.append(-1)
            elif self._labels[pos] >= 0:
                self._hnsw.remove(self._labels[pos])
                del self._label_pos[self._labels[pos]]
                self._labels[pos] = -1
            self._mat[pos] = v
            if self._hnsw is not None:
                self._pending.add(key)
            elif self._ann_wanted and len(self._keys) >= self._ann_min:
                self._start_hnsw()

    def remove(self, key: str) -> None:
        with self._lock:
            pos = self._pos.pop(key, None)
            if pos is None:
                return
            self._pending.discard(key)
            if self._labels[pos] >= 0:
                self._hnsw.remove(self._labels[pos])
                del self._label_pos[self._labels[pos]]
            last = len(self._keys) - 1
            if pos != last:
                moved = self._keys[last]
                self._keys[pos] = moved
                self._pos[moved] = pos
                self._mat[pos] = self._mat[last]
                self._labels[pos] = self._labels[last]
                if self._labels[pos] >= 0:
                    self._label_pos[self._labels[pos]] = pos
            self._keys.pop()
            self._labels.pop()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest keys with their cosine similarity, best first."""
        import numpy as np

        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._lock:
            n = len(self._keys)
            if n == 0 or k <= 0:
                return []
            if self._hnsw is not None:
                if self._pending:
                    self._hnsw_add([self._pos[k] for k in self._pending])
                    self._pending.clear()
                found = self._hnsw.search(q, min(n, max(k * 4, 16)))
                rows = np.asarray([self._label_pos[int(lb)] for lb in found.keys if int(lb) in self._label_pos],
                                  dtype=np.int64)
                sims = self._mat[rows] @ q
            else:
                rows = np.arange(n)
                if n >= 4096:
                    with _one_blas_thread():
                        sims = self._mat[:n] @ q
                else:
                    sims = self._mat[:n] @ q
            if sims.shape[0] > k:
                top = np.argpartition(-sims, k - 1)[:k]
                rows, sims = rows[top], sims[top]
            order = np.argsort(-sims, kind="stable")
            return [(self._keys[int(rows[i])], float(sims[i])) for i in order]

    # -- the HNSW index ------------------------------------------------------------------
    def _start_hnsw(self) -> None:
        """Create the HNSW index; vectors join it in batches at the next search."""
        from usearch.index import Index

        self._hnsw = Index(ndim=self.dim, metric="cos", dtype="i8", connectivity=16,
                           expansion_add=32, expansion_search=128)
        self._pending = set(self._keys)
        log.info("costmw cache: a group passed %d entries; searching it with an HNSW index", self._ann_min)

    def _hnsw_add(self, positions: list[int]) -> None:
        import numpy as np

        labels = np.arange(self._next_label, self._next_label + len(positions), dtype=np.uint64)
        self._next_label += len(positions)
        for pos, label in zip(positions, labels):
            self._labels[pos] = int(label)
            self._label_pos[int(label)] = pos
        self._hnsw.add(labels, self._mat[positions], threads=0)
