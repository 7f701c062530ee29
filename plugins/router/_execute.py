"""Carrying out a route: call the chosen target, fall back on failures, run cascades.

Every call goes through ``call_next`` with ``request.context.target`` set, so plugins below the
router (a batcher, say) still see it and the chain's terminal link calls the chosen target.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from costmw.plugin_api import (
    CallNext,
    Chunk,
    NoTargetError,
    Request,
    Response,
    StreamNext,
    Target,
    collect_stream,
    response_chunks,
)

from ._fallback import Cooldowns, Retry, error_kind, fallback_worthy, target_error
from ._route import Route

__all__ = ["RouteOutcome", "Runner"]

log = logging.getLogger("costmw.router")


@dataclass
class RouteOutcome:
    """What happened while serving one request: who answered, what failed, what the cascade did."""

    served: Target | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    paid: list[Response] = field(default_factory=list)  # answers paid for but not returned
    cascade: dict[str, Any] | None = None


class Runner:
    """Calls targets in order with retries, fallbacks and cooldowns."""

    def __init__(self, retry: Retry, cooldowns: Cooldowns, fallback: bool) -> None:
        self.retry = retry
        self.cooldowns = cooldowns
        self.fallback = fallback

    def _failed(self, target: Target, exc: BaseException, out: RouteOutcome) -> None:
        out.attempts.append({"target": target.name, "error": error_kind(exc)})
        if self.cooldowns.failed(target.name):
            log.warning("router: target %r cools down for %.0f s after %d failures in a row",
                        target.name, self.cooldowns.seconds, self.cooldowns.after)

    @staticmethod
    def _skip(target: Target, too_small: int | None, out: RouteOutcome) -> bool:
        window = target.capabilities.context_window
        if too_small is not None and window is not None and window <= too_small:
            out.attempts.append({"target": target.name, "skipped": f"context window {window} <= {too_small}"})
            return True
        return False

    @staticmethod
    def _too_small(target: Target, exc: BaseException, current: int | None) -> int | None:
        from costmw.plugin_api import ContextWindowError

        window = target.capabilities.context_window
        if isinstance(target_error(exc), ContextWindowError) and window:
            return max(window, current or 0)
        return current

    async def call(self, request: Request, order: list[Target], call_next: CallNext, out: RouteOutcome) -> Response:
        """The first answer from ``order``; fallback-worthy failures move on to the next target."""
        last: BaseException | None = None
        too_small: int | None = None
        for target in order if self.fallback else order[:1]:
            if self._skip(target, too_small, out):
                continue
            request.context.target = target

            async def once() -> Response:
                return await call_next(request)

            try:
                response = await self.retry.call(once)
            except Exception as exc:
                if not fallback_worthy(exc):
                    raise
                self._failed(target, exc, out)
                too_small = self._too_small(target, exc, too_small)
                last = exc
                continue
            self.cooldowns.succeeded(target.name)
            out.served = target
            return response
        if last is not None:
            raise last
        raise NoTargetError("no target with a large enough context window is left", request=request)

    async def stream(self, request: Request, order: list[Target], call_next: StreamNext,
                     out: RouteOutcome) -> AsyncIterator[Chunk]:
        """Stream from the first target that opens; a failure before the first chunk falls back."""
        last: BaseException | None = None
        too_small: int | None = None
        for target in order if self.fallback else order[:1]:
            if self._skip(target, too_small, out):
                continue
            request.context.target = target
            started = False
            try:
                async for chunk in call_next(request):
                    if chunk.response is not None:
                        self.cooldowns.succeeded(target.name)
                        out.served = target
                    started = True
                    yield chunk
                return
            except Exception as exc:
                if started or not fallback_worthy(exc):
                    raise
                self._failed(target, exc, out)
                too_small = self._too_small(target, exc, too_small)
                last = exc
        if last is not None:
            raise last
        raise NoTargetError("no target with a large enough context window is left", request=request)

    # -- cascades --------------------------------------------------------------------------
    async def _first(self, request: Request, route: Route, ask: Callable[[Request], Awaitable[Response]],
                     out: RouteOutcome) -> tuple[Response | None, bool]:
        """The cheap answer and whether to escalate (a failed cheap call escalates)."""
        scorer = route.scorer
        cheap_request = request.replace(params={**request.params, **scorer.params}) if scorer.params else request
        try:
            first = await ask(cheap_request)
        except Exception as exc:
            if not fallback_worthy(exc):
                raise  # (fallback-worthy failures were counted by call/stream already)
            out.cascade = {"cheap": route.target.name, "escalated": True,
                           "why": f"cheap call failed: {error_kind(exc)}"}
            return None, True

        async def sample(**params: Any) -> Response:
            extra = await ask(cheap_request.replace(params={**cheap_request.params, **params}))
            out.paid.append(extra)
            return extra

        try:
            score = await scorer.ascore(request, first, sample)
        except Exception as exc:  # a scorer that breaks must not fail the call: keep the cheap answer
            log.warning("router: cascade scorer %r failed, keeping the cheap answer: %s", scorer.name, exc)
            score = None
        escalate = score is not None and score < float(route.threshold or 0.0)
        out.cascade = {"cheap": route.target.name, "scorer": scorer.name,
                       "score": None if score is None else round(float(score), 4),
                       "threshold": route.threshold, "escalated": escalate}
        wants_check = getattr(scorer, "wants_check", None)
        if score is not None and not escalate and callable(wants_check) and wants_check():
            escalate = True  # a kept answer checked against the strong model: its answer is served
            out.cascade.update(escalated=True, checked=True)
        return first, escalate

    @staticmethod
    def _learn(route: Route, request: Request, cheap: Response, strong: Response, out: RouteOutcome) -> None:
        """Tell a scorer that learns from traffic how the cheap answer compared with the strong one."""
        observe = getattr(route.scorer, "observe", None)
        if not callable(observe):
            return
        try:
            agreed = observe(request, cheap, strong)
        except Exception as exc:  # learning must never fail the call
            log.warning("router: cascade scorer %r could not learn from this call: %s", route.scorer.name, exc)
            return
        if agreed is not None and out.cascade is not None:
            out.cascade["cheap_agreed"] = agreed

    async def cascade(self, request: Request, route: Route, rest: list[Target], call_next: CallNext,
                      out: RouteOutcome) -> Response:
        """Cheap answer, scored; below the threshold the strong target (then ``rest``) answers."""
        first, escalate = await self._first(request, route, lambda r: self.call(r, [route.target], call_next, out),
                                            out)
        if first is not None and not escalate:
            return first
        assert route.escalate_to is not None
        try:
            final = await self.call(request, [route.escalate_to, *rest], call_next, out)
        except Exception as exc:
            if first is None or not fallback_worthy(exc):
                raise
            assert out.cascade is not None
            out.cascade["escalation_failed"] = error_kind(exc)
            out.served = route.target
            return first
        if first is not None:  # escalated: the cheap answer was paid for and is kept as an attempt
            out.paid.append(first)
            request.context.attempts.append(first)
            self._learn(route, request, first, final, out)
        return final

    async def cascade_stream(self, request: Request, route: Route, rest: list[Target], call_next: StreamNext,
                             out: RouteOutcome) -> AsyncIterator[Chunk]:
        """The cheap answer is read whole (it may be withdrawn); an escalation streams live."""

        async def ask(r: Request) -> Response:
            chunks = self.stream(r, [route.target], call_next, out)
            return await collect_stream(chunks)

        first, escalate = await self._first(request, route, ask, out)
        if first is not None and not escalate:
            for chunk in response_chunks(first):
                yield chunk
            return
        assert route.escalate_to is not None
        if first is not None:
            out.paid.append(first)
            request.context.attempts.append(first)
        started = False
        try:
            async for chunk in self.stream(request, [route.escalate_to, *rest], call_next, out):
                started = True
                if chunk.response is not None and first is not None:
                    self._learn(route, request, first, chunk.response, out)
                yield chunk
        except Exception as exc:
            if started or first is None or not fallback_worthy(exc):
                raise
            assert out.cascade is not None
            out.cascade["escalation_failed"] = error_kind(exc)
            out.paid.remove(first)
            out.served = route.target
            for chunk in response_chunks(first):
                yield chunk
