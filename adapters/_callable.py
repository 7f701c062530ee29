"""CallableTarget (a user's own function) and MockTarget (a test double driven by a function)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from costmw.plugin_api import (
    DEFAULT_TIMEOUT_S,
    Capabilities,
    Price,
    Request,
    Response,
    Target,
    Usage,
    map_provider_error,
)

__all__ = ["CallableTarget", "MockTarget"]


def _accepts(fn: Callable[..., Any]) -> tuple[bool, frozenset[str]]:
    """Whether ``fn`` takes **kwargs, and the names of the keyword parameters it takes."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True, frozenset()
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    names = frozenset(n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    return var_kw, names


def _to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, str):
        return Response(text=result)
    if isinstance(result, Mapping):
        usage = result.get("usage") or {}
        return Response(
            text=str(result.get("text", result.get("content", "")) or ""),
            tool_calls=result.get("tool_calls"),
            finish_reason=result.get("finish_reason", "stop"),
            model=str(result.get("model", "")),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
        )
    raise TypeError(f"a target function must return str, dict or costmw.Response, got {type(result).__name__}")


#: Threads for sync target functions: their own pool, so calls that hang until their deadline
#: never starve the event loop's default executor (which the cache and embedders use).
_MAX_THREADS = 64
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix="costmw-target")
        return _pool


class CallableTarget(Target):
    """A user function ``fn(messages, **params) -> str`` (sync or async) used as a target.

    Sync functions run in worker threads of their own so they never block the chain's loop.
    Token usage the function does not report is counted with costmw's counter and marked estimated.
    Exceptions the function raises are mapped like a provider's (``openai.RateLimitError``,
    ``httpx.ReadTimeout``, ``TimeoutError``, a 5xx status...), so the router falls back from
    them; a call past ``timeout_s`` raises :class:`TargetTimeout`.
    """

    kind = "callable"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        model: str | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        capabilities: Capabilities | None = None,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallableTarget needs a function, got {type(fn).__name__}")
        target_name = name or getattr(fn, "__qualname__", None) or type(fn).__name__
        super().__init__(target_name, model=model, price=price, capabilities=capabilities, timeout_s=timeout_s)
        self.fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__)
        self._var_kw, self._names = _accepts(fn)

    def _params(self, request: Request) -> dict[str, Any]:
        if self._var_kw:
            return dict(request.params)
        return {k: v for k, v in request.params.items() if k in self._names}

    async def _invoke(self, request: Request) -> Any:
        messages = [dict(m) for m in request.messages]
        params = self._params(request)
        if self._is_async:
            return await self.fn(messages, **params)
        call = functools.partial(contextvars.copy_context().run, self.fn, messages, **params)
        result = await asyncio.get_running_loop().run_in_executor(_threads(), call)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def acomplete(self, request: Request) -> Response:
        try:
            result = await self._invoke(request)
        except Exception as exc:
            raise map_provider_error(exc, self.name, request) from exc
        return await self._afinish(request, _to_response(result))


def _echo(request: Request) -> str:
    return request.last_user_text


class MockTarget(Target):
    """A target driven by ``handler(request)``, for tests and benchmarks; makes no network call.

    The handler may be sync or async and return str, dict or Response; it defaults to echoing the
    last user message. ``calls`` keeps every request served, ``batches`` every abatch group.
    Token usage the handler does not report is counted with costmw's counter and marked estimated.
    """

    kind = "mock"

    def __init__(
        self,
        handler: Callable[[Request], Any] | Callable[[Request], Awaitable[Any]] | None = None,
        *,
        name: str = "mock",
        model: str | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = (0.0, 0.0),
        capabilities: Capabilities | None = None,
        latency: float = 0.0,
        record: bool = True,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(name, model=model, price=price,
                         capabilities=capabilities or Capabilities(batching=True), timeout_s=timeout_s)
        self.handler = handler or _echo
        self._is_async = inspect.iscoroutinefunction(self.handler)
        self.latency = latency
        self.record = record
        self.calls: list[Request] = []
        self.batches: list[int] = []

    async def acomplete(self, request: Request) -> Response:
        if self.record:
            self.calls.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        result = await self.handler(request) if self._is_async else self.handler(request)  # type: ignore[misc]
        return await self._afinish(request, _to_response(result))

    async def abatch(self, requests: Any) -> list[Response | BaseException]:
        self.batches.append(len(requests))
        return await super().abatch(requests)
