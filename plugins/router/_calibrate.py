"""Thresholds from a calibration sample, and the routing curve used to judge a router.

Scores are the predicted chance that the cheap target answers as well as the strong one. By
default a request goes to the strong target when its score is below the threshold, which spends
the fewest strong calls. Given each prompt's ``extra_cost`` (what the strong target costs more
than the cheap one, USD), a request goes to the strong target when its expected gain per extra
dollar, ``(1 - score) / extra_cost``, is above the threshold, which spends the fewest dollars; a
request on which the strong target is not dearer always goes to it. A threshold is a quantile of
the calibration sample, as RouteLLM sets its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from costmw.plugin_api import ConfigError

__all__ = ["escalation_order", "gain_per_dollar", "routing_curve", "sends_to_strong", "share_needed",
           "threshold_for_quality", "threshold_for_share"]


def _scores(scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ConfigError("calibration needs at least one prompt")
    return s


def gain_per_dollar(scores: Any, extra_cost: Any) -> np.ndarray:
    """``(1 - score) / extra_cost`` per prompt; infinite where the strong target is not dearer."""
    s = _scores(scores)
    extra = np.asarray(extra_cost, dtype=np.float64).ravel()
    if len(extra) != len(s):
        raise ConfigError(f"{len(s)} scores but {len(extra)} extra costs")
    if not np.all(np.isfinite(extra)):
        raise ConfigError("extra_cost must be finite numbers (USD the strong target costs more per prompt)")
    gain = np.full(len(s), np.inf)
    dearer = extra > 0
    gain[dearer] = (1.0 - s[dearer]) / extra[dearer]
    return gain


def escalation_order(scores: Any, extra_cost: Any | None = None) -> np.ndarray:
    """Prompt indices in the order a sweep of the threshold sends them to the strong target.

    Lowest score first; with ``extra_cost``, highest expected gain per extra dollar first.
    """
    if extra_cost is None:
        return np.argsort(_scores(scores), kind="stable")
    return np.argsort(-gain_per_dollar(scores, extra_cost), kind="stable")


def sends_to_strong(scores: Any, threshold: float, extra_cost: Any | None = None) -> np.ndarray:
    """Which prompts a threshold sends to the strong target (the rule ``Learned`` applies)."""
    if extra_cost is None:
        mask: np.ndarray = _scores(scores) < threshold
        return mask
    gain = gain_per_dollar(scores, extra_cost)
    strong: np.ndarray = np.isinf(gain) | (gain > threshold)
    return strong


def threshold_for_share(scores: Sequence[float] | np.ndarray, strong_share: float, *,
                        extra_cost: Any | None = None) -> float:
    """The threshold that sends about ``strong_share`` of these prompts to the strong target.

    With ``extra_cost`` the threshold is in expected gain per extra dollar, and the prompts on
    which the strong target is not dearer count first (they always go to it).
    """
    if not 0.0 <= strong_share <= 1.0:
        raise ConfigError(f"strong_share must be in [0, 1], got {strong_share}")
    s = _scores(scores)
    k = round(strong_share * len(s))
    if extra_cost is not None:
        return _gain_threshold(gain_per_dollar(s, extra_cost), k)
    s = np.sort(s)
    if k <= 0:
        return float(np.nextafter(s[0], -np.inf))
    if k >= len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[k - 1] + s[k]) / 2.0) if s[k - 1] < s[k] else float(s[k])


def _gain_threshold(gain: np.ndarray, k: int) -> float:
    """A threshold (>= 0) that sends the ``k`` highest gains per dollar to the strong target."""
    finite = np.sort(gain[np.isfinite(gain)])[::-1]
    k -= len(gain) - len(finite)
    if len(finite) == 0:
        return 0.0
    if k <= 0:
        return float(finite[0])
    if k >= len(finite):
        return max(0.0, float(np.nextafter(finite[-1], -np.inf)))
    above, below = finite[k - 1], finite[k]
    return float((above + below) / 2.0) if above > below else float(below)


def routing_curve(scores: Any, cheap_ok: Any, strong_ok: Any | None = None, *,
                  extra_cost: Any | None = None) -> np.ndarray:
    """Accuracy after sending the first ``k`` prompts of :func:`escalation_order` to the strong target,
    for k = 0..n (the lowest-scored first; with ``extra_cost``, the highest gain per dollar first)."""
    s = _scores(scores)
    cheap = np.asarray(cheap_ok, dtype=np.float64).ravel()
    strong = np.ones_like(cheap) if strong_ok is None else np.asarray(strong_ok, dtype=np.float64).ravel()
    if not len(s) == len(cheap) == len(strong):
        raise ConfigError(f"scores ({len(s)}), cheap labels ({len(cheap)}) and strong labels ({len(strong)}) "
                          "must have the same length")
    order = escalation_order(s, extra_cost)
    gain = strong[order] - cheap[order]
    curve: np.ndarray = (cheap.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / len(s)
    return curve


def share_needed(curve: np.ndarray, accuracy: float) -> float:
    """The smallest share of strong calls at which ``curve`` reaches ``accuracy`` (1.0 if never)."""
    hit = np.nonzero(curve >= accuracy - 1e-12)[0]
    return float(hit[0] / (len(curve) - 1)) if len(hit) else 1.0


def threshold_for_quality(scores: Any, quality: float, cheap_ok: Any, strong_ok: Any | None = None, *,
                          extra_cost: Any | None = None) -> float:
    """The threshold with the fewest strong calls whose accuracy is ``quality`` x the all-strong one.

    ``cheap_ok``/``strong_ok`` say whether each target answered each calibration prompt well
    (``strong_ok`` defaults to all true: quality is then the share of answers as good as the strong
    target's). With ``extra_cost`` (USD the strong target costs more, per prompt) prompts are
    escalated by expected gain per extra dollar, so the threshold found spends the fewest dollars
    along that order, and it is in gain-per-dollar units.
    """
    if not 0.0 < quality <= 1.0:
        raise ConfigError(f"quality must be in (0, 1], got {quality}")
    s = _scores(scores)
    curve = routing_curve(s, cheap_ok, strong_ok, extra_cost=extra_cost)
    share = share_needed(curve, quality * float(curve[-1]))
    return threshold_for_share(s, share, extra_cost=extra_cost)
