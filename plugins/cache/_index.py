"""In-process vector search over one semantic group. Small groups are searched exactly (one
NumPy matrix-vector product). Past ``ann_min`` entries a dependency-free prefilter takes over:
each vector also keeps a 384-bit sign code (SimHash: the signs of its projections on fixed random
hyperplanes, packed into uint64 words), the Hamming distance on the codes picks a few hundred
candidates, and those are re-scored exactly in float32. An HNSW index (usearch, the ``ann``
extra) is there on request. Every path re-scores exactly, so a similarity means the same thing
on all of them."""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import ConfigError, missing_extra

if TYPE_CHECKING:
    import numpy as np

__all__ = ["VectorIndex", "ann_available", "check_ann"]

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


_CODE_WORDS = 6  # 384 sign bits per vector
_HEAD_WORDS = 2  # the first 128 bits, read by stage one for every row
_CODE_SEED = 20240917


@functools.lru_cache(maxsize=4)
def _hyperplanes(dim: int) -> np.ndarray:
    """Fixed random hyperplanes, the same in every process (codes are never stored)."""
    import numpy as np

    return np.random.default_rng(_CODE_SEED).standard_normal((dim, 64 * _CODE_WORDS)).astype(np.float32)


def _bits_available() -> bool:
    import numpy as np

    return hasattr(np, "bitwise_count")  # NumPy 2.0 and later


def check_ann(ann: object) -> None:
    """Fail fast on a bad ``ann`` option, or on HNSW without usearch installed."""
    if not (isinstance(ann, bool) or ann in ("auto", "bits", "hnsw")):
        raise ConfigError(f"ann must be 'auto', 'bits', 'hnsw', True or False, got {ann!r}")
    if ann in (True, "hnsw") and not ann_available():
        raise missing_extra("usearch", "ann")


class VectorIndex:
    """Keys and unit vectors of one group.

    ``ann`` picks the search once the group has ``ann_min`` entries or more: "auto" or "bits"
    (the sign-code prefilter with exact re-scoring, no dependency), True or "hnsw" (usearch's HNSW
    index, the ``ann`` extra) or False (always exact). Below ``ann_min`` the search is exact.
    """

    def __init__(self, dim: int, *, ann: bool | str = "auto", ann_min: int = 5_000) -> None:
        import numpy as np

        check_ann(ann)
        self.dim = dim
        self._ann_wanted = ann in (True, "hnsw")
        self._bits_wanted = ann in ("auto", "bits") and _bits_available()
        self._ann_min = ann_min
        self._planes: np.ndarray | None = None  # set, with the codes, once the group reaches ann_min
        # a code's first words, one contiguous array per word (stage one scans them all), and
        # its other words row by row (stage two reads a few rows: one cache line each)
        self._head = np.zeros((_HEAD_WORDS, 0), dtype=np.uint64)
        self._tail = np.zeros((0, _CODE_WORDS - _HEAD_WORDS), dtype=np.uint64)
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

    @property
    def uses_prefilter(self) -> bool:
        """Whether a search now goes through the sign-code prefilter."""
        return self._planes is not None and len(self._keys) >= self._ann_min

    def _code(self, vectors: np.ndarray) -> np.ndarray:
        """Sign codes of ``vectors``: (rows, words) uint64 for a matrix, (words,) for one vector
        (a matrix-vector product: a 1-row matrix product would start BLAS threads)."""
        import numpy as np

        assert self._planes is not None
        bits = np.packbits(vectors @ self._planes > 0, axis=-1, bitorder="little")
        return bits.view("<u8").astype(np.uint64)

    def _set_code(self, pos: int, code: np.ndarray) -> None:
        self._head[:, pos] = code[:_HEAD_WORDS]
        self._tail[pos] = code[_HEAD_WORDS:]

    def _grow_codes(self, size: int, keep: int) -> None:
        import numpy as np

        head = np.zeros((_HEAD_WORDS, size), dtype=np.uint64)
        tail = np.zeros((size, _CODE_WORDS - _HEAD_WORDS), dtype=np.uint64)
        head[:, :keep], tail[:keep] = self._head[:, :keep], self._tail[:keep]
        self._head, self._tail = head, tail

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
                    if self._planes is not None:
                        self._grow_codes(pos * 2, pos)
                self._keys.append(key)
                self._pos[key] = pos
                self._labels.append(-1)
            elif self._labels[pos] >= 0:
                self._hnsw.remove(self._labels[pos])
                del self._label_pos[self._labels[pos]]
                self._labels[pos] = -1
            self._mat[pos] = v
            if self._planes is not None:
                self._set_code(pos, self._code(v))
            if self._hnsw is not None:
                self._pending.add(key)
            elif self._ann_wanted and len(self._keys) >= self._ann_min:
                self._start_hnsw()
            elif self._bits_wanted and self._planes is None and len(self._keys) >= self._ann_min:
                self._start_bits()

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
                if self._planes is not None:
                    self._head[:, pos] = self._head[:, last]
                    self._tail[pos] = self._tail[last]
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
            elif self._planes is not None and n >= self._ann_min:
                rows = self._prefilter(q, n, k)
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

    # -- the sign-code prefilter ------------------------------------------------------------
    def _start_bits(self) -> None:
        self._planes = _hyperplanes(self.dim)
        n = len(self._keys)
        self._grow_codes(self._mat.shape[0], 0)
        for start in range(0, n, 8192):
            end = min(n, start + 8192)
            codes = self._code(self._mat[start:end])
            self._head[:, start:end] = codes[:, :_HEAD_WORDS].T
            self._tail[start:end] = codes[:, _HEAD_WORDS:]
        log.debug("costmw cache: a group reached %d entries; searching it through sign codes", self._ann_min)

    def _prefilter(self, q: np.ndarray, n: int, k: int) -> np.ndarray:
        """Rows of the likely nearest neighbours of ``q``, for exact re-scoring.

        Stage one ranks every row by the Hamming distance of the first 128 bits of its code and
        keeps the closest 0.8-1.6 % (at least 512); stage two ranks those by all 384 bits and
        keeps ``max(64, 8 k)``. Codes of unit vectors at cosine c differ in about acos(c)/pi of
        their bits: a neighbour at cosine 0.8 differs in ~26 of 128 bits, a random vector in ~64.
        On MiniLM embeddings of costmw's dev questions the true nearest neighbour (cosine >= 0.7)
        was never outside the closest 0.4 % by stage one's distance.
        """
        import numpy as np

        code = self._code(q)
        first = np.bitwise_count(self._head[0, :n] ^ code[0])
        for word in range(1, _HEAD_WORDS):
            first += np.bitwise_count(self._head[word, :n] ^ code[word])
        keep = max(512, n // 64)
        if keep >= n:
            rows = np.arange(n)
        else:  # the cut at about the keep-th smallest distance, read off a sample of rows
            sample = first[:: max(1, n // 2048)]
            nth = min(len(sample) - 1, keep * len(sample) // n)
            cut = int(np.partition(sample, nth)[nth])
            rows = np.flatnonzero(first <= cut)
            while len(rows) < keep // 2:
                cut += 1
                rows = np.flatnonzero(first <= cut)
        rest = np.bitwise_count(self._tail[rows] ^ code[_HEAD_WORDS:])  # (rows, words) uint8
        full = first[rows].astype(np.uint16)
        for word in range(rest.shape[1]):  # column sums: cheaper than a reduction over a short axis
            full += rest[:, word]
        best = max(64, 8 * k)
        if len(rows) > best:
            rows = rows[np.argpartition(full, best - 1)[:best]]
        return rows

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
