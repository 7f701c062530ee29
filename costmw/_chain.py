"""The Chain: plugins around a target, with a ledger of every call."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._accounting import ReportedPrompts
from ._accounting import settle as settle_facts
from ._deadline import iterate_with_deadline, with_deadline
from ._errors import ConfigError, CostmwError, InvalidRequestError, NoTargetError, PluginError
from ._ledger import Ledger
from ._loop import LoopThread
from ._options import Options
from ._plugin import CallNext, Plugin, StreamNext
from ._pricing import Price, lookup_price
from ._provider_errors import map_provider_error
from ._target import Target, requested_target
from ._tokens import acount_message_tokens, count_message_tokens, count_tokens, long_text
from ._types import Chunk, Request, Response, Usage, join_chunks

# Options that no model takes as a parameter (``user`` is also OpenAI's parameter, so it may pass)
_OPTION_ONLY = frozenset(f.name for f in dataclasses.fields(Options)) - {"user"}

__all__ = ["Chain"]

log = logging.getLogger("costmw")


class Chain:
    """A chain of plugins around one or more targets.

    The first plugin is outermost. The chain is built on its first call; adding plugins after
    that raises, so every call sees the same chain. ``complete``/``stream`` are the sync twins
    of ``acomplete``/``astream`` and run on a background loop owned by the chain.
    """

    def __init__(
        self,
        plugins: Sequence[Plugin] = (),
        targets: Sequence[Target] = (),
        *,
        ledger: Ledger | str | Path | None = None,
        default_model: str | None = None,
        auto_targets: bool = False,
    ) -> None:
        for i, p in enumerate(plugins):
            if not isinstance(p, Plugin):
                raise ConfigError(f"plugins[{i}] is {type(p).__name__}, not a costmw.Plugin instance")
        self._plugins: list[Plugin] = list(plugins)
        self._targets: dict[str, Target] = {}
        for t in targets:
            self.add_target(t)
        self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self.default_model = default_model
        self.auto_targets = auto_targets
        self._build_lock = threading.Lock()
        self._handler: CallNext | None = None
        self._stream_handler: StreamNext | None = None
        self._runner = LoopThread()
        # a chain dropped without close() stops its loop thread and closes its loop (and their fds)
        self._finalizer = weakref.finalize(self, self._runner.close)
        self._prices: dict[str, Price | None] = {}
        self._reported = ReportedPrompts()
        self._closed = False

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | Path) -> Chain:
        """Build a chain from a dict, or a YAML/TOML/JSON file (validated; errors name the field)."""
        from ._config import chain_from_config

        return chain_from_config(config)

    @property
    def plugins(self) -> tuple[Plugin, ...]:
        return tuple(self._plugins)

    @property
    def targets(self) -> dict[str, Target]:
        return dict(self._targets)

    @property
    def started(self) -> bool:
        return self._handler is not None

    def add_plugin(self, plugin: Plugin) -> None:
        if self.started:
            raise ConfigError("the chain has already served a call; build a new Chain to change its plugins")
        if not isinstance(plugin, Plugin):
            raise ConfigError(f"{type(plugin).__name__} is not a costmw.Plugin instance")
        self._plugins.append(plugin)

    def add_target(self, target: Target) -> Target:
        """Add a target (allowed at any time: targets are looked up per call)."""
        if not isinstance(target, Target):
            raise ConfigError(f"{type(target).__name__} is not a costmw target")
        existing = self._targets.get(target.name)
        if existing is not None and existing is not target:
            raise ConfigError(f"a target named {target.name!r} is already in this chain")
        self._targets[target.name] = target
        return target

    def plugin(self, kind: type[Plugin] | str) -> Plugin | None:
        """The first plugin of a class (or with a name) in this chain, if any."""
        for p in self._plugins:
            if (isinstance(kind, str) and p.plugin_name == kind) or (isinstance(kind, type) and isinstance(p, kind)):
                return p
        return None

    def _ensure_built(self) -> None:
        if self._handler is not None:
            return
        with self._build_lock:
            if self._handler is not None:
                return
            if self._closed:
                raise RuntimeError("this chain is closed")
            for p in self._plugins:
                p.bind(self)
            from .tracing import active_tracer

            tracer = active_tracer()
            handler: CallNext = self._call_target
            stream_handler: StreamNext = self._stream_target
            if tracer is not None:
                handler, stream_handler = _traced(tracer, "target", "call", handler, stream_handler)
            for p in reversed(self._plugins):
                handler = _link(p, handler)
                stream_handler = _stream_link(p, stream_handler)
                if tracer is not None:
                    handler, stream_handler = _traced(tracer, "plugin", p.plugin_name, handler, stream_handler)
            if tracer is not None:
                handler, stream_handler = _traced(tracer, "chat", "", handler, stream_handler)
            self._stream_handler = stream_handler
            self._handler = handler

    # -- targets and prices ------------------------------------------------------------
    def target_for(self, request: Request) -> Target:
        """The target that serves ``request``: the one a plugin chose, else the one the request asks
        for (``options.target``, or by model), else a LiteLLM target made for the model with
        ``auto_targets``, else the chain's first target."""
        chosen = request.context.target
        if chosen is not None:
            return chosen
        target = requested_target(self._targets.values(), request)
        if target is not None:
            return target
        if self.auto_targets:
            from ._seam import litellm_target

            with self._build_lock:
                target = self._targets.get(request.model) or self.add_target(litellm_target(request.model))
            return target
        if self._targets:
            return next(iter(self._targets.values()))
        raise NoTargetError(f"no target can serve model {request.model!r}: add a target to the chain",
                            request=request)

    def price_of(self, model: str) -> Price | None:
        """USD per 1M tokens for ``model``: a target's own price first, then LiteLLM's map."""
        if model in self._prices:
            return self._prices[model]
        price = None
        target = self._targets.get(model) or next((t for t in self._targets.values() if t.model == model), None)
        if target is not None:
            price = target.price
        if price is None:
            price = lookup_price(model)
        self._prices[model] = price
        return price

    def reference_price(self, original: Request) -> Price:
        """The price the baseline is taken at: the requested model's, else the price of the target
        the chain would call for the request untouched by plugins, else nothing (0)."""
        price = self.price_of(original.model)
        if price is None:
            try:
                price = self.target_for(Request(original.messages, original.model, original.params,
                                                original.metadata)).price
            except CostmwError:
                price = None
        return price or Price(0.0, 0.0)

    # -- the terminal links --------------------------------------------------------------
    async def _call_target(self, request: Request) -> Response:
        target = self.target_for(request)
        _served(request, target)
        try:
            response = await with_deadline(target.acomplete(request), target, request)
        except CostmwError:
            raise
        except Exception as exc:
            raise map_provider_error(exc, target.name, request) from exc
        if not response.served_by:
            await target._afinish(request, response)
        request.context.facts.call(target, response.usage, model=response.model)
        return response

    async def _stream_target(self, request: Request) -> AsyncIterator[Chunk]:
        target = self.target_for(request)
        _served(request, target)
        try:
            async for chunk in iterate_with_deadline(target.astream(request), target, request):
                if chunk.response is not None:
                    if not chunk.response.served_by:
                        await target._afinish(request, chunk.response)
                    request.context.facts.call(target, chunk.response.usage, model=chunk.response.model)
                    request.context.remember("served_done", True)
                yield chunk
        except CostmwError:
            raise
        except Exception as exc:
            raise map_provider_error(exc, target.name, request) from exc

    # -- finishing a call: the one accounting path ----------------------------------------
    def settle(self, original: Request, response: Response | None, started: float, *,
                error: BaseException | None = None, status: str = "ok") -> Response:
        """Price the call's facts, fill in the response and record its ledger row; runs once per
        call on success, error and cancellation alike."""
        ctx = original.context
        response = response if response is not None else Response(finish_reason=None)
        try:
            account = settle_facts(original, response, status, self.reference_price(original), self._reported)
            response.cost_usd = account.cost_usd
            response.baseline_cost_usd = account.baseline_cost_usd
            response.savings = account.savings()
            accounting: dict[str, Any] = account.info
        except Exception as exc:  # pragma: no cover - bookkeeping must never fail the call
            log.warning("costmw could not price a call: %s", exc)
            accounting = {"error": str(exc)}
        response.request_id = original.id
        response.latency_s = time.perf_counter() - started
        if ctx.info:
            response.info = {**response.info, **ctx.info}
        try:
            row = self.ledger.make_row(original, response, error=error, latency_s=response.latency_s,
                                       status=status, info={**response.info, "accounting": accounting})
            self.ledger.record(row)
        except Exception as exc:  # pragma: no cover - make_row is defensive already
            log.warning("costmw could not record a ledger row: %s", exc)
        return response

    async def _count_original(self, original: Request) -> None:
        """The baseline's count of a long prompt, made off the event loop before the call is settled."""
        key = ("accounting", "original_prompt_tokens")
        if original.context.recall(key) is None:
            original.context.remember(key, await acount_message_tokens(
                original.messages, original.model, original.params.get("tools")))

    def _partial(self, original: Request, seen: list[Chunk]) -> Response | None:
        """What a stream cut short had produced: its text and tokens so far, as a call made."""
        target: Target | None = original.context.recall("served_target")
        served: Request = original.context.recall("served") or original
        text, calls = join_chunks(seen)
        if target is None:
            return Response(text=text, tool_calls=calls, finish_reason=None) if seen else None
        usage = Usage(count_message_tokens(served.messages, target.model, served.params.get("tools")),
                      count_tokens(text + (str(calls) if calls else ""), target.model), estimated=True)
        if not original.context.recall("served_done"):  # (a call that ended is booked already)
            original.context.facts.call(target, usage, partial=True)
        return Response(text=text, tool_calls=calls, finish_reason=None, model=target.model, usage=usage,
                        served_by=f"target:{target.name}")

    def _request(self, messages: Any, model: str | None, metadata: Mapping[str, Any] | None,
                 options: Options | Mapping[str, Any] | None, params: dict[str, Any], stream: bool) -> Request:
        misplaced = sorted(set(params) & _OPTION_ONLY)
        if misplaced:  # tenant="x" among the model's parameters would bypass the tenant's budget
            shown = ", ".join(f"{k!r}: ..." for k in misplaced)
            what = "is a costmw option" if len(misplaced) == 1 else "are costmw options"
            raise InvalidRequestError(f"{', '.join(misplaced)} {what}, not a model parameter: "
                                      f"pass options={{{shown}}}")
        request = Request.create(messages, model or self.default_model, params=params,
                                 metadata=metadata, options=options, stream=stream)
        request.context.chain = self
        return request

    def _check_target(self, request: Request) -> None:
        """Fail fast when ``options.target`` names no target of this (built) chain."""
        if request.options.target is not None and request.context.target is None:
            requested_target(self._targets.values(), request)

    # -- public API ----------------------------------------------------------------------
    async def acomplete(self, messages: Any, model: str | None = None, *,
                        metadata: Mapping[str, Any] | None = None,
                        options: Options | Mapping[str, Any] | None = None, **params: Any) -> Response:
        """Send one chat request through the chain and return its response.

        ``options`` are costmw's controls for this call (:class:`costmw.Options` or a dict of its
        fields); ``metadata`` holds free-form labels for the ledger; ``params`` go to the model.
        """
        request = self._request(messages, model, metadata, options, params, stream=False)
        return await self.asend(request)

    async def asend(self, request: Request) -> Response:
        """Send a prepared :class:`Request` through the chain."""
        self._ensure_built()
        assert self._handler is not None
        if request.context.chain is None:
            request.context.chain = self
        self._check_target(request)
        started = time.perf_counter()
        try:
            response = await self._handler(request)
        except asyncio.CancelledError:
            self.settle(request, None, started, status="cancelled")
            raise
        except BaseException as exc:
            self.settle(request, None, started, error=exc, status="error")
            raise
        if long_text(request.messages):  # the baseline's token count, off the loop for a long prompt
            await self._count_original(request)
        return self.settle(request, response, started)

    async def astream(self, messages: Any, model: str | None = None, *,
                      metadata: Mapping[str, Any] | None = None,
                      options: Options | Mapping[str, Any] | None = None,
                      **params: Any) -> AsyncIterator[Chunk]:
        """Stream one chat request; the last chunk carries the whole :class:`Response`.

        A stream the caller stops reading (or cancels) is recorded as ``cancelled``, with the
        tokens generated so far and their cost."""
        request = self._request(messages, model, metadata, options, params, stream=True)
        async with _closing(self.asend_stream(request)) as chunks:  # closing this closes it
            async for chunk in chunks:
                yield chunk

    async def asend_stream(self, request: Request) -> AsyncIterator[Chunk]:
        """Stream a prepared :class:`Request` through the chain (the last chunk carries the response)."""
        self._ensure_built()
        assert self._stream_handler is not None
        if request.context.chain is None:
            request.context.chain = self
        self._check_target(request)
        started = time.perf_counter()
        seen: list[Chunk] = []
        finished = False
        try:
            async with _closing(self._stream_handler(request)) as chunks:
                async for chunk in chunks:
                    if chunk.response is not None:
                        finished = True
                        yield Chunk(response=self.settle(request, chunk.response, started))
                    else:
                        seen.append(chunk)
                        yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            if not finished:
                self.settle(request, self._partial(request, seen), started, status="cancelled")
            raise
        except BaseException as exc:
            if not finished:
                self.settle(request, None, started, error=exc, status="error")
            raise

    def complete(self, messages: Any, model: str | None = None, *,
                 metadata: Mapping[str, Any] | None = None,
                 options: Options | Mapping[str, Any] | None = None, **params: Any) -> Response:
        """Sync twin of :meth:`acomplete`; safe from many threads and inside a running loop."""
        request = self._request(messages, model, metadata, options, params, stream=False)
        return self._runner.run(self.asend(request))

    def stream(self, messages: Any, model: str | None = None, *,
               metadata: Mapping[str, Any] | None = None,
               options: Options | Mapping[str, Any] | None = None, **params: Any) -> Iterator[Chunk]:
        """Sync twin of :meth:`astream`."""
        self._request(messages, model, metadata, options, params, stream=True)  # fail fast on bad input
        return self._runner.iterate(self.astream(messages, model, metadata=metadata, options=options, **params))

    def run_sync(self, coro: Any) -> Any:
        """Run a coroutine on the chain's background loop (used by the sync wrappers of plugins)."""
        return self._runner.run(coro)

    async def asubmit_batch(self, requests: Any, *, completion_window: str = "24h", **options: Any) -> Any:
        """Send work that can wait to the provider's Batch API at its discount; returns a BatchJob."""
        from ._batch_api import asubmit_batch

        return await asubmit_batch(self, requests, completion_window=completion_window, **options)

    def submit_batch(self, requests: Any, *, completion_window: str = "24h", **options: Any) -> Any:
        """Sync twin of :meth:`asubmit_batch`."""
        return self._runner.run(self.asubmit_batch(requests, completion_window=completion_window, **options))

    def feedback(self, response_id: str, good: bool, note: str = "") -> None:
        """Record whether an answer was good; the router can learn from these labels."""
        if not isinstance(response_id, str) or not response_id:
            raise ValueError("feedback needs the request_id of a response")
        self.ledger.add_feedback(response_id, good, note)
        for p in self._plugins:
            hook = getattr(p, "on_feedback", None)
            if hook is not None:
                hook(response_id, good)

    def report(self) -> dict[str, Any]:
        return self.ledger.summary()

    async def aclose(self) -> None:
        self._closed = True
        for p in self._plugins:
            await p.aclose()
        for t in list(self._targets.values()):
            await t.aclose()
        await self.ledger.arun(self.ledger.flush, 10.0)  # the calls' rows are in the ledger's file

    def close(self) -> None:
        if self._closed:
            return
        if self._runner._loop is not None:
            self._runner.run(self.aclose())
        else:
            import asyncio

            asyncio.run(self.aclose())
        self._runner.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Chain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self._runner.close()

    def __repr__(self) -> str:
        names = ", ".join(p.plugin_name for p in self._plugins)
        return f"Chain(plugins=[{names}], targets={list(self._targets)})"


def _traced(tracer: Any, kind: str, name: str, handler: CallNext,
            stream_handler: StreamNext) -> tuple[CallNext, StreamNext]:
    from .tracing import wrap_call, wrap_stream

    return wrap_call(tracer, kind, name, handler), wrap_stream(tracer, kind, name, stream_handler)


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[Chunk]) -> AsyncIterator[AsyncIterator[Chunk]]:
    """``chunks``, closed on the way out (so a stream the caller abandons stops at its source)."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _served(request: Request, target: Target) -> None:
    """Note the request and target of the latest call, for the baseline and for cancellations."""
    request.context.remember("served", request)
    request.context.remember("served_target", target)
    request.context.remember("served_done", False)


def _plugin_failure(plugin: Plugin, request: Request, exc: Exception) -> PluginError:
    name = plugin.plugin_name
    return PluginError(f"plugin {name!r} failed: {type(exc).__name__}: {exc}", plugin=name, request=request)


def _link(plugin: Plugin, call_next: CallNext) -> CallNext:
    handle = plugin.handle

    async def link(request: Request) -> Response:
        try:
            return await handle(request, call_next)
        except CostmwError:
            raise
        except Exception as exc:
            raise _plugin_failure(plugin, request, exc) from exc

    return link


def _stream_link(plugin: Plugin, call_next: StreamNext) -> StreamNext:
    async def link(request: Request) -> AsyncIterator[Chunk]:
        try:
            async for chunk in plugin.astream(request, call_next):
                yield chunk
        except CostmwError:
            raise
        except Exception as exc:
            raise _plugin_failure(plugin, request, exc) from exc

    return link


