"""What the learned verifier reads from a pair of questions: features of their token embeddings.

Each text is encoded once by a cut-down all-MiniLM-L6-v2 (int8 ONNX) into contextual token
vectors. A pair is described by its pooled vectors (product and difference), how well every
token of one text finds a match in the other (and in which order), which word pieces and numbers
only one side has, and their lengths. The same code computes features for training and at run
time, so the two never drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Encoded", "encode_texts", "pair_features"]

_SPECIAL_IDS = frozenset({0, 100, 101, 102, 103})  # [PAD] [UNK] [CLS] [SEP] [MASK] in MiniLM's vocabulary
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MATCH_LEVELS = (0.5, 0.65, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One text's content-token vectors (unit length), its pooled vector, word-piece ids, numbers."""

    tokens: np.ndarray
    pooled: np.ndarray
    ids: frozenset[int]
    numbers: frozenset[str]


def encode_texts(session: Any, tokenizer: Any, texts: list[str]) -> list[Encoded]:
    """Run the encoder on ``texts`` in one batch (padded to the longest)."""
    import numpy as np

    enc = tokenizer.encode_batch(texts)
    ids = np.asarray([e.ids for e in enc], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
    hidden = np.asarray(session.run(None, {"input_ids": ids, "attention_mask": mask,
                                           "token_type_ids": np.zeros_like(ids)})[0], dtype=np.float32)
    out = []
    for i, text in enumerate(texts):
        used = mask[i].astype(bool)
        rows = hidden[i][used]
        pooled = rows.mean(axis=0)
        pooled /= max(float(np.linalg.norm(pooled)), 1e-9)
        content = np.asarray([int(t) not in _SPECIAL_IDS for t in ids[i][used]])
        vecs = rows[content] if content.any() else rows
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
        pieces = frozenset(int(t) for t in ids[i][used] if int(t) not in _SPECIAL_IDS)
        numbers = frozenset(n.replace(",", "") for n in _NUMBER.findall(text))
        out.append(Encoded(vecs, pooled, pieces, numbers))
    return out


def _match_stats(best: np.ndarray) -> list[float]:
    import numpy as np

    return [float(best.min()), float(best.mean()), float(np.percentile(best, 10))] + \
        [float((best < level).mean()) for level in _MATCH_LEVELS]


def _order(sims: np.ndarray) -> float:
    """Share of neighbouring tokens whose best matches keep their order (1.0: same order)."""
    import numpy as np

    if sims.shape[0] < 2:
        return 1.0
    positions = sims.argmax(axis=1)
    return float((np.diff(positions) >= 0).mean())


def _both_ways(x: list[float], y: list[float]) -> list[float]:
    """A direction-free pair of lists: elementwise smaller and larger."""
    return [min(a, b) for a, b in zip(x, y, strict=True)] + [max(a, b) for a, b in zip(x, y, strict=True)]


def pair_features(a: Encoded, b: Encoded) -> np.ndarray:
    """The feature vector of a pair; the same for (a, b) and (b, a)."""
    import numpy as np

    sims = a.tokens @ b.tokens.T
    a_to_b, b_to_a = sims.max(axis=1), sims.max(axis=0)
    only_a, only_b = len(a.ids - b.ids), len(b.ids - a.ids)
    lexical_a = [only_a / max(1, len(a.ids)), min(only_a, 4) / 4]
    lexical_b = [only_b / max(1, len(b.ids)), min(only_b, 4) / 4]
    shared = len(a.ids & b.ids) / max(1, len(a.ids | b.ids))
    nums = a.numbers ^ b.numbers
    numbers = [float(bool(nums)), min(len(nums), 3) / 3, float(bool(a.numbers) and bool(b.numbers))]
    lengths = [abs(np.log(len(a.tokens) / len(b.tokens))), min(len(a.tokens), len(b.tokens)) / 64]
    scalars = (_both_ways(_match_stats(a_to_b), _match_stats(b_to_a))
               + _both_ways([_order(sims)], [_order(sims.T)])
               + _both_ways(lexical_a, lexical_b) + [shared] + numbers + lengths
               + [float(a.pooled @ b.pooled)])
    return np.concatenate([a.pooled * b.pooled, np.abs(a.pooled - b.pooled),
                           np.asarray(scalars, dtype=np.float32)]).astype(np.float32)
