"""LearnedVerifier: a fine-tuned cross-encoder decides whether a cached answer serves a new query.

The model reads the pair as one input, ``[CLS] query [SEP] cached [SEP]``: all-MiniLM-L6-v2's
first layers fine-tuned on generated and hand-written pairs, a mean-pool and a linear layer giving
one score, turned into a probability by Platt scaling fitted on held-out calibration pairs.
``max_error`` picks the operating point from those pairs: the lowest threshold at which a
one-sided 95% upper bound (Wilson score) on the share of wrong answers among the pairs served
stays at or below ``max_error`` (behind the hard guards, counted on the pairs the guards let
through: see :meth:`LearnedVerifier.calibrate_on`). That is an estimate that holds for traffic like the calibration
pairs, not a guarantee for any traffic.

The model (int8 ONNX), its tokenizer and calibration ship in ``data/verifier``; they load on
first use, once, and run with onnxruntime on at most two threads, one run per pair (see
:func:`score_pairs`); scores of recent pairs are kept (cached questions come back often).
Training: ``costmw.plugins.cache._train``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmw import ConfigError
from costmw.plugin_api import missing_extra

from ._protocol import CacheVerdict

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_MODEL_DIR", "LearnedVerifier", "open_model", "score_pairs", "wilson_upper"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "data" / "verifier"
CODE_VERSION = "cross/2"  # bump when this file changes how a score is computed from a pair
MODEL_FILES = ("model.onnx", "tokenizer.json", "calibration.json")
_CONFIDENCE = 0.95
_Z_ONE_SIDED = {0.9: 1.2815515655446004, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408}
_SESSIONS: dict[tuple[str, int, int], Any] = {}  # one onnxruntime session per model file, shared by instances
_SESSIONS_LOCK = threading.Lock()


def open_model(model_dir: Path, threads: int = 1) -> tuple[Any, Any]:
    """(onnxruntime session, pair tokenizer) of a verifier model folder; the session is shared."""
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise missing_extra("onnxruntime and tokenizers", "onnx", exc) from exc
    max_length = int(json.loads((model_dir / "calibration.json").read_text(encoding="utf-8")).get("max_length", 64))
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length, strategy="longest_first")
    tok.no_padding()  # MiniLM's tokenizer file pads to 128 tokens: 4-5 times the work of a short pair
    path = model_dir / "model.onnx"
    key = (str(path.resolve()), path.stat().st_mtime_ns, threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            _SESSIONS[key] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return _SESSIONS[key], tok


def score_pairs(session: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """Raw scores (logits) of (query, cached) pairs, one run per pair.

    One run each, not one padded batch: the int8 model quantizes its activations with one scale
    per run, so a pair scored next to others (or next to padding) would get a slightly different
    score, and a verdict would depend on which other candidates a lookup found."""
    import numpy as np

    out = np.empty(len(pairs), dtype=np.float64)
    for i, enc in enumerate(tokenizer.encode_batch([(q, c) for q, c in pairs])):
        feed = {"input_ids": np.asarray([enc.ids], dtype=np.int64),
                "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64)}
        out[i] = float(np.asarray(session.run(None, feed)[0]).reshape(-1)[0])
    return out


def wilson_upper(wrong: int, served: int, confidence: float = _CONFIDENCE) -> float:
    """One-sided Wilson score upper bound on a rate from ``wrong`` events in ``served`` trials."""
    if served <= 0:
        return 1.0
    z = _Z_ONE_SIDED[confidence]
    rate = wrong / served
    centre = rate + z * z / (2 * served)
    spread = z * math.sqrt(rate * (1 - rate) / served + z * z / (4 * served * served))
    return min(1.0, (centre + spread) / (1 + z * z / served))


class LearnedVerifier:
    """The cache verifier backed by the shipped model (see the module docstring).

    ``max_error``: the largest estimated share of wrong answers among the candidates served
    (0 < max_error < 1; default 0.02). ``model_dir``: a folder made by the training command.
    """

    def __init__(self, max_error: float = 0.02, model_dir: Path | str | None = None, *, threads: int = 1) -> None:
        if not isinstance(max_error, (int, float)) or not 0.0 < float(max_error) < 1.0:
            raise ConfigError(f"max_error must be a number between 0 and 1 (exclusive), got {max_error!r}")
        self.max_error = float(max_error)
        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        missing = [n for n in MODEL_FILES if not (self.model_dir / n).is_file()]
        if missing:
            raise ConfigError(f"LearnedVerifier model folder {self.model_dir} lacks {', '.join(missing)}")
        self.threads = min(2, max(1, int(threads)))
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._recent_size = 4096
        self._asked: Callable[[str, str], bool] | None = None

    def calibrate_on(self, asked: Callable[[str, str], bool]) -> None:
        """Choose the operating point from the calibration pairs ``asked`` lets through: the pairs
        this model is asked about. Behind hard guards, a pair a guard refuses never reaches the
        model, so the share of wrong answers among the pairs it serves is counted on the others
        (the calibration file carries its pairs' texts from version 2 of the training command; an
        older file is used whole)."""
        self._asked = asked
        for name in ("threshold", "_operating_points"):
            self.__dict__.pop(name, None)

    @cached_property
    def _calibration(self) -> dict[str, Any]:
        data = json.loads((self.model_dir / "calibration.json").read_text(encoding="utf-8"))
        if (not isinstance(data, dict) or "platt" not in data
                or len(data.get("scores", ())) != len(data.get("labels", ()))):
            raise ConfigError(f"{self.model_dir / 'calibration.json'} is not a verifier calibration file")
        return data

    @cached_property
    def version(self) -> str:
        """A hash of the model files and the code version: it changes when either does."""
        h = hashlib.sha256(CODE_VERSION.encode())
        for name in MODEL_FILES:
            h.update(name.encode())
            h.update(hashlib.sha256((self.model_dir / name).read_bytes()).digest())
        return f"{CODE_VERSION}:{h.hexdigest()[:16]}"

    @cached_property
    def threshold(self) -> float:
        """The probability at or above which a candidate is served, for this ``max_error``."""
        return self.threshold_for(self.max_error)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        import numpy as np

        platt = self._calibration["platt"]
        z = np.clip(float(platt["a"]) * raw + float(platt["b"]), -60.0, 60.0)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    @cached_property
    def _operating_points(self) -> list[tuple[float, float]]:
        """(probability threshold, upper bound on wrong among served), from strictest to loosest."""
        import numpy as np

        probs = self._calibrate(np.asarray(self._calibration["scores"], dtype=np.float64))
        labels = np.asarray(self._calibration["labels"], dtype=np.int64)
        pairs = self._calibration.get("pairs")
        if self._asked is not None and isinstance(pairs, list) and len(pairs) == len(labels):
            keep = np.asarray([bool(self._asked(str(a), str(b))) for a, b in pairs], dtype=bool)
            probs, labels = probs[keep], labels[keep]
        order = np.argsort(-probs, kind="mergesort")
        probs, labels = probs[order], labels[order]
        points, wrong = [], 0
        for i, (p, y) in enumerate(zip(probs, labels, strict=True)):
            wrong += int(y == 0)
            if i + 1 < len(probs) and probs[i + 1] == p:
                continue  # a threshold serves every tie at once
            points.append((float(p), wilson_upper(wrong, i + 1)))
        return points

    def threshold_for(self, max_error: float) -> float:
        """The lowest threshold whose estimated wrong share stays within ``max_error``
        (``math.inf``, serve nothing, when none does). Never rises as ``max_error`` grows."""
        if not 0.0 < max_error < 1.0:
            raise ConfigError(f"max_error must be between 0 and 1 (exclusive), got {max_error!r}")
        feasible = [p for p, bound in self._operating_points if bound <= max_error]
        return min(feasible) if feasible else math.inf

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                self._session, self._tokenizer = open_model(self.model_dir, self.threads)
            return self._session, self._tokenizer

    def raw_scores(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The model's raw scores (logits) for (query, cached) pairs (pairs scored lately are
        not scored again)."""
        import numpy as np

        session, tok = self._load()
        scores: dict[tuple[str, str], float] = {}
        with self._lock:
            for pair in pairs:
                if pair in self._recent:
                    scores[pair] = self._recent[pair]
                    self._recent.move_to_end(pair)
        missing = list(dict.fromkeys(p for p in pairs if p not in scores))
        if missing:
            fresh = dict(zip(missing, (float(s) for s in score_pairs(session, tok, missing)), strict=True))
            scores.update(fresh)
            with self._lock:
                self._recent.update(fresh)
                while len(self._recent) > self._recent_size:
                    self._recent.popitem(last=False)
        return np.asarray([scores[p] for p in pairs], dtype=np.float64)

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Calibrated P(one answer serves both) for each (query, cached) pair."""
        import numpy as np

        if not pairs:
            return np.zeros(0, dtype=np.float64)
        return self._calibrate(self.raw_scores([(str(q), str(c)) for q, c in pairs]))

    def _verdicts(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        probs = self.predict([(query, c) for c in candidates])
        limit = self.threshold
        return [CacheVerdict(bool(p >= limit), float(p), "model", f"p={p:.3f} threshold={limit:.3f}") for p in probs]

    def check(self, query: str, cached: str) -> CacheVerdict:
        """One verdict: serve ``cached``'s answer for ``query`` when the probability reaches the threshold."""
        return self._verdicts(query, [cached])[0]

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        """Verdicts for all candidates, scored together in a worker thread (never on the loop)."""
        if not candidates:
            return []
        return await asyncio.to_thread(self._verdicts, query, list(candidates))

    def warm(self) -> LearnedVerifier:
        """Load the model now instead of on the first check."""
        self._load()
        return self
