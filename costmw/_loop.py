"""One background event loop per chain, so the sync API works from any thread or running loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread"]


class LoopThread:
    """An event loop running forever in a daemon thread; coroutines are handed to it."""

    def __init__(self, name: str = "costmw-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    ready = threading.Event()

                    def serve() -> None:
                        asyncio.set_event_loop(loop)
                        loop.call_soon(ready.set)
                        try:
                            loop.run_forever()
                        finally:  # stopped from inside (a finalizer that ran on this thread): close here
                            if not loop.is_closed():
                                with contextlib.suppress(RuntimeError):
                                    loop.close()

                    thread = threading.Thread(target=serve, name=self._name, daemon=True)
                    thread.start()
                    ready.wait()
                    self._thread = thread
                    self._loop = loop
        return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the background loop and wait for its result in this thread."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "the sync API was called from inside the chain's own event loop "
                "(e.g. from a plugin); await the async twin (acomplete/astream) instead"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator on the background loop, one item at a time."""
        loop = self.loop

        async def step() -> tuple[bool, Any]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                fut: concurrent.futures.Future[tuple[bool, Any]] = asyncio.run_coroutine_threadsafe(step(), loop)
                try:
                    ok, item = fut.result()
                except BaseException:
                    fut.cancel()
                    raise
                if not ok:
                    return
                yield item
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(aclose(), loop).result(timeout=5)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            if thread is not None and thread is not threading.current_thread() and loop.is_running():
                # cancel what is still pending (e.g. library background workers) so it ends cleanly
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            if not loop.is_running():
                loop.close()


async def _cancel_pending() -> None:
    """Cancel every other task of the running loop and wait for them to finish."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
