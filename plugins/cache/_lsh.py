"""Locality-sensitive hashing of unit vectors (random hyperplanes), for a semantic index that
works on plain Redis: similar vectors fall in the same bucket of at least one table, and the
few candidates found that way are re-scored exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HyperplaneLSH"]


class HyperplaneLSH:
    """``tables`` tables of ``bits`` sign bits each; the planes depend only on (dim, seed), so every
    process that shares a store computes the same buckets. A query also probes, in each table, the
    bucket across the hyperplane it lies closest to (multi-probe), which lifts recall cheaply."""

    def __init__(self, dim: int, *, tables: int = 40, bits: int = 12, seed: int = 20240611) -> None:
        import numpy as np

        if not (1 <= bits <= 30 and tables >= 1 and dim >= 1):
            raise ValueError(f"bad LSH shape: dim={dim}, tables={tables}, bits={bits}")
        self.dim, self.tables, self.bits, self.seed = dim, tables, bits, seed
        rng = np.random.default_rng(seed)
        self._planes = rng.standard_normal((tables * bits, dim)).astype(np.float32)
        self._weights = (1 << np.arange(bits, dtype=np.int64))

    def _projections(self, vector: np.ndarray) -> np.ndarray:
        import numpy as np

        return (self._planes @ np.asarray(vector, dtype=np.float32).reshape(-1)).reshape(self.tables, self.bits)

    def buckets(self, vector: np.ndarray) -> list[int]:
        """The bucket of ``vector`` in each table (what an entry is filed under)."""
        signs = self._projections(vector) > 0
        return [int(b) for b in signs.astype(self._weights.dtype) @ self._weights]

    def probes(self, vector: np.ndarray) -> list[tuple[int, int]]:
        """(table, bucket) pairs a query looks in: its own bucket and its nearest neighbour bucket."""
        import numpy as np

        proj = self._projections(vector)
        home = (proj > 0).astype(self._weights.dtype) @ self._weights
        flip = np.argmin(np.abs(proj), axis=1)
        out: list[tuple[int, int]] = []
        for t in range(self.tables):
            out.append((t, int(home[t])))
            out.append((t, int(home[t]) ^ (1 << int(flip[t]))))
        return out
