"""Where the verifier's training and calibration pairs come from, and how they are cut.

Training pairs: the generators run on the seed groups, topics and mock_data.json's training half
(paraphrases, edits and hard negatives, the nearest other origins by MiniLM cosine), plus part of
the team's hand-written pairs. Calibration pairs come from material training never sees: held-out
seed groups and topics, held-out mock-data origins (of the training half), and the rest of the
hand-written pairs. mock_data.json's other half is for benchmarks only.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ._generate import (
    Pair,
    ask_pairs,
    format_pairs,
    group_pairs,
    seed_questions,
    situation_pairs,
    split_seeds,
    text_pairs,
)
from ._noise import noisy

__all__ = ["DataSources", "build_pairs", "mock_data_split", "read_labelled_tsv"]

REPO = Path(__file__).resolve().parents[3]


def _odd(text: str, byte: int = 0) -> bool:
    return bool(hashlib.sha256(text.encode("utf-8")).digest()[byte] & 1)


def _share(text: str, share: float, salt: str) -> bool:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def mock_data_split(rows: Sequence[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """mock_data.json cut in two by origin, the same way every time: (train half, held-out half).

    An origin goes to the held-out half when the first byte of the SHA-256 of its text is odd, so
    the cut needs no seed, does not depend on row order, and keeps every row of one origin on one
    side. The verifier trains only on the first half; benchmarks report the second.
    """
    train: list[dict[str, str]] = []
    held_out: list[dict[str, str]] = []
    for row in rows:
        (held_out if _odd(row["origin"]) else train).append(row)
    return train, held_out


class DataSources:
    """The files training reads; by default those of a checkout of the repository."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or REPO
        self.mock_data = self.root.parent / "shared" / "data" / "gptcache" / "mock_data.json"
        self.pair_files = [self.root / "tests" / "plugins" / "cache" / "data" / n
                           for n in ("verifier_dev.tsv", "verifier_dev_docs.tsv")]
        self.calibration_only = [self.root / "benchmarks" / "data" / "cache_pairs.tsv"]
        self.group_files = [self.root / "benchmarks" / "data" / n
                            for n in ("cache_dev_siblings.tsv", "cache_dev_near.tsv")]

    def load_mock(self) -> list[dict[str, str]]:
        if not self.mock_data.exists():
            return []
        return list(json.loads(self.mock_data.read_text(encoding="utf-8")))


def _rows(path: Path) -> Iterable[list[str]]:
    if not path.exists():
        return []
    return (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#"))


def read_labelled_tsv(path: Path) -> list[Pair]:
    """label<TAB>kind<TAB>a<TAB>b rows as pairs."""
    return [Pair(r[2], r[3], int(r[0]), f"team:{r[1]}") for r in _rows(path) if len(r) == 4]


def _group_file_pairs(path: Path) -> list[tuple[str, list[Pair]]]:
    """Per group of sibling origins: each origin with its paraphrase (positive), with the other
    origins and with their paraphrases (negatives)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for r in _rows(path):
        if len(r) == 3:
            groups.setdefault(r[0], []).append((r[1], r[2]))
    out = []
    for name, members in groups.items():
        pairs = []
        for i, (origin, para) in enumerate(members):
            pairs.append(Pair(origin, para, 1, "team:para"))
            for j, (other, _other_para) in enumerate(members):
                if i < j:
                    pairs.append(Pair(origin, other, 0, "team:sibling"))
                if i != j:
                    pairs.append(Pair(para, other, 0, "team:sibling"))
        out.append((f"{path.stem}:{name}", pairs))
    return out


def _neighbours(texts: Sequence[str], k: int, embed: Callable[[Sequence[str]], Any]) -> list[list[int]]:
    import numpy as np

    vectors = np.asarray(embed(texts), dtype=np.float32)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    return [list(np.argsort(-row)[:k]) for row in sims]


def _mock_pairs(rows: Sequence[dict[str, str]], rng: random.Random, embed: Callable[[Sequence[str]], Any] | None,
                hard_k: int) -> list[Pair]:
    pairs: list[Pair] = []
    for row in rows:
        pairs.append(Pair(row["origin"], noisy(row["similar"], rng, 0.3), 1, "mock:para"))
    pairs += text_pairs([r["origin"] for r in rows] + [r["similar"] for r in rows], rng)
    if embed is not None and len(rows) > hard_k:
        near = _neighbours([r["origin"] for r in rows], hard_k, embed)
        for i, others in enumerate(near):
            for j in others:
                pairs.append(Pair(rows[i]["origin"], noisy(rows[j]["similar"], rng, 0.3), 0, "mock:neighbour"))
                if rng.random() < 0.5:
                    pairs.append(Pair(rows[i]["similar"], rows[j]["origin"], 0, "mock:neighbour"))
    return pairs


def build_pairs(seed: int, sources: DataSources | None = None, *, scale: float = 1.0,
                embed: Callable[[Sequence[str]], Any] | None = None, hard_k: int = 3) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, calibration pairs), the same for the same seed and files."""
    sources = sources or DataSources()
    rng = random.Random(seed)
    (train_groups, train_topics), (cal_groups, cal_topics) = split_seeds(seed=seed)
    train: list[Pair] = []
    calib: list[Pair] = []

    def generated(groups: Sequence[Sequence[str]], topics: Sequence[str], n: float) -> list[Pair]:
        questions = seed_questions(rng, groups, int(400 * n))
        out = list(group_pairs(groups, rng, max(1, int(30 * n))))
        out += ask_pairs(topics, rng, max(1, int(16 * n)))
        out += format_pairs(questions, rng, int(900 * n))
        out += situation_pairs(questions, rng, int(900 * n))
        out += text_pairs(questions, rng)
        return out

    train += generated(train_groups, train_topics, scale)
    calib += generated(cal_groups, cal_topics, scale * 0.6)

    mock_train, _ = mock_data_split(sources.load_mock())
    mock_fit = [r for r in mock_train if not _share(r["origin"], 0.2, "calib")]
    mock_cal = [r for r in mock_train if _share(r["origin"], 0.2, "calib")]
    train += _mock_pairs(mock_fit, rng, embed, hard_k)
    calib += _mock_pairs(mock_cal, rng, embed, hard_k)

    for path in sources.pair_files:
        for pair in read_labelled_tsv(path):
            if _share(pair.a + pair.b, 0.25, "calib"):
                calib.append(pair)
            else:
                train.append(pair)
                train.append(Pair(noisy(pair.a, rng, 0.3), noisy(pair.b, rng, 0.4), pair.label, pair.kind))
    for path in sources.calibration_only:
        calib += read_labelled_tsv(path)
    for path in sources.group_files:
        for name, pairs in _group_file_pairs(path):
            (calib if _share(name, 0.25, "calib") else train).extend(pairs)
    rng.shuffle(train)
    return train, calib
