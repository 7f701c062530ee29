"""How well the cheap model did on the most similar past prompts: a confidence feature from the prompt.

A small model's confidence in its own answer tracks the kind of question more than whether the
answer is right; what it got right before on prompts like this one is the better guide where kinds
repeat, as they do in real traffic. :class:`NeighbourRate` keeps past prompts' embeddings (float16)
and whether the cheap answer to each was right, and gives a new prompt the similarity-weighted share
right among its ``k`` nearest past prompts (cosine), pulled toward the overall share by a prior
worth ``prior_weight`` neighbours of similarity 1. A past prompt's own value
(:meth:`NeighbourRate.own_rates`) leaves out the prompt itself and the prompts of its exact template
(:func:`prompt_template`), so a model fit on those values does not learn from near-copies of a row.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from costmw.plugin_api import ConfigError

__all__ = ["NEIGHBOUR_FEATURE", "NeighbourRate", "prompt_template"]

#: the confidence feature :class:`NeighbourRate` provides
NEIGHBOUR_FEATURE = "similar_right"

_QUOTED = re.compile(r"\"[^\"]*\"|'[^'\n]*'|```.*?```", re.DOTALL)
_NUMBER = re.compile(r"\d[\d,.]*")
_NAME = re.compile(r"\b[A-Z][a-z]+\b")


def prompt_template(prompt: str) -> str:
    """``prompt`` with its quoted text, code, numbers and capitalised words blanked: prompts made from
    one template (``What is 12 + 30?``, ``What is 7 + 5?``) share it."""
    text = _QUOTED.sub('"_"', prompt)
    text = _NUMBER.sub("#", text)
    return _NAME.sub("N", text).strip()


def _groups(templates: Sequence[str]) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.asarray([ids.setdefault(t, len(ids)) for t in templates], dtype=np.int64)


class NeighbourRate:
    """The share right among a prompt's nearest past prompts; see the module docstring.

    ``vectors`` are the past prompts' L2-normalised embeddings (by the embedder named ``embedder``;
    kept as float16), ``right`` whether each cheap answer was right, ``templates`` each prompt's
    :func:`prompt_template` (or any label that marks near-copies), used only by :meth:`own_rates`.
    """

    def __init__(self, vectors: Any, right: Sequence[bool], *, templates: Sequence[str] | None = None,
                 k: int = 10, prior_weight: float = 3.0, embedder: str = "all-MiniLM-L6-v2") -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or len(matrix) != len(right) or len(matrix) < 2:
            raise ConfigError(f"neighbours need at least 2 vectors and one label per vector, got "
                              f"{matrix.shape} vectors and {len(right)} labels")
        if k < 1 or prior_weight < 0:
            raise ConfigError(f"neighbours need k >= 1 and prior_weight >= 0, got k={k}, prior_weight={prior_weight}")
        self.vectors = matrix.astype(np.float16)
        self.right = np.asarray(right, dtype=bool)
        self.groups = _groups(templates) if templates is not None else np.arange(len(matrix))
        if len(self.groups) != len(matrix):
            raise ConfigError(f"{len(matrix)} vectors but {len(self.groups)} templates")
        self.k, self.prior_weight, self.embedder = int(k), float(prior_weight), str(embedder)
        self.prior = float(self.right.mean())

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def _rates(self, similarity: np.ndarray) -> np.ndarray:
        """Rates from a (queries x past prompts) similarity matrix; -inf marks a past prompt left out."""
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(similarity, nearest, axis=1)
        weights = np.where(np.isfinite(sims), np.clip(sims, 0.0, None), 0.0)
        hits = (weights * self.right[nearest]).sum(axis=1)
        out: np.ndarray = (hits + self.prior_weight * self.prior) / (weights.sum(axis=1) + self.prior_weight)
        return out

    def rate(self, vectors: Any) -> np.ndarray:
        """The feature for new prompts' embeddings (one row each, or one vector)."""
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise ConfigError(f"neighbours hold {self.dim}-dimensional vectors ({self.embedder}); got "
                              f"{queries.shape[1]} dimensions")
        return self._rates(queries @ self.vectors.astype(np.float32).T)

    def own_rates(self) -> np.ndarray:
        """Each past prompt's feature from the others, leaving out itself and its template's prompts."""
        past = self.vectors.astype(np.float32)
        similarity = past @ past.T
        similarity[self.groups[:, None] == self.groups[None, :]] = -np.inf
        return self._rates(similarity)

    def subset(self, rows: Sequence[int]) -> NeighbourRate:
        """The same neighbours restricted to ``rows`` (their templates kept)."""
        index = np.asarray(rows, dtype=np.int64)
        out = NeighbourRate(self.vectors[index], self.right[index].tolist(), k=self.k, prior_weight=self.prior_weight,
                            embedder=self.embedder)
        out.groups = self.groups[index]
        return out

    # -- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "dim": self.dim, "k": self.k, "prior_weight": self.prior_weight,
                "vectors_float16": base64.b64encode(self.vectors.astype("<f2").tobytes()).decode("ascii"),
                "right": "".join("1" if r else "0" for r in self.right), "groups": self.groups.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NeighbourRate:
        try:
            dim = int(data["dim"])
            raw = np.frombuffer(base64.b64decode(data["vectors_float16"]), dtype="<f2")
            if dim < 1 or raw.size % dim:
                raise ValueError(f"{raw.size} numbers do not make {dim}-dimensional vectors")
            right = [c == "1" for c in str(data["right"])]
            out = cls(raw.reshape(-1, dim), right, k=int(data["k"]), prior_weight=float(data["prior_weight"]),
                      embedder=str(data["embedder"]))
            groups = np.asarray(data.get("groups", range(len(right))), dtype=np.int64)
            if len(groups) != len(right):
                raise ValueError(f"{len(right)} labels but {len(groups)} groups")
            out.groups = groups
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"confidence model neighbours: bad or missing field: {exc}") from exc
        return out
