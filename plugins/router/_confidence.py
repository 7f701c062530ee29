"""The chance that a cheap answer is right, from its own evidence, and the threshold a quality target needs.

:class:`ConfidenceModel` is a logistic regression over :data:`~._evidence.EVIDENCE_NAMES` (fit here with
numpy, read back from JSON: no pickle, no sklearn at run time). It keeps a held-out calibration set of
(probability, right?) pairs, so :meth:`ConfidenceModel.threshold_for` can answer "keep cheap answers
above which probability, for ``quality`` of final answers to be right?" for any quality the user sets,
and, with :attr:`ConfidenceModel.confidence`, demand that by a lower confidence bound rather than by
the calibration set's own count (a small set then keeps less).
The package ships one fit on SmolLM2-135M's answers to generated questions
(``cascade_local.json``); ``costmw cascade-data`` and :meth:`ConfidenceModel.fit` make one for a
user's own prompts and model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from costmw.plugin_api import ConfigError

from ._evidence import EVIDENCE_NAMES
from ._neighbours import NEIGHBOUR_FEATURE, NeighbourRate

__all__ = ["CONFIDENCE_FEATURES", "ConfidenceModel", "default_confidence_model", "keep_threshold"]

#: what a confidence model can read: the answer's evidence, and how the cheap model did on similar
#: past prompts (``similar_right``, from the model's own :class:`~._neighbours.NeighbourRate`)
CONFIDENCE_FEATURES = (*EVIDENCE_NAMES, NEIGHBOUR_FEATURE)

_DEFAULT_FILE = "cascade_local.json"
_KEEP_NOTHING = 1.000001  # above every probability


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
    return out


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and intercept of an L2-penalised logistic regression, by Newton's method."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = _sigmoid(design @ w)
        grad = design.T @ (p - y) + penalty * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[:-1], float(w[-1])


def _wrong_upper(wrong: np.ndarray, n: int, confidence: float) -> np.ndarray:
    """One-sided Wilson upper bounds, at ``confidence``, of the wrong share behind ``wrong`` of ``n``."""
    if confidence <= 0.0:
        out: np.ndarray = wrong / n
        return out
    z = NormalDist().inv_cdf(confidence)
    share = wrong / n
    centre = share + z * z / (2 * n)
    spread = z * np.sqrt(np.clip(share * (1 - share), 0.0, None) / n + z * z / (4 * n * n))
    upper: np.ndarray = (centre + spread) / (1 + z * z / n)
    return upper


def keep_threshold(probabilities: Sequence[float], right: Sequence[bool], quality: float,
                   strong_accuracy: float = 1.0, *, confidence: float = 0.0) -> float:
    """The lowest probability to keep a cheap answer at, so that final answers are right at least
    ``quality`` of the time on these examples (an escalated answer is right ``strong_accuracy`` of the
    time). With ``confidence`` (say 0.95), the share right must clear ``quality`` by its one-sided
    lower confidence bound (Wilson's), not just on the examples at hand: fewer examples, a stricter
    threshold. Just above 1 when no threshold reaches ``quality``: then nothing is kept."""
    if not 0.0 < quality <= 1.0:
        raise ConfigError(f"quality must be in (0, 1], got {quality}")
    if not 0.0 <= confidence < 1.0:
        raise ConfigError(f"confidence must be in [0, 1), got {confidence}")
    order = np.argsort(-np.asarray(probabilities, dtype=np.float64), kind="stable")
    p = np.asarray(probabilities, dtype=np.float64)[order]
    ok = np.asarray(right, dtype=np.float64)[order]
    n = len(p)
    if n == 0:
        return _KEEP_NOTHING
    # keeping the top k: wrong = kept wrong answers + the escalated ones the strong target gets wrong
    k = np.arange(n + 1)
    kept_wrong = k - np.concatenate([[0.0], np.cumsum(ok)])
    accuracy = 1.0 - _wrong_upper(kept_wrong + (1.0 - strong_accuracy) * (n - k), n, confidence)
    best = _KEEP_NOTHING
    for count in range(1, n + 1):
        if count < n and p[count] == p[count - 1]:
            continue  # a threshold keeps every answer with an equal probability together
        if accuracy[count] >= quality - 1e-12:
            best = float(p[count - 1])
    return best


class ConfidenceModel:
    """P(the cheap answer is right) from its evidence features; see the module docstring."""

    def __init__(self, features: Sequence[str] = EVIDENCE_NAMES, *, l2: float = 1.0) -> None:
        unknown = [f for f in features if f not in CONFIDENCE_FEATURES]
        if unknown:
            raise ConfigError(f"unknown confidence features {unknown}; known: {', '.join(CONFIDENCE_FEATURES)}")
        self.features = tuple(features)
        self.l2 = float(l2)
        self.mean = np.zeros(len(self.features))
        self.scale = np.ones(len(self.features))
        self.coef = np.zeros(len(self.features))
        self.intercept = 0.0
        self.calibration: list[tuple[float, bool]] = []
        #: the calibration answers scored as a cascade that learns from its traffic would score them
        #: (see :func:`~._confidence_data.learning_probabilities`); empty: the model has none
        self.learning_calibration: list[tuple[float, bool]] = []
        #: the one-sided confidence at which :meth:`threshold_for` wants ``quality`` reached (0: on
        #: the calibration set as it is)
        self.confidence = 0.0
        self.info: dict[str, Any] = {}
        #: past prompts and whether their cheap answers were right, for the ``similar_right`` feature
        self.neighbours: NeighbourRate | None = None

    @property
    def fitted(self) -> bool:
        return bool(self.calibration) or bool(np.any(self.coef))

    @property
    def needs_logprobs(self) -> bool:
        return any(f.startswith(("lp_", "span_")) for f in self.features)

    @property
    def needs_samples(self) -> bool:
        return "agree" in self.features or "distinct" in self.features

    @property
    def needs_embedding(self) -> bool:
        """Whether the model reads ``similar_right``, so a prompt's embedding (by
        ``neighbours.embedder``) must be at hand: see :meth:`with_neighbours`."""
        return NEIGHBOUR_FEATURE in self.features

    def with_neighbours(self, rows: Sequence[Mapping[str, float]], vectors: Any) -> list[dict[str, float]]:
        """``rows`` with ``similar_right`` added from their prompts' embeddings ``vectors``."""
        if self.neighbours is None:
            raise ConfigError("this confidence model has no past prompts to compare with (no neighbours)")
        rates = self.neighbours.rate(vectors)
        if len(rates) != len(rows):
            raise ConfigError(f"{len(rows)} rows but {len(rates)} embeddings")
        return [{**r, NEIGHBOUR_FEATURE: float(v)} for r, v in zip(rows, rates, strict=True)]

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if self.needs_embedding and any(NEIGHBOUR_FEATURE not in r for r in rows):
            raise ConfigError(f"this confidence model reads {NEIGHBOUR_FEATURE!r}: add it to each row "
                              "(ConfidenceModel.with_neighbours)")
        return np.asarray([[float(r.get(f, 0.0)) for f in self.features] for r in rows], dtype=np.float64)

    def fit(self, rows: Sequence[Mapping[str, float]], right: Sequence[bool], *,
            calibration: tuple[Sequence[Mapping[str, float]], Sequence[bool]] | None = None) -> ConfidenceModel:
        """Learn from evidence ``rows`` (:func:`~._evidence.evidence`) and whether each answer was right;
        the ``calibration`` rows (held out from fitting) set the quality thresholds (default: the
        training rows themselves, which is optimistic)."""
        if len(rows) != len(right) or len(rows) < 10:
            raise ConfigError(f"fit needs at least 10 rows and one label per row, got {len(rows)} and {len(right)}")
        y = np.asarray(right, dtype=np.float64)
        if y.min() == y.max():
            raise ConfigError("fit needs both right and wrong answers among the rows")
        x = self._matrix(rows)
        self.mean = x.mean(axis=0)
        self.scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
        self.coef, self.intercept = _fit_logistic((x - self.mean) / self.scale, y, self.l2)
        cal_rows, cal_right = calibration if calibration is not None else (rows, right)
        self.calibration = [(float(p), bool(r)) for p, r in zip(self.predict(cal_rows), cal_right, strict=True)]
        self.info = {"train": len(rows), "calibration": len(self.calibration),
                     "train_right": float(y.mean())}
        return self

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """P(right) of each row."""
        return _sigmoid(((self._matrix(rows) - self.mean) / self.scale) @ self.coef + self.intercept)

    def predict_one(self, row: Mapping[str, float]) -> float:
        return float(self.predict([row])[0])

    def threshold_for(self, quality: float, strong_accuracy: float = 1.0, *,
                      confidence: float | None = None, learning: bool = False) -> float:
        """The probability above which to keep a cheap answer for ``quality`` of final answers to be
        right, read off the calibration set (see :func:`keep_threshold`), at ``confidence`` (default:
        the model's own :attr:`confidence`). With ``learning``, off the answers as scored by a cascade
        that learns from its traffic, when the model has them (:attr:`learning_calibration`)."""
        if not self.calibration:
            raise ConfigError("this confidence model has no calibration set; fit it first")
        chosen = self.learning_calibration if learning and self.learning_calibration else self.calibration
        probs, right = zip(*chosen, strict=True)
        level = self.confidence if confidence is None else confidence
        return keep_threshold(probs, right, quality, strong_accuracy, confidence=level)

    # -- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": "costmw.cascade.confidence", "version": 1 if self.neighbours is None else 2,
               "features": list(self.features), "l2": self.l2, "mean": self.mean.tolist(),
               "scale": self.scale.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept,
               "confidence": self.confidence, "calibration": [[p, int(r)] for p, r in self.calibration],
               "info": self.info}
        if self.learning_calibration:
            out["learning_calibration"] = [[p, int(r)] for p, r in self.learning_calibration]
        if self.neighbours is not None:
            out["neighbours"] = self.neighbours.to_dict()
        return out

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceModel:
        if data.get("kind") != "costmw.cascade.confidence":
            raise ConfigError("not a costmw cascade confidence model (its 'kind' is not costmw.cascade.confidence)")
        if data.get("version", 1) not in (1, 2):
            raise ConfigError(f"confidence model version {data.get('version')!r} is newer than this costmw "
                              "reads (1, 2)")
        try:
            model = cls(data["features"], l2=float(data.get("l2", 1.0)))
            n = len(model.features)
            model.mean, model.scale, model.coef = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale",
                                                                                                  "coef"))
            if not (len(model.mean) == len(model.scale) == len(model.coef) == n):
                raise ValueError("mean, scale and coef must have one value per feature")
            model.intercept = float(data["intercept"])
            model.confidence = float(data.get("confidence", 0.0))
            if not 0.0 <= model.confidence < 1.0:
                raise ValueError(f"confidence must be in [0, 1), got {model.confidence}")
            model.calibration = [(float(p), bool(r)) for p, r in data.get("calibration", [])]
            model.learning_calibration = [(float(p), bool(r)) for p, r in data.get("learning_calibration", [])]
            model.info = dict(data.get("info", {}))
            if "neighbours" in data:
                model.neighbours = NeighbourRate.from_dict(data["neighbours"])
            if model.needs_embedding and model.neighbours is None:
                raise ValueError(f"a model that reads {NEIGHBOUR_FEATURE!r} needs its 'neighbours'")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"confidence model: bad or missing field: {exc}") from exc
        return model

    @classmethod
    def load(cls, path: str | Path) -> ConfidenceModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read confidence model {str(path)!r}: {exc}") from exc
        return cls.from_dict(data)


def default_confidence_model() -> ConfidenceModel:
    """The model shipped with costmw, fit on SmolLM2-135M's answers to generated questions."""
    text = resources.files(__package__).joinpath(_DEFAULT_FILE).read_text(encoding="utf-8")
    return ConfidenceModel.from_dict(json.loads(text))
