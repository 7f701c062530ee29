"""QualityModel: the chance that a cheaper target answers a prompt as well as the strong one.

A logistic regression over the prompt's embedding (all-MiniLM-L6-v2 by default) and a few text
features; with ``answers=True`` also over checks of the cheap target's answer (a cascade's
scorer). Inference is a dot product in numpy; training is Newton's method in numpy, with the L2
strength picked by cross-validation on the training data. Saved as JSON plus ``.npy`` files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from costmw.embeddings import Embedder
from costmw.plugin_api import ConfigError

from ._answer import ANSWER_FEATURE_NAMES, answer_features
from ._features import FEATURE_NAMES, text_features

__all__ = ["QualityModel", "fit_logistic", "make_embedder"]

FORMAT = "costmw.router.quality/1"
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


def make_embedder(spec: Embedder | str | None) -> Embedder:
    """An embedder from an object or a name: ``onnx`` (default), ``local``, ``hashing[-dim]``."""
    from costmw.embeddings import HashingEmbedder, LocalEmbedder

    if spec is not None and not isinstance(spec, str):
        return spec
    name = (spec or "onnx").lower()
    if name.startswith("hashing"):
        dim = int(name.split("-", 1)[1]) if "-" in name else 256
        return HashingEmbedder(dim)
    if name in ("local", "sentence-transformers"):
        return LocalEmbedder()
    if name in ("onnx", "all-minilm-l6-v2"):
        import importlib.util

        if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tokenizers"):
            from costmw.embeddings import OnnxEmbedder

            return OnnxEmbedder()
        return LocalEmbedder()
    raise ConfigError(f"unknown embedder {spec!r}; use 'onnx', 'local', 'hashing-<dim>' or an Embedder object")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, *, c: float = 1.0, weights: np.ndarray | None = None,
                 iterations: int = 25, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method; ``y`` may hold soft labels in [0, 1]."""
    n, d = x.shape
    sw = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    a = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    beta = np.zeros(d + 1) if start is None else start.astype(np.float64).copy()
    ridge = np.full(d + 1, 1.0 / c)
    ridge[-1] = 1e-8  # the intercept is not shrunk
    for _ in range(iterations):
        p = _sigmoid(a @ beta)
        grad = a.T @ (sw * (p - y)) + ridge * beta
        hess = (a * (sw * p * (1 - p))[:, None]).T @ a + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-4:
            break
    return beta[:-1], float(beta[-1])


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


class QualityModel:
    """Predicts, per prompt, the chance in [0, 1] that the cheap target's answer is as good as the strong one's.

    ``features`` adds :func:`text_features` to the embedding; ``answers`` adds
    :func:`~costmw.plugins.router._answer.answer_features` of the cheap answer, which ``fit`` and
    ``predict`` then need (``answers=[...]``); ``c`` is the inverse L2 strength (None: chosen by
    5-fold cross-validation on the training data).
    """

    def __init__(self, embedder: Embedder | str | None = None, *, c: float | None = None,
                 features: bool = True, answers: bool = False) -> None:
        self._embedder_spec = embedder
        self._embedder: Embedder | None = embedder if embedder is not None and not isinstance(embedder, str) else None
        self.embedder_name = getattr(self._embedder, "name", None) or ("all-MiniLM-L6-v2" if embedder in (
            None, "onnx", "local") else str(embedder))
        self.c = c
        self.use_features = features
        self.use_answers = answers
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.info: dict[str, Any] = {}

    # -- embedding and features --------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self._embedder_spec if isinstance(self._embedder_spec, str) else None)
        return self._embedder

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the columns added to the embedding, in order."""
        return (FEATURE_NAMES if self.use_features else ()) + (ANSWER_FEATURE_NAMES if self.use_answers else ())

    def _features(self, prompts: Sequence[str], answers: Sequence[str] | None) -> np.ndarray:
        if self.use_answers:
            if answers is None:
                raise ConfigError("this QualityModel judges answers: pass answers=[...] alongside the prompts")
            if len(answers) != len(prompts):
                raise ConfigError(f"{len(prompts)} prompts but {len(answers)} answers")
        rows = []
        for i, prompt in enumerate(prompts):
            parts = [text_features(prompt)] if self.use_features else []
            if self.use_answers and answers is not None:
                parts.append(answer_features(prompt, answers[i]))
            rows.append(np.concatenate(parts))
        return np.stack(rows) if rows else np.zeros((0, len(self.feature_names)), np.float32)

    def _matrix(self, prompts: Sequence[str], embeddings: np.ndarray | None,
                answers: Sequence[str] | None = None) -> np.ndarray:
        emb = self.embedder.embed(list(prompts)) if embeddings is None else np.asarray(embeddings, np.float32)
        if emb.ndim == 1:
            emb = emb[None, :]
        if len(emb) != len(prompts):
            raise ConfigError(f"{len(prompts)} prompts but {len(emb)} embeddings")
        if not self.feature_names:
            return emb
        feats = self._features(prompts, answers)
        if self.mean is not None and self.std is not None:
            feats = (feats - self.mean) / self.std
        return np.hstack([emb, feats]).astype(np.float32)

    # -- training and inference --------------------------------------------------------
    def fit(self, prompts: Sequence[str], labels: Sequence[float] | np.ndarray, *,
            embeddings: np.ndarray | None = None, weights: Sequence[float] | None = None,
            answers: Sequence[str] | None = None) -> QualityModel:
        """Train on prompts and labels (1/True: the cheap target was good enough; floats allowed).

        ``answers`` are the cheap target's answers, for a model made with ``answers=True``.
        """
        y = np.asarray(labels, dtype=np.float64).ravel()
        if len(y) != len(prompts):
            raise ConfigError(f"fit got {len(prompts)} prompts but {len(y)} labels")
        if len(y) < 4 or np.any((y < 0) | (y > 1)) or np.all(y == y[0]):
            raise ConfigError("fit needs at least 4 labels in [0, 1], not all equal")
        self.mean = self.std = None
        x = self._matrix(prompts, embeddings, answers)
        if self.feature_names:
            d = len(self.feature_names)
            self.mean = x[:, -d:].mean(0)
            self.std = x[:, -d:].std(0) + 1e-6
            x[:, -d:] = (x[:, -d:] - self.mean) / self.std
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        c = self.c if self.c is not None else self._choose_c(x, y, w)
        self.coef, self.intercept = fit_logistic(x, y, c=c, weights=w)
        self.info = {"n": len(y), "c": c, "positive_share": float(y.mean()), "dim": int(x.shape[1])}
        return self

    def _choose_c(self, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, folds: int = 5) -> float:
        """The L2 strength with the lowest cross-validated log loss on the training data."""
        idx = np.random.default_rng(0).permutation(len(y))
        parts = np.array_split(idx, min(folds, len(y) // 2))
        best = (np.inf, 1.0)
        starts: dict[int, np.ndarray] = {}
        for c in C_GRID:  # smallest first; each fit starts from the previous one's solution
            losses = []
            for k, test in enumerate(parts):
                train = np.concatenate([p for j, p in enumerate(parts) if j != k])
                coef, b = fit_logistic(x[train], y[train], c=c, weights=None if w is None else w[train],
                                       start=starts.get(k))
                starts[k] = np.append(coef, b)
                losses.append(_log_loss(_sigmoid(x[test] @ coef + b), y[test]))
            best = min(best, (float(np.mean(losses)), c))
        return best[1]

    def predict(self, prompts: Sequence[str], *, embeddings: np.ndarray | None = None,
                answers: Sequence[str] | None = None) -> np.ndarray:
        """The chance, per prompt, that the cheap target answers (or, given ``answers``, answered) as well
        as the strong one."""
        if self.coef is None:
            raise ConfigError("this QualityModel is not trained: call fit(prompts, labels) or load it")
        x = self._matrix(list(prompts), embeddings, answers)
        return _sigmoid(x.astype(np.float64) @ self.coef + self.intercept)

    def predict_one(self, prompt: str, embedding: np.ndarray, answer: str | None = None) -> float:
        answers = None if answer is None else [answer]
        return float(self.predict([prompt], embeddings=embedding[None, :], answers=answers)[0])

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``quality.json`` and ``quality_*.npy`` into the folder ``path``."""
        if self.coef is None:
            raise ConfigError("cannot save an untrained QualityModel")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "quality_coef.npy", self.coef, allow_pickle=False)
        if self.mean is not None and self.std is not None:
            np.save(folder / "quality_scale.npy", np.stack([self.mean, self.std]), allow_pickle=False)
        meta = {"format": FORMAT, "embedder": self.embedder_name, "features": list(FEATURE_NAMES)
                if self.use_features else [], "answer_features": list(ANSWER_FEATURE_NAMES) if self.use_answers
                else [], "intercept": self.intercept, "c": self.c, "info": self.info}
        (folder / "quality.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | str | None = None) -> QualityModel:
        folder = Path(path)
        try:
            meta = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"no QualityModel at {str(folder)!r}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{str(folder)!r} holds format {meta.get('format')!r}, expected {FORMAT!r}")
        if meta["features"] and list(meta["features"]) != list(FEATURE_NAMES):
            raise ConfigError(f"{str(folder)!r} was trained with other text features; retrain it")
        answer_names = list(meta.get("answer_features") or [])
        if answer_names and answer_names != list(ANSWER_FEATURE_NAMES):
            raise ConfigError(f"{str(folder)!r} was trained with other answer checks; retrain it")
        if embedder is not None and not isinstance(embedder, str) and embedder.name != meta["embedder"]:
            raise ConfigError(f"{str(folder)!r} was trained on {meta['embedder']!r} embeddings, "
                              f"not {embedder.name!r}")
        spec = embedder if embedder is not None else (
            "onnx" if meta["embedder"] == "all-MiniLM-L6-v2" else meta["embedder"])
        model = cls(spec, c=meta.get("c"), features=bool(meta["features"]), answers=bool(answer_names))
        if embedder is None:
            model.embedder_name = meta["embedder"]
        model.coef = np.load(folder / "quality_coef.npy", allow_pickle=False)
        model.intercept = float(meta["intercept"])
        model.info = dict(meta.get("info") or {})
        if model.feature_names:
            scale = np.load(folder / "quality_scale.npy", allow_pickle=False)
            model.mean, model.std = scale[0], scale[1]
        return model
