"""Deadlines for target calls: a hang becomes a retryable :class:`TargetTimeout`.

Every call the chain (or a plugin that calls targets itself, such as the batcher) makes to a
target runs under a deadline: the call's own ``timeout_s`` option when it sets one, else the
target's ``timeout_s`` (``DEFAULT_TIMEOUT_S`` unless the target was given another; None turns
the deadline off for that target). A call past its deadline is cancelled and raises
``TargetTimeout``, which the router treats like any other retryable failure and falls back from.
A streamed answer gets the deadline for each chunk, so a long answer that keeps coming is fine
and a stream that stops mid-way is not.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import ConfigError, TargetTimeout

if TYPE_CHECKING:
    from ._target import Target
    from ._types import Request

__all__ = ["DEFAULT_TIMEOUT_S", "check_timeout", "deadline_for", "iterate_with_deadline", "with_deadline"]

T = TypeVar("T")

#: Seconds a target call may take when neither the call nor the target says otherwise.
DEFAULT_TIMEOUT_S = 120.0


def check_timeout(value: Any, what: str = "timeout_s") -> float | None:
    """``value`` as a deadline in seconds (None: no deadline); raises ConfigError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _per_call(request: Request) -> float | None:
    return request.options.timeout_s


def deadline_for(target: Target, requests: Request | Iterable[Request]) -> float | None:
    """Seconds ``target`` may take to serve ``requests``: the longest per-call deadline among
    them when any sets one, else the target's own ``timeout_s``."""
    batch = [requests] if not isinstance(requests, Iterable) else list(requests)
    own = [s for s in (_per_call(r) for r in batch) if s is not None]
    if own:
        return max(own)
    return getattr(target, "timeout_s", DEFAULT_TIMEOUT_S)


def _timeout(target: Target, request: Request | None, seconds: float) -> TargetTimeout:
    return TargetTimeout(f"target {target.name!r} gave no answer within its deadline of {seconds:g} s",
                         target=target.name, request=request)


async def with_deadline(awaitable: Awaitable[T], target: Target, requests: Request | Iterable[Request],
                        ) -> T:
    """Await ``awaitable`` (a call to ``target`` for ``requests``) under their deadline."""
    seconds = deadline_for(target, requests)
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds) as scope:
            return await awaitable
    except TimeoutError as exc:
        if not scope.expired():
            raise  # the call itself raised TimeoutError; the caller maps it
        first = requests if not isinstance(requests, Iterable) else next(iter(requests), None)
        raise _timeout(target, first, seconds) from exc


async def iterate_with_deadline(chunks: AsyncIterator[T], target: Target, request: Request) -> AsyncIterator[T]:
    """Yield from ``chunks``, each under ``request``'s deadline for ``target``."""
    seconds = deadline_for(target, request)
    iterator = aiter(chunks)
    try:
        while True:
            try:
                if seconds is None:
                    item = await anext(iterator)
                else:
                    async with asyncio.timeout(seconds) as scope:
                        item = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                if seconds is None or not scope.expired():
                    raise
                raise _timeout(target, request, seconds) from exc
            yield item
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
