"""Near-duplicate detection, clustering, and a split that never leaks a cluster.

Two prompts are near-duplicates when their similarity reaches a threshold: the Jaccard similarity of
their character 5-gram sets ("minhash": computed exactly with sparse products up to 50,000 texts;
beyond that MinHash LSH proposes candidates and the exact Jaccard confirms them, so a rare pair may
be missed), or the cosine similarity of their sentence embeddings ("embedding": exact). Text that
at least half of the prompts share (an instruction, a system prompt) is left out of the comparison
when there are ten prompts or more, so a common template does not make every prompt a duplicate.
Near-duplicates are grouped with union-find, and a train/validation split assigns whole groups to
one side, so no validation prompt has a close copy in the training set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from costmw.plugin_api import ConfigError, missing_extra

__all__ = ["METHODS", "cluster_ids", "default_thresholds", "near_duplicate_pairs", "split_clusters"]

METHODS = ("minhash", "embedding")
EXACT_LIMIT = 50_000  # up to this many texts, Jaccard pairs are found exactly (sparse products)
TEMPLATE_SHARE = 0.5  # text found in at least this share of the prompts is their template, not their content
_SPACE = re.compile(r"\s+")


def default_thresholds(method: str) -> tuple[float, float]:
    """(removal threshold, split-cluster threshold) for ``method``; the scales differ per method."""
    if method == "minhash":
        return 0.85, 0.6
    if method == "embedding":
        return 0.95, 0.85
    raise ConfigError(f"near-duplicate method must be one of {METHODS}, got {method!r}")


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def shingles(text: str, k: int = 5) -> set[str]:
    """Character ``k``-grams of the normalised text (the whole text when it is shorter)."""
    t = _normalise(text)
    if len(t) <= k:
        return {t}
    return {t[i:i + k] for i in range(len(t) - k + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _exact_pairs(sets: list[set[str]], threshold: float, block: int = 1024) -> list[tuple[int, int, float]]:
    """Every pair at or above ``threshold`` Jaccard, from sparse shingle-count products (exact)."""
    import numpy as np
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, s in enumerate(sets):
        for sh in s:
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sets), len(vocab)))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(sets), block):
        inter = (x[start:start + block] @ x.T).tocoo()
        for r, j, v in zip(inter.row.tolist(), inter.col.tolist(), inter.data.tolist()):
            i = start + r
            if i < j:
                sim = v / (sizes[i] + sizes[j] - v)
                if sim >= threshold:
                    pairs.append((i, j, float(sim)))
    return pairs


def drop_template(sets: list[set[str]], share: float = TEMPLATE_SHARE) -> list[set[str]]:
    """Remove the shingles found in at least ``share`` of the texts (a shared instruction, system
    prompt or form), so similarity measures what the prompts say, not the template they share."""
    if len(sets) < 10:
        return sets
    df: dict[str, int] = {}
    for s in sets:
        for sh in s:
            df[sh] = df.get(sh, 0) + 1
    common = {sh for sh, n in df.items() if n >= share * len(sets)}
    return [(s - common) or s for s in sets]


def distinctive_lines(texts: Sequence[str], share: float = TEMPLATE_SHARE) -> list[str]:
    """The texts without the lines found in at least ``share`` of them (for embedding similarity)."""
    if len(texts) < 10:
        return list(texts)
    split = [t.splitlines() for t in texts]
    df: dict[str, int] = {}
    for lines in split:
        for line in set(lines):
            df[line] = df.get(line, 0) + 1
    common = {line for line, n in df.items() if n >= share * len(texts)}
    return ["\n".join(x for x in lines if x not in common) or t for lines, t in zip(split, texts)]


def _minhash_pairs(texts: Sequence[str], threshold: float, num_perm: int = 128) -> list[tuple[int, int, float]]:
    """Jaccard near-duplicates: exact up to ``EXACT_LIMIT`` texts, MinHash LSH candidates beyond."""
    sets = drop_template([shingles(t) for t in texts])
    if len(sets) <= EXACT_LIMIT:
        try:
            return _exact_pairs(sets, threshold)
        except ImportError:
            pass
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as exc:
        raise missing_extra("datasketch", "local", exc) from exc
    # a lower LSH bar finds more candidates; the exact Jaccard below decides
    lsh = MinHashLSH(threshold=max(0.1, min(0.9, threshold - 0.15)), num_perm=num_perm)
    pairs: list[tuple[int, int, float]] = []
    for i, s in enumerate(sets):
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch([x.encode("utf-8") for x in s])
        for j in lsh.query(mh):
            sim = _jaccard(s, sets[int(j)])
            if sim >= threshold:
                pairs.append((int(j), i, sim))
        lsh.insert(str(i), mh)
    return pairs


def _embedding_pairs(texts: Sequence[str], threshold: float, embedder: Any) -> list[tuple[int, int, float]]:
    import numpy as np

    if embedder is None:
        from costmw.embeddings import default_embedder

        embedder = default_embedder()
    vectors = np.asarray(embedder.embed(distinctive_lines(texts)), dtype=np.float32)
    pairs: list[tuple[int, int, float]] = []
    block = 512
    for start in range(0, len(texts), block):
        sims = vectors[start:start + block] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if c < i:
                pairs.append((c, i, float(sims[r, c])))
    return pairs


def near_duplicate_pairs(texts: Sequence[str], *, method: str = "minhash", threshold: float | None = None,
                         embedder: Any = None) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, similarity)`` with ``i < j`` whose similarity reaches ``threshold``."""
    if method not in METHODS:
        raise ConfigError(f"near-duplicate method must be one of {METHODS}, got {method!r}")
    if threshold is None:
        threshold = default_thresholds(method)[0]
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if len(texts) < 2:
        return []
    if method == "minhash":
        return _minhash_pairs(texts, threshold)
    return _embedding_pairs(texts, threshold, embedder)


def cluster_ids(n: int, pairs: Sequence[tuple[int, int, float]]) -> list[int]:
    """Union-find over ``pairs``: the cluster of each of ``n`` items, named by its smallest member."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(n)]


def split_clusters(ids: Sequence[int], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices for (train, validation): whole clusters, shuffled by ``seed``, until ``fraction`` is held out."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    members: dict[int, list[int]] = {}
    for i, c in enumerate(ids):
        members.setdefault(c, []).append(i)

    def order(c: int) -> str:
        return hashlib.sha256(f"{seed}:{c}".encode()).hexdigest()

    want = round(fraction * len(ids))
    val: list[int] = []
    for c in sorted(members, key=order):
        if len(val) >= want:
            break
        if len(val) + len(members[c]) <= want:
            val.extend(members[c])
    smallest = min(members.values(), key=lambda m: len(m))
    if want and not val and len(smallest) < len(ids):  # no cluster fits the share: hold out the smallest
        val = list(smallest)
    held = set(val)
    return [i for i in range(len(ids)) if i not in held], sorted(val)
