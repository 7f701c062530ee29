"""Thresholds from a calibration sample, and the routing curve used to judge a router.

Scores are the predicted chance that the cheap target answers as well as the strong one; a
request goes to the strong target when its score is below the threshold. A threshold is a
quantile of the scores on a calibration sample, as RouteLLM sets its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._errors import ConfigError

__all__ = ["routing_curve", "share_needed", "threshold_for_quality", "threshold_for_share"]


def _scores(scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ConfigError("calibration needs at least one prompt")
    return s


def threshold_for_share(scores: Sequence[float] | np.ndarray, strong_share: float) -> float:
    """The threshold that sends about ``strong_share`` of these prompts to the strong target."""
    if not 0.0 <= strong_share <= 1.0:
        raise ConfigError(f"strong_share must be in [0, 1], got {strong_share}")
    s = np.sort(_scores(scores))
    k = round(strong_share * len(s))
    if k <= 0:
        return float(np.nextafter(s[0], -np.inf))
    if k >= len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[k - 1] + s[k]) / 2.0) if s[k - 1] < s[k] else float(s[k])


def routing_curve(scores: Any, cheap_ok: Any, strong_ok: Any | None = None) -> np.ndarray:
    """Accuracy after sending the ``k`` lowest-scored prompts to the strong target, for k = 0..n."""
    s = _scores(scores)
    cheap = np.asarray(cheap_ok, dtype=np.float64).ravel()
    strong = np.ones_like(cheap) if strong_ok is None else np.asarray(strong_ok, dtype=np.float64).ravel()
    if not len(s) == len(cheap) == len(strong):
        raise ConfigError(f"scores ({len(s)}), cheap labels ({len(cheap)}) and strong labels ({len(strong)}) "
                          "must have the same length")
    order = np.argsort(s, kind="stable")
    gain = strong[order] - cheap[order]
    curve: np.ndarray = (cheap.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / len(s)
    return curve


def share_needed(curve: np.ndarray, accuracy: float) -> float:
    """The smallest share of strong calls at which ``curve`` reaches ``accuracy`` (1.0 if never)."""
    hit = np.nonzero(curve >= accuracy - 1e-12)[0]
    return float(hit[0] / (len(curve) - 1)) if len(hit) else 1.0


def threshold_for_quality(scores: Any, quality: float, cheap_ok: Any, strong_ok: Any | None = None) -> float:
    """The threshold with the fewest strong calls whose accuracy is ``quality`` x the all-strong one.

    ``cheap_ok``/``strong_ok`` say whether each target answered each calibration prompt well
    (``strong_ok`` defaults to all true: quality is then the share of answers as good as the strong
    target's).
    """
    if not 0.0 < quality <= 1.0:
        raise ConfigError(f"quality must be in (0, 1], got {quality}")
    s = _scores(scores)
    curve = routing_curve(s, cheap_ok, strong_ok)
    share = share_needed(curve, quality * float(curve[-1]))
    return threshold_for_share(s, share)
