"""Batcher: group concurrent calls to one target into one ``target.abatch`` (micro-batching).

Requests for the same target that arrive close together, and whose generation parameters can
share a batch, are sent as one batch: a local model runs one padded forward pass for all of
them; a remote target (one that does not batch) gets a concurrency-limited fan-out instead.
Every caller gets exactly its own result or its own exception. Each call to the target runs
under its deadline (see ``Target.timeout_s``), so calls that hang give their slots back as
``TargetTimeout`` errors and later calls to that target go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from costmw.plugin_api import (
    BatcherClosedError,
    CallNext,
    ConfigError,
    Plugin,
    QueueFullError,
    Request,
    Response,
    Target,
    TargetError,
    map_provider_error,
    register_plugin,
    with_deadline,
)

if TYPE_CHECKING:
    from costmw import Chain

__all__ = ["PER_REQUEST_PARAMS", "Batcher", "BatcherClosedError", "QueueFullError"]

log = logging.getLogger("costmw.batcher")

# Parameters that may differ inside one batch: the target serves each request's own value.
PER_REQUEST_PARAMS = frozenset({"max_tokens", "max_completion_tokens", "max_new_tokens"})
_MAX_IDLE_GROUPS = 256
_EARLY = 1e-4  # timers may fire a hair early; count a request this close to its deadline as due


@dataclass(eq=False)
class _Item:
    request: Request
    future: asyncio.Future[Response]
    enqueued: float


class _Group:
    """Requests for one target whose parameters allow them to share a batch."""

    __slots__ = ("in_flight", "known", "peak", "pending")

    def __init__(self) -> None:
        self.pending: deque[_Item] = deque()
        self.in_flight = 0
        self.peak = 0  # most requests outstanding at once since the last dispatch
        self.known = False  # has dispatched before, so ``peak`` says how much company to expect


@dataclass(eq=False)
class _Lane:
    """What one target has queued and running on one event loop."""

    target: Target
    batching: bool
    limit: int
    groups: OrderedDict[str, _Group] = field(default_factory=OrderedDict)
    running: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None
    pump_scheduled: bool = False
    flushing: bool = False

    def group(self, key: str) -> _Group:
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= _MAX_IDLE_GROUPS:
                self._forget_idle_group()
            group = self.groups[key] = _Group()
        else:
            self.groups.move_to_end(key)
        return group

    def _forget_idle_group(self) -> None:
        for key, g in self.groups.items():
            if not g.pending and not g.in_flight:
                del self.groups[key]
                return

    def has_pending(self) -> bool:
        return any(g.pending for g in self.groups.values())


@dataclass(eq=False)
class _LoopState:
    """The batcher's queues on one event loop (sync callers share the chain's loop)."""

    loop: asyncio.AbstractEventLoop
    lanes: dict[int, _Lane] = field(default_factory=dict)
    queued: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


def group_key(request: Request) -> str:
    """What must match for two requests to share a batch: every parameter except the length
    limits, plus the LoRA adapter named in ``options.adapter``."""
    shared = {k: v for k, v in request.params.items() if k not in PER_REQUEST_PARAMS}
    adapter = request.options.adapter
    try:
        return json.dumps([shared, adapter], sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr((sorted(shared.items(), key=lambda kv: str(kv[0])), adapter))


@register_plugin("batcher")
class Batcher(Plugin):
    """Micro-batching: concurrent requests for one target ride in one ``abatch`` call.

    A request waits at most ``max_wait_ms`` for company (less when recent traffic shows none is
    coming, with ``adaptive=True``); a batch holds at most ``max_batch_size`` requests. Targets
    whose ``capabilities.batching`` is false get a fan-out of ``acomplete`` calls, at most
    ``per_target_concurrency`` at once. At most ``max_queue`` requests wait; beyond that callers
    wait for room (``on_full="wait"``, up to ``queue_timeout_s``) or get :class:`QueueFullError`.
    Must be the last plugin of the chain: it calls the target itself.
    """

    def __init__(
        self,
        max_batch_size: int = 16,
        max_wait_ms: float = 10.0,
        max_queue: int = 1024,
        per_target_concurrency: int = 8,
        *,
        max_concurrent_batches: int = 1,
        on_full: Literal["wait", "error"] = "wait",
        queue_timeout_s: float | None = None,
        adaptive: bool = True,
        flush_on_close: bool = True,
        close_timeout_s: float = 30.0,
    ) -> None:
        for name, value in (("max_batch_size", max_batch_size), ("max_queue", max_queue),
                            ("per_target_concurrency", per_target_concurrency),
                            ("max_concurrent_batches", max_concurrent_batches)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"Batcher {name} must be an integer >= 1, got {value!r}")
        if not isinstance(max_wait_ms, (int, float)) or max_wait_ms < 0:
            raise ConfigError(f"Batcher max_wait_ms must be a number >= 0, got {max_wait_ms!r}")
        if on_full not in ("wait", "error"):
            raise ConfigError(f"Batcher on_full must be 'wait' or 'error', got {on_full!r}")
        if queue_timeout_s is not None and queue_timeout_s <= 0:
            raise ConfigError(f"Batcher queue_timeout_s must be > 0 or None, got {queue_timeout_s!r}")
        if close_timeout_s < 0:
            raise ConfigError(f"Batcher close_timeout_s must be >= 0, got {close_timeout_s!r}")
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.max_queue = max_queue
        self.per_target_concurrency = per_target_concurrency
        self.max_concurrent_batches = max_concurrent_batches
        self.on_full = on_full
        self.queue_timeout_s = queue_timeout_s
        self.adaptive = adaptive
        self.flush_on_close = flush_on_close
        self.close_timeout_s = close_timeout_s
        self._wait_s = self.max_wait_ms / 1000.0
        self._chain: Chain | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())
        self._counts = {"requests": 0, "batches": 0, "largest_batch": 0, "split_batches": 0,
                        "queue_full": 0, "bypassed": 0}

    def bind(self, chain: Chain) -> None:
        if chain.plugins and chain.plugins[-1] is not self:
            raise ConfigError("Batcher must be the last plugin of the chain: it calls the target itself")
        self._chain = chain

    def stats(self) -> dict[str, float]:
        """Counts so far: requests, batches, mean and largest batch size, and refusals."""
        out: dict[str, float] = dict(self._counts)
        out["mean_batch_size"] = out["requests"] / out["batches"] if out["batches"] else 0.0
        return out

    # -- the plugin hook ---------------------------------------------------------------------
    async def handle(self, request: Request, call_next: CallNext) -> Response:
        chain = self._chain
        if request.stream or chain is None or not request.options.batch:
            self._counts["bypassed"] += 1
            return await call_next(request)
        if self._closed:
            raise BatcherClosedError("the batcher is closed; this request was not sent", request=request)
        target = chain.target_for(request)
        state = self._state()
        await self._admit(state, request)
        if self._closed:  # closed while this caller waited for room
            self._release(state, 1)
            raise BatcherClosedError("the batcher closed before this request was queued", request=request)
        lane = self._lane(state, target)
        group = lane.group(group_key(request))
        item = _Item(request, state.loop.create_future(), state.loop.time())
        group.pending.append(item)
        group.peak = max(group.peak, len(group.pending) + group.in_flight)
        self._schedule(state, lane)
        try:
            return await item.future
        except asyncio.CancelledError:
            if item in group.pending:  # still queued: leave without disturbing anyone
                group.pending.remove(item)
                self._release(state, 1)
            raise

    # -- queues and backpressure -------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                state = self._states[loop] = _LoopState(loop)
            return state

    def _lane(self, state: _LoopState, target: Target) -> _Lane:
        lane = state.lanes.get(id(target))
        if lane is None or lane.target is not target:
            batching = bool(getattr(target.capabilities, "batching", False))
            limit = self.max_concurrent_batches if batching else self.per_target_concurrency
            lane = state.lanes[id(target)] = _Lane(target, batching, limit)
        return lane

    async def _admit(self, state: _LoopState, request: Request) -> None:
        """Take a place in the queue, waiting for one (or refusing) when the queue is full."""
        if state.queued < self.max_queue and not state.waiters:
            state.queued += 1
            return
        if self.on_full == "error":
            self._counts["queue_full"] += 1
            raise QueueFullError(f"the batcher queue is full ({self.max_queue} requests waiting); "
                                 "retry later or raise max_queue", request=request)
        waiter: asyncio.Future[None] = state.loop.create_future()
        state.waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=self.queue_timeout_s)
        except BaseException:
            self._abandon(state, waiter)
            raise
        if self._closed and not waiter.done():
            waiter.set_exception(BatcherClosedError("the batcher closed while this request waited for room",
                                                    request=request))
        if not waiter.done():
            self._abandon(state, waiter)
            self._counts["queue_full"] += 1
            raise QueueFullError(f"the batcher queue stayed full ({self.max_queue} requests waiting) for "
                                 f"queue_timeout_s={self.queue_timeout_s}", request=request)
        waiter.result()  # raises BatcherClosedError when the batcher closed meanwhile

    def _abandon(self, state: _LoopState, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._release(state, 1)  # a place was handed over just as we left: pass it on
        else:
            waiter.cancel()
            if waiter in state.waiters:
                state.waiters.remove(waiter)

    def _release(self, state: _LoopState, n: int) -> None:
        """Free ``n`` places in the queue and hand them to waiting callers, oldest first."""
        state.queued -= n
        while state.waiters and state.queued < self.max_queue:
            waiter = state.waiters.popleft()
            if not waiter.done():
                state.queued += 1
                waiter.set_result(None)

    # -- forming batches ---------------------------------------------------------------------
    def _schedule(self, state: _LoopState, lane: _Lane) -> None:
        """Look for a batch to send on the next loop turn (so callers arriving now join it)."""
        if not lane.pump_scheduled:
            lane.pump_scheduled = True
            state.loop.call_soon(self._pump, state, lane)

    def _due(self, lane: _Lane, group: _Group, now: float) -> bool:
        n = len(group.pending)
        if not n:
            return False
        if lane.flushing or not lane.batching or n >= self.max_batch_size:
            return True
        if now - group.pending[0].enqueued >= self._wait_s - _EARLY:
            return True
        expected = min(self.max_batch_size, group.peak - group.in_flight)
        return self.adaptive and group.known and n >= max(1, expected)

    def _pump(self, state: _LoopState, lane: _Lane) -> None:
        lane.pump_scheduled = False
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        now = state.loop.time()
        while lane.running < lane.limit:
            due = [g for g in lane.groups.values() if self._due(lane, g, now)]
            if not due:
                break
            group = min(due, key=lambda g: g.pending[0].enqueued)
            self._dispatch(state, lane, group, now)
        if lane.running < lane.limit and lane.has_pending():
            oldest = min(g.pending[0].enqueued for g in lane.groups.values() if g.pending)
            lane.timer = state.loop.call_at(oldest + self._wait_s, self._schedule, state, lane)

    def _dispatch(self, state: _LoopState, lane: _Lane, group: _Group, now: float) -> None:
        size = self.max_batch_size if lane.batching else 1
        items: list[_Item] = []
        taken = 0
        while group.pending and len(items) < size:
            item = group.pending.popleft()
            taken += 1
            if not item.future.done():  # a caller cancelled before its handler could leave
                items.append(item)
        self._release(state, taken)
        if not items:
            return
        for item in items:
            item.request.context.info["batch"] = {"batch_size": len(items),
                                                  "queued_ms": round((now - item.enqueued) * 1000.0, 3)}
        group.known = True
        group.in_flight += len(items)
        group.peak = len(group.pending) + group.in_flight
        lane.running += 1
        self._counts["requests"] += len(items)
        self._counts["batches"] += 1
        self._counts["largest_batch"] = max(self._counts["largest_batch"], len(items))
        task = state.loop.create_task(self._run(state, lane, group, items))
        lane.tasks.add(task)
        task.add_done_callback(lane.tasks.discard)

    # -- serving a batch -----------------------------------------------------------------------
    async def _run(self, state: _LoopState, lane: _Lane, group: _Group, items: list[_Item]) -> None:
        try:
            results = await self._serve(lane, [i.request for i in items])
            for item, result in zip(items, results, strict=True):
                _deliver(lane.target, item, result)
        except asyncio.CancelledError:  # aclose gave up waiting after close_timeout_s
            for item in items:
                _deliver(lane.target, item, BatcherClosedError(
                    f"the batcher closed while this request's batch was running on target {lane.target.name!r}",
                    request=item.request))
        except Exception as exc:
            for item in items:
                _deliver(lane.target, item, exc)
        finally:
            lane.running -= 1
            group.in_flight -= len(items)
            self._schedule(state, lane)

    async def _serve(self, lane: _Lane, requests: Sequence[Request]) -> list[Response | BaseException]:
        """One result per request; a batch that fails as a whole is retried one request at a time,
        so one bad request cannot fail its batchmates."""
        target = lane.target
        for r in requests:
            r.context.remember("served", r)
            r.context.remember("served_target", target)
        if not lane.batching:
            try:
                return [await with_deadline(target.acomplete(requests[0]), target, requests[0])]
            except Exception as exc:
                return [exc]
        try:
            return _checked(await with_deadline(target.abatch(requests), target, requests), len(requests), target)
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
            self._counts["split_batches"] += 1
            if self._counts["split_batches"] == 1:
                log.warning("costmw batcher: a batch of %d failed as a whole on target %r (%s); "
                            "serving its requests one by one (further cases counted only)",
                            len(requests), target.name, exc)
        out: list[Response | BaseException] = []
        for r in requests:
            try:
                out.extend(_checked(await with_deadline(target.abatch([r]), target, r), 1, target))
            except Exception as exc:
                out.append(exc)
        return out

    # -- shutting down ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop taking requests; flush queued ones (``flush_on_close``) or fail them with
        :class:`BatcherClosedError`, and wait up to ``close_timeout_s`` for running batches."""
        self._closed = True
        here = asyncio.get_running_loop()
        with self._lock:
            states = list(self._states.items())
        for loop, state in states:
            if loop is here:
                await self._shutdown(state)
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                    loop.call_soon_threadsafe(self._fail_all, state)

    async def _shutdown(self, state: _LoopState) -> None:
        self._fail_waiters(state)
        lanes = list(state.lanes.values())
        for lane in lanes:
            if self.flush_on_close:
                lane.flushing = True
                self._schedule(state, lane)
            else:
                self._fail_pending(state, lane)
        deadline = state.loop.time() + self.close_timeout_s
        while True:
            tasks = set().union(*(lane.tasks for lane in lanes))
            if not tasks and not any(lane.has_pending() for lane in lanes):
                break
            remaining = deadline - state.loop.time()
            if remaining <= 0:
                break
            if tasks:
                await asyncio.wait(tasks, timeout=remaining)
            else:
                await asyncio.sleep(0)
        self._fail_all(state)

    def _fail_all(self, state: _LoopState) -> None:
        self._fail_waiters(state)
        for lane in state.lanes.values():
            self._fail_pending(state, lane)
            for task in list(lane.tasks):
                task.cancel()

    def _fail_waiters(self, state: _LoopState) -> None:
        while state.waiters:
            waiter = state.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(BatcherClosedError("the batcher closed while this request waited for room"))

    def _fail_pending(self, state: _LoopState, lane: _Lane) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        for group in lane.groups.values():
            while group.pending:
                item = group.pending.popleft()
                self._release(state, 1)
                if not item.future.done():
                    item.future.set_exception(BatcherClosedError(
                        f"the batcher closed before this request was sent to target {lane.target.name!r}",
                        request=item.request))


def _checked(results: Sequence[Response | BaseException], expected: int,
             target: Target) -> list[Response | BaseException]:
    out = list(results)
    if len(out) != expected:
        raise TargetError(f"target {target.name!r} returned {len(out)} results for a batch of {expected}",
                          target=target.name)
    return out


def _deliver(target: Target, item: _Item, result: Response | BaseException) -> None:
    """Hand one caller its own response or its own error (as costmw's error type)."""
    future = item.future
    if future.done():
        return
    if isinstance(result, Response):
        if not result.served_by:
            target._finish(item.request, result)
        item.request.context.facts.call(target, result.usage, model=result.model)
        future.set_result(result)
        return
    future.set_exception(map_provider_error(result, target.name, item.request))
