"""Learning the verifier's operating point from the cache's own traffic.

The shipped operating point holds for traffic like the model's calibration pairs. ``TrafficCheck``
measures it on the traffic the cache actually sees and moves it there:

- a **near miss** (a request whose candidates the model judged and none was served) is answered
  by the model anyway, so comparing that answer with each judged candidate's stored one labels
  them for free;
- a **semantic hit** is, with probability ``rate``, not served but sent to the model too, and its
  answer is compared in the same way (the check costs that model call, booked like any miss, with
  the cache note ``reason="checked"``).

Each compared request is one observation: its judged candidates in the order the cache ranks them
(closest first), each with the model's probability and whether its stored answer was right. For
any threshold the observations say what the cache would have served (the first candidate at or
above it) and whether that was right, so the threshold on this traffic is the lowest one at which a
one-sided 95% upper bound (Wilson score) on the wrong share among what it would have served stays
within ``max_error``, counted only where it would have served at least ``min_evidence``
observations. Until some threshold has that much evidence the shipped operating point is used.
When the evidence says the shipped point is too lax, the threshold rises, to "serve nothing" if no
point is good enough yet (near misses keep being observed, so it can come down again).

Near misses and checked hits count alike, though every near miss is observed and only a share of
hits is: requests just under the threshold in use are over-represented. While a higher probability
means a right answer at least as often (what a calibrated model gives), that makes the estimate
lean pessimistic, never optimistic; weighting checked hits up instead would leave a few
observations deciding for many.

Two answers agree when they are the same once letter case and spacing are set aside, or, by default,
when their numbers, units, identifiers and quoted text agree (the cache's guards, read on the
answers) and their embeddings' cosine is at least ``agree_cosine``. Pass ``compare`` for another
rule (a strict one, such as exact equality, for answers that must match exactly). Observations are
kept in memory, per tenant (the newest ``window`` of each of the 1,024 most recent tenants): each
tenant's traffic moves only its own threshold, so one tenant cannot make the cache lax for another.
A new process starts from the shipped operating point.
"""

from __future__ import annotations

import math
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from costmw.plugin_api import ConfigError

__all__ = ["TrafficCheck"]

_Z = 1.6448536269514722  # one-sided 95%
_LEVELS = 200  # thresholds tried at most
_TENANTS = 1024  # tenants whose observations are kept (the least recently seen go first)


def _upper(wrong: int, n: int) -> float:
    """Wilson's one-sided upper bound on the share wrong among ``n``."""
    if n <= 0:
        return 1.0
    p = wrong / n
    z2 = _Z * _Z
    centre = p + z2 / (2 * n)
    spread = _Z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return min(1.0, (centre + spread) / (1 + z2 / n))


class TrafficCheck:
    """Observations of the cache's own traffic and the threshold they support; see the module docstring.

    ``rate``: the share of semantic hits also sent to the model (0 < rate <= 1). ``min_evidence``:
    the number of observations a threshold needs at or above it before it replaces the shipped one.
    ``window``: how many observations are kept per tenant. ``agree_cosine``: how close two answers' embeddings
    must be to agree (the default comparison). ``compare``: ``(stored_answer, new_answer) -> bool``
    instead of the default. ``seed``: for the choice of hits to check.
    """

    def __init__(self, rate: float = 0.05, *, min_evidence: int = 30, window: int = 5000,
                 agree_cosine: float = 0.95, compare: Callable[[str, str], bool] | None = None,
                 seed: int | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < float(rate) <= 1.0:
            raise ConfigError(f"TrafficCheck rate must be a number in (0, 1], got {rate!r}")
        if isinstance(min_evidence, bool) or not isinstance(min_evidence, int) or min_evidence < 1:
            raise ConfigError(f"TrafficCheck min_evidence must be a positive integer, got {min_evidence!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < min_evidence:
            raise ConfigError(f"TrafficCheck window must be an integer >= min_evidence, got {window!r}")
        if not isinstance(agree_cosine, (int, float)) or not 0.0 < float(agree_cosine) <= 1.0:
            raise ConfigError(f"TrafficCheck agree_cosine must be in (0, 1], got {agree_cosine!r}")
        if compare is not None and not callable(compare):
            raise ConfigError("TrafficCheck compare must be a function (stored_answer, new_answer) -> bool")
        self.rate = float(rate)
        self.min_evidence = min_evidence
        self.agree_cosine = float(agree_cosine)
        self.compare = compare
        self._random = random.Random(seed)
        self.window = window
        self._tenants: OrderedDict[str, deque[tuple[tuple[float, bool], ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self._cached: dict[tuple[str, float, float], float] = {}
        self.stats: dict[str, int] = {"observed": 0, "near_misses": 0, "checked_hits": 0, "wrong": 0}

    def should_check(self) -> bool:
        """Whether to send this semantic hit to the model too."""
        with self._lock:
            return self._random.random() < self.rate

    def observe(self, candidates: Sequence[tuple[float, bool]], *, checked_hit: bool, tenant: str = "") -> None:
        """Record one compared request of ``tenant``: its judged candidates, closest first, each as
        (the model's probability, whether its stored answer was right)."""
        if not candidates:
            return
        with self._lock:
            seen = self._tenants.pop(tenant, None)
            if seen is None:
                seen = deque(maxlen=self.window)
            self._tenants[tenant] = seen  # the most recently seen tenant last
            while len(self._tenants) > _TENANTS:
                self._tenants.popitem(last=False)
            seen.append(tuple((float(p), bool(r)) for p, r in candidates))
            self._cached = {k: v for k, v in self._cached.items() if k[0] != tenant}
            self.stats["observed"] += 1
            self.stats["checked_hits" if checked_hit else "near_misses"] += 1
            self.stats["wrong"] += int(not candidates[0][1])

    def threshold(self, shipped: float, max_error: float, tenant: str = "") -> float:
        """The probability to serve at on this traffic: the lowest one whose observations show, at
        95%, at most ``max_error`` wrong among what it would have served, with enough evidence;
        ``shipped`` while no threshold at or below it has that evidence; ``math.inf`` (serve
        nothing) when the evidence at ``shipped`` shows too many wrong and no higher threshold has
        enough evidence to be trusted. Each tenant's traffic has its own."""
        key = (tenant, shipped, max_error)
        with self._lock:
            if key in self._cached:
                return self._cached[key]
            seen = list(self._tenants.get(tenant, ()))
        out = self._search(seen, shipped, max_error)
        with self._lock:
            self._cached[key] = out
        return out

    def _search(self, seen: list[tuple[tuple[float, bool], ...]], shipped: float, max_error: float) -> float:
        import numpy as np

        if not seen:
            return shipped
        width = max(len(c) for c in seen)
        probs = np.full((len(seen), width), -1.0)
        right = np.zeros((len(seen), width), dtype=bool)
        for i, candidates in enumerate(seen):
            for j, (p, r) in enumerate(candidates):
                probs[i, j], right[i, j] = p, r
        levels = np.unique(probs[probs >= 0.0])
        if len(levels) > _LEVELS:  # quantiles of the probabilities seen, and the extremes
            levels = np.unique(np.quantile(levels, np.linspace(0.0, 1.0, _LEVELS)))
        levels = np.unique(np.append(levels, shipped if math.isfinite(shipped) else []))
        best, bad_at_shipped = None, False
        rows = np.arange(len(seen))
        for t in levels[::-1]:  # from the strictest
            at = probs >= t
            served = at.any(axis=1)
            n = int(served.sum())
            if n < self.min_evidence:
                continue
            first = at.argmax(axis=1)
            wrong = int((~right[rows, first] & served).sum())
            ok = _upper(wrong, n) <= max_error
            if t >= shipped:
                bad_at_shipped = not ok  # the last one set is the shipped point's own evidence
            if ok:
                best = float(t)
        if best is not None and (best < shipped or bad_at_shipped):
            return best
        if bad_at_shipped:
            return math.inf
        return shipped

    def agree(self, stored: str, new: str, embed: Callable[[list[str]], Any] | None) -> bool:
        """Whether the stored answer says what the new one says (see the module docstring)."""
        if self.compare is not None:
            return bool(self.compare(stored, new))
        if " ".join(stored.casefold().split()) == " ".join(new.casefold().split()):
            return True
        if embed is None:
            return False
        from ._guards import guard

        if guard(new, stored) is not None:
            return False
        import numpy as np

        a, b = np.asarray(embed([stored, new]), dtype=np.float64)
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
        return cosine >= self.agree_cosine

    def __repr__(self) -> str:
        return f"TrafficCheck(rate={self.rate}, min_evidence={self.min_evidence}, observed={self.stats['observed']})"
