"""Fallbacks across the router's targets: backoff retries, then the next target; cooldowns for failing ones.

A target that fails ``after`` times in a row (rate limit, timeout, 5xx, context window) cools down
for ``seconds``: the router leaves it out until then, unless no other target is left. One success
ends its cooldown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from costmw.plugin_api import ConfigError, ContextWindowError, TargetError

__all__ = ["Cooldowns", "Retry", "fallback_worthy"]

T = TypeVar("T")


def fallback_worthy(exc: BaseException) -> bool:
    """Whether another target may succeed where this one failed (rate limit, timeout, 5xx, context)."""
    if isinstance(exc, TargetError):
        return exc.retryable
    cause = exc.__cause__
    return isinstance(cause, TargetError) and cause.retryable


def target_error(exc: BaseException) -> TargetError | None:
    if isinstance(exc, TargetError):
        return exc
    return exc.__cause__ if isinstance(exc.__cause__, TargetError) else None


def error_kind(exc: BaseException) -> str:
    err = target_error(exc)
    return type(err or exc).__name__


class Cooldowns:
    """Counts consecutive failures per target and says which targets are cooling down."""

    def __init__(self, after: int = 3, seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if after < 1:
            raise ConfigError(f"cooldown_after must be >= 1, got {after}")
        if seconds < 0:
            raise ConfigError(f"cooldown_s must be >= 0, got {seconds}")
        self.after = after
        self.seconds = seconds
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def failed(self, name: str) -> bool:
        """Count a failure; True when it starts a cooldown."""
        with self._lock:
            n = self._failures.get(name, 0) + 1
            self._failures[name] = n
            if n >= self.after and self.seconds > 0:
                self._until[name] = self.clock() + self.seconds
                self._failures[name] = 0
                return True
            return False

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
            self._until.pop(name, None)

    def remaining(self, name: str) -> float:
        """Seconds left in ``name``'s cooldown (0 when it is not cooling down)."""
        with self._lock:
            until = self._until.get(name)
            if until is None:
                return 0.0
            left = until - self.clock()
            if left <= 0:
                del self._until[name]
                return 0.0
            return left

    def state(self) -> dict[str, Any]:
        with self._lock:
            names = set(self._failures) | set(self._until)
        return {n: {"failures": self._failures.get(n, 0), "cooldown_s": round(self.remaining(n), 3)}
                for n in sorted(names)}


@dataclass(frozen=True)
class Retry:
    """Tries per target before falling back, with exponential backoff and jitter (tenacity)."""

    retries: int = 0
    backoff: float = 0.2
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError("backoff and max_backoff must be >= 0")

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn``; retry on fallback-worthy errors except context-window ones (a retry cannot fit)."""
        if self.retries == 0:
            return await fn()
        import tenacity

        def again(exc: BaseException) -> bool:
            return fallback_worthy(exc) and not isinstance(target_error(exc), ContextWindowError)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=self.backoff, max=self.max_backoff),
            retry=tenacity.retry_if_exception(again),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover
