"""The sign-code prefilter of large groups: it finds the same nearest neighbour as exact search,
re-scores only a few rows, and keeps its codes in step as entries are added, replaced and removed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from costmw.plugins.cache import Entry, MemoryStore, SQLiteStore
from costmw.plugins.cache._index import VectorIndex

from costmw import ConfigError

DIM = 384


def unit_rows(n: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def at_cosine(v: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit vector at exactly ``cosine`` from ``v``."""
    noise = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    noise -= (noise @ v) * v
    noise /= np.linalg.norm(noise)
    return (cosine * v + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


@pytest.fixture(scope="module")
def indexes() -> tuple[VectorIndex, VectorIndex, np.ndarray]:
    rows = unit_rows(6000, seed=1)
    exact, bits = VectorIndex(DIM, ann=False), VectorIndex(DIM, ann="bits", ann_min=1000)
    for i, v in enumerate(rows):
        exact.add(f"k{i}", v)
        bits.add(f"k{i}", v)
    return exact, bits, rows


@pytest.mark.parametrize("cosine", [0.8, 0.9, 0.97])
def test_prefilter_returns_the_exact_top_1(indexes: tuple[VectorIndex, VectorIndex, np.ndarray],
                                           cosine: float) -> None:
    exact, bits, rows = indexes
    assert bits.uses_prefilter and not exact.uses_prefilter
    picks = np.random.default_rng(2).choice(len(rows), 150, replace=False)
    for n, i in enumerate(picks):
        query = at_cosine(rows[i], cosine, seed=1000 + n)
        want, got = exact.search(query, 5)[0], bits.search(query, 5)[0]
        assert got[0] == want[0] == f"k{i}"
        assert got[1] == pytest.approx(want[1], abs=1e-5)  # re-scored exactly


def test_prefilter_rescores_only_a_few_rows(indexes: tuple[VectorIndex, VectorIndex, np.ndarray]) -> None:
    _, bits, rows = indexes
    assert len(bits._prefilter(rows[7], len(bits), 5)) <= 64  # of 6000


def test_codes_follow_adds_replacements_and_removals() -> None:
    rows = unit_rows(3000, seed=3)
    index = VectorIndex(DIM, ann="bits", ann_min=500)
    for i in range(1000):
        index.add(f"k{i}", rows[i])
    assert index.uses_prefilter
    for i in range(1000, 3000):  # the arrays grow after the prefilter started
        index.add(f"k{i}", rows[i])
    for i in range(0, 3000, 2):
        index.remove(f"k{i}")  # the last row moves into each hole
    index.add("k1", rows[0])  # a replaced vector moves its key
    assert len(index) == 1500
    for i in (3, 1501, 2999):
        assert index.search(at_cosine(rows[i], 0.85, seed=i), 1)[0][0] == f"k{i}"
    assert index.search(rows[0], 1)[0][0] == "k1"
    assert all(key != "k2" for key, _ in index.search(rows[2], 10))


def test_small_groups_are_searched_exactly() -> None:
    index = VectorIndex(DIM)  # "auto": the prefilter starts at 5,000 entries
    for i, v in enumerate(unit_rows(50, seed=4)):
        index.add(f"k{i}", v)
    assert not index.uses_prefilter and not index.uses_ann


def test_stores_use_the_prefilter_and_reject_a_bad_option(tmp_path: Path) -> None:
    rows = unit_rows(700, seed=5)
    for store in (MemoryStore(None, ann="bits", ann_min=600), SQLiteStore(tmp_path / "c.db", ann="bits", ann_min=600)):
        for i, v in enumerate(rows):
            store.put(Entry(key=f"k{i}", group="g", scope="s", text=f"q{i}", response={"text": f"a{i}"}, vector=v))
        found = store.search("g", at_cosine(rows[650], 0.9, seed=6), 3, time.time())
        assert found[0][0].key == "k650" and found[0][0].response == {"text": "a650"}
        store.close()
    with pytest.raises(ConfigError, match="ann must be"):
        MemoryStore(ann="fast")
    with pytest.raises(ConfigError, match="ann must be"):
        SQLiteStore(tmp_path / "d.db", ann=1)  # type: ignore[arg-type]
