"""Single flight: identical concurrent misses make one upstream call; the others wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one call per key at a time on each event loop.

    ``run`` returns ``(result, shared)``: ``shared`` is True for callers that waited on another's
    call. When the leading call fails or is cancelled, each waiter makes its own call instead,
    so one failure is never handed to everyone.
    """

    def __init__(self) -> None:
        self._calls: dict[tuple[int, str], asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        waiting = self._calls.get(slot)
        if waiting is not None:
            try:
                return await asyncio.shield(waiting), True
            except asyncio.CancelledError:
                if not waiting.cancelled():
                    raise  # this caller was cancelled, not the leader
            except Exception:
                pass
            return await call(), False
        future: asyncio.Future[T] = loop.create_future()
        self._calls[slot] = future
        try:
            result = await call()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters handle it, nobody else should log it
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            if self._calls.get(slot) is future:
                del self._calls[slot]
