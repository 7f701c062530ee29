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
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from costmw.plugin_api import ConfigError

from ._traffic_file import TrafficFile, group_id

__all__ = ["NEIGHBOUR_FEATURE", "NeighbourRate", "TrafficMemory", "prompt_template"]

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

    def _rates(self, similarity: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
        """Rates from a (queries x past prompts) similarity matrix; -inf marks a past prompt left out.
        ``right``: the labels of the matrix's columns (default: this object's past prompts)."""
        labels = self.right if right is None else right
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(similarity, nearest, axis=1)
        weights = np.where(np.isfinite(sims), np.clip(sims, 0.0, None), 0.0)
        hits = (weights * labels[nearest]).sum(axis=1)
        out: np.ndarray = (hits + self.prior_weight * self.prior) / (weights.sum(axis=1) + self.prior_weight)
        return out

    def _past(self) -> np.ndarray:
        """The past prompts' vectors as float32, converted once (again if ``vectors`` is replaced)."""
        kept = self.__dict__.get("_past32")
        if kept is None or kept[0] is not self.vectors:
            kept = (self.vectors, self.vectors.astype(np.float32))
            self.__dict__["_past32"] = kept
        past: np.ndarray = kept[1]
        return past

    def _queries(self, vectors: Any) -> np.ndarray:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise ConfigError(f"neighbours hold {self.dim}-dimensional vectors ({self.embedder}); got "
                              f"{queries.shape[1]} dimensions")
        return queries

    def rate(self, vectors: Any) -> np.ndarray:
        """The feature for new prompts' embeddings (one row each, or one vector)."""
        return self._rates(self._queries(vectors) @ self._past().T)

    def rate_with(self, vectors: Any, more_vectors: np.ndarray, more_right: np.ndarray) -> np.ndarray:
        """:meth:`rate` with ``more_vectors`` (L2-normalised, one row each) and their labels
        ``more_right`` counted among the past prompts."""
        queries = self._queries(vectors)
        if not len(more_vectors):
            return self.rate(queries)
        similarity = np.hstack([queries @ self._past().T,
                                queries @ np.asarray(more_vectors, dtype=np.float32).T])
        return self._rates(similarity, np.concatenate([self.right, np.asarray(more_right, dtype=bool)]))

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


class TrafficMemory:
    """Prompts of a cascade's own traffic and whether the cheap answer to each was right, as judged
    against the strong model's answer to the same prompt; they join ``base``'s past prompts for
    ``similar_right``.

    Each prompt is remembered for its ``group`` (the tenant) and counted only for prompts of that
    group, so one tenant's traffic never moves another's decisions. At most ``max_prompts`` are kept
    in all (the oldest go first): 10,000 prompts of MiniLM's 384 dimensions take 15 MB (float32, so
    comparing with them needs no conversion). The overall share right that rates are pulled toward
    stays ``base``'s, so a handful of observations moves a rate only as far as their similarity earns.

    With ``path``, what is remembered is also appended to that file (see
    :class:`~._traffic_file.TrafficFile`), and the file's newest ``max_prompts`` prompts are
    remembered from the start: learning survives a restart, and processes that share the file learn
    from each other's traffic each time one starts.
    """

    def __init__(self, base: NeighbourRate, max_prompts: int = 10_000, *,
                 path: str | os.PathLike[str] | None = None) -> None:
        if isinstance(max_prompts, bool) or not isinstance(max_prompts, int) or max_prompts < 1:
            raise ConfigError(f"max_prompts must be a whole number >= 1, got {max_prompts!r}")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"the traffic memory's path must be a file path, got {type(path).__name__}")
        self.base = base
        self.max_prompts = max_prompts
        self._vectors = np.zeros((min(64, max_prompts), base.dim), dtype=np.float32)  # grows by doubling
        self._right = np.zeros(len(self._vectors), dtype=bool)
        self._groups = np.zeros(len(self._vectors), dtype=np.int64)
        self._count = 0
        self._next = 0  # where the next prompt goes once the memory is full
        self._lock = threading.Lock()
        self.file: TrafficFile | None = None
        #: prompts read from ``path`` when the memory was made
        self.loaded = 0
        if path is not None:
            self.file = TrafficFile(path, dim=base.dim, embedder=base.embedder, max_prompts=max_prompts)
            vectors, groups, right = self.file.load()  # at most max_prompts, the newest
            if len(vectors):
                size = max(len(self._right), len(vectors))
                self._vectors = np.zeros((size, base.dim), dtype=np.float32)
                self._vectors[:len(vectors)] = vectors
                self._right = np.zeros(size, dtype=bool)
                self._right[:len(vectors)] = right
                self._groups = np.zeros(size, dtype=np.int64)
                self._groups[:len(vectors)] = groups
                self._count = len(vectors)
            self.loaded = len(vectors)

    def __len__(self) -> int:
        return self._count

    def add(self, vector: Any, right: bool, group: str | None = None) -> None:
        """Remember one prompt's embedding (L2-normalised) and whether its cheap answer was right."""
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if row.shape[0] != self.base.dim:
            raise ConfigError(f"traffic memory holds {self.base.dim}-dimensional vectors; got {row.shape[0]}")
        gid = group_id(group)
        self._put(row, bool(right), gid)
        if self.file is not None:
            self.file.append(row, gid, bool(right))

    def _put(self, row: np.ndarray, right: bool, gid: int) -> None:
        with self._lock:
            if self._count < self.max_prompts:
                if self._count == len(self._right):
                    size = min(2 * len(self._right), self.max_prompts)
                    more = size - len(self._right)
                    self._vectors = np.vstack([self._vectors, np.zeros((more, self.base.dim), dtype=np.float32)])
                    self._right = np.concatenate([self._right, np.zeros(more, dtype=bool)])
                    self._groups = np.concatenate([self._groups, np.zeros(more, dtype=np.int64)])
                at = self._count
                self._count += 1
            else:
                at = self._next
                self._next = (self._next + 1) % self.max_prompts
            self._vectors[at] = row
            self._right[at] = right
            self._groups[at] = gid

    def rate(self, vectors: Any, group: str | None = None) -> np.ndarray:
        """``similar_right`` for new prompts of ``group``, over the base's past prompts and the
        prompts remembered for that group."""
        with self._lock:  # views: a prompt remembered meanwhile is simply not counted yet
            more, right, groups = self._vectors[:self._count], self._right[:self._count], self._groups[:self._count]
        mine = groups == group_id(group)
        if not mine.all():
            more, right = more[mine], right[mine]
        return self.base.rate_with(vectors, more, right)

    def flush(self) -> bool:
        """Write what waits to be appended to the file now (True when nothing waits)."""
        return True if self.file is None else self.file.flush(force=True)
