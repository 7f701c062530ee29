"""ModelRouter: send each request to the cheapest target that will answer it well, with fallbacks.

The router filters its targets (capabilities, cooldowns, budget), asks its strategy for a route,
calls the chosen target through the rest of the chain (falling back on rate limits, timeouts,
5xx and context-window errors), and explains the decision on the response and in the ledger.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import (
    BudgetExceeded,
    BudgetUnavailable,
    CallNext,
    Chunk,
    ConfigError,
    NoTargetError,
    Plugin,
    Request,
    Response,
    SentPrefixes,
    StreamNext,
    Target,
    conversation_key,
    count_message_tokens,
    register_plugin,
)

from ._budget import Budget
from ._execute import RouteOutcome, Runner
from ._fallback import Cooldowns, Retry
from ._needs import lacks, needs_of
from ._route import Route, RouteContext, estimated_cost
from ._strategy import Requested, Strategy, as_strategy
from ._training import TrainingMixin

if TYPE_CHECKING:
    from costmw import Chain

__all__ = ["ModelRouter"]


@register_plugin("model_router")
class ModelRouter(TrainingMixin, Plugin):
    """Route each request to one of ``targets`` by ``strategy``, with fallbacks, cooldowns and budgets.

    ``targets`` are Target objects (added to the chain when it is built, so the ledger can price
    them) or names of targets in the chain; none means every target of the chain. ``strategy`` is
    a Strategy, a name (``requested``, ``rules``, ``learned``, ``cost_aware``, ``cascade``,
    ``cheapest``), ``{"name": ..., **options}``, or a list of these tried in order. Whatever the
    strategy, a target that lacks a capability the request needs is never chosen.

    On a rate limit, timeout, 5xx or context-window error the next allowed target is tried (after
    ``retries`` backoff retries of the same target); a target that fails ``cooldown_after`` times
    in a row is left out for ``cooldown_s`` seconds.

    ``sticky`` (on by default): a conversation whose provider cache is warm on one target stays
    there when the strategy would move it to a cheaper one, unless the move saves more than the
    warm cache does on this call; the explanation's ``sticky`` entry holds both prices. A move
    to a dearer target (a choice for quality) is always taken.
    """

    name = "model_router"

    def __init__(self, targets: Sequence[Target | str] = (), strategy: Any = "requested", *,
                 fallback: bool = True, retries: int = 0, backoff: float = 0.2, max_backoff: float = 5.0,
                 cooldown_after: int = 3, cooldown_s: float = 30.0,
                 budget: Budget | Mapping[str, Any] | float | None = None,
                 clock: Callable[[], float] | None = None, sticky: bool = True) -> None:
        if isinstance(targets, (str, Target)):
            targets = [targets]
        for i, t in enumerate(targets):
            if not isinstance(t, (Target, str)) or (isinstance(t, str) and not t):
                raise ConfigError(f"targets[{i}] must be a Target or the name of one, got {t!r}")
        self._specs: list[Target | str] = list(targets)
        self.strategy: Strategy = as_strategy(strategy)
        self._default = Requested()
        self.cooldowns = Cooldowns(cooldown_after, cooldown_s, clock or time.monotonic)
        self.runner = Runner(Retry(retries, backoff, max_backoff), self.cooldowns, fallback)
        self.budget = Budget.coerce(budget)
        self.sticky = sticky
        self.warm = SentPrefixes(clock=clock or time.monotonic)
        self._chain: Chain | None = None
        self._targets: list[Target] = [t for t in self._specs if isinstance(t, Target)]
        self.counts: Counter[str] = Counter()

    # -- targets -----------------------------------------------------------------------
    def bind(self, chain: Chain) -> None:
        """Resolve target names against the chain and add the router's Target objects to it."""
        self._chain = chain
        resolved: list[Target] = []
        for spec in self._specs:
            if isinstance(spec, Target):
                resolved.append(chain.add_target(spec))
                continue
            found = chain.targets.get(spec) or next((t for t in chain.targets.values() if t.model == spec), None)
            if found is None and chain.auto_targets:
                from costmw.adapters import LiteLLMTarget

                found = chain.add_target(LiteLLMTarget(spec))
            if found is None:
                raise ConfigError(f"model_router: target {spec!r} is not in the chain "
                                  f"(it has {sorted(chain.targets)}); add it to the chain's targets")
            resolved.append(found)
        self._targets = resolved
        self._check_names({t.name for t in self.targets})

    def _check_names(self, known: set[str]) -> None:
        """Fail when the chain is built, not on a call, if a strategy names a target the router lacks."""
        for part in self.strategy.parts():
            named = [getattr(part, a, None) for a in ("cheap", "strong")]
            named += [r.target_name for r in getattr(part, "rules", ())]
            named += list(getattr(part, "models", {}))
            missing = sorted({n for n in named if n and n not in known})
            if missing:
                raise ConfigError(f"model_router: strategy {part!r} names {missing}, but the router's targets "
                                  f"are {sorted(known)}")

    @property
    def targets(self) -> list[Target]:
        """The router's targets, in its order of preference for fallbacks."""
        if not self._specs and self._chain is not None:
            return list(self._chain.targets.values())
        return list(self._targets)

    # -- deciding ----------------------------------------------------------------------
    async def route(self, request: Request, *, hold: bool = False) -> tuple[Route, RouteContext]:
        """Decide where ``request`` goes (no call is made); raises BudgetExceeded or NoTargetError.

        ``hold``: with a budget, count the call's estimated cost as spent by its tenant until the
        chain records the call (what serving a request does), so that concurrent calls see it.
        """
        targets = self.targets
        if not targets:
            raise NoTargetError("model_router has no targets", request=request)
        needs = needs_of(request)
        excluded: dict[str, str] = {}
        allowed: list[Target] = []
        cooling: list[Target] = []
        for t in targets:
            why = lacks(t, needs)
            left = 0.0 if why else self.cooldowns.remaining(t.name)
            if why or left > 0:
                excluded[t.name] = why or f"cooling down after repeated failures ({left:.1f} s left)"
                if not why:
                    cooling.append(t)
            else:
                allowed.append(t)
        if not allowed and cooling:  # every capable target cools down: try them rather than fail
            allowed = cooling
            for t in cooling:
                excluded.pop(t.name, None)
        allowed, budget_note = await self._apply_budget(request, allowed, excluded, hold)
        if not allowed:
            reasons = "; ".join(f"{n}: {why}" for n, why in excluded.items())
            raise NoTargetError(f"no target can serve this request ({reasons})", request=request)
        ctx = RouteContext(request, allowed, excluded, targets)
        route = await self.strategy.aroute(ctx) or await self._default.aroute(ctx)
        assert route is not None
        for name, why in excluded.items():
            route.rejected.setdefault(name, why)
        if self.sticky and route.escalate_to is None:
            route = self._stick(route, ctx)
        if hold and self.budget is not None and self._chain is not None:  # now the estimate of what was chosen
            chosen = [route.target] + ([route.escalate_to] if route.escalate_to is not None else [])
            await self._chain.ledger.ahold(request.id, request.tenant, _estimate(chosen, ctx))
        if budget_note:
            request.context.remember(("router", "budget"), budget_note)
        request.context.facts.target_chosen(self.plugin_name, f"routed {request.model} -> {route.target.name}")
        return route, ctx

    async def _apply_budget(self, request: Request, allowed: list[Target], excluded: dict[str, str],
                            hold: bool = False) -> tuple[list[Target], dict[str, Any] | None]:
        """The targets the tenant's budget allows; the ledger is read and written off the event loop."""
        if self.budget is None or self._chain is None or not allowed:
            return allowed, None
        ledger = self._chain.ledger
        if hold:  # check and hold in one step: the dearest this call can cost, until it is routed
            dearest = _estimate(allowed, RouteContext(request, allowed, {}, allowed), dearest=True)
            try:
                over = await ledger.arun(self.budget.reserve, ledger, request.id, request.tenant, dearest)
            except BudgetUnavailable as exc:  # the ledger refuses while its file cannot hold the call
                exc.request = request
                raise
        else:
            over = await ledger.arun(self.budget.over, ledger, request.tenant)
        if over is None:
            return allowed, None
        spent, limit = over
        tenant = request.tenant or ""
        note = {"tenant": tenant, "spent_usd": round(spent, 6), "limit_usd": limit, "action": self.budget.action}
        message = f"tenant {tenant!r} spent ${spent:.4f} of its ${limit:.4f} budget this period"
        if self.budget.action == "refuse":
            self.counts["refused"] += 1
            raise BudgetExceeded(f"{message}; requests are refused until the period ends",
                                 tenant=tenant, limit_usd=limit, spent_usd=spent, request=request)
        ctx = RouteContext(request, allowed, excluded, allowed)
        wanted = set(self.budget.downgrade_to)
        keep = [t for t in allowed if t.name in wanted] if wanted else ctx.by_cost()[:1]
        if not keep:
            raise BudgetExceeded(f"{message}, and none of {sorted(wanted)} can serve this request",
                                 tenant=tenant, limit_usd=limit, spent_usd=spent, request=request)
        for t in allowed:
            if t not in keep:
                excluded[t.name] = f"over budget: {message}"
        self.counts["downgraded"] += 1
        if hold:
            await ledger.ahold(request.id, request.tenant, _estimate(keep, ctx, dearest=True))
        return keep, note

    def _stick(self, route: Route, ctx: RouteContext) -> Route:
        """Keep the conversation on the target whose prompt cache is warm, unless moving pays."""
        request, chosen = ctx.request, route.target
        found = self.warm.warm(conversation_key(request), request.messages, request.params.get("tools"))
        warm = ctx.target(found[0]) if found is not None else None
        if found is None or warm is None or warm is chosen or warm.prompt_caching is None:
            return route
        n, out = ctx.prompt_tokens, ctx.output_tokens
        shared = count_message_tokens(request.messages[:found[1]], request.model, request.params.get("tools"))
        cached = min(n, warm.prompt_caching.cacheable(shared))
        stay, switch, warm_list = _call_cost(warm, n, out, cached), _call_cost(chosen, n, out, 0), _call_cost(
            warm, n, out, -1)
        if stay is None or switch is None or warm_list is None or switch >= warm_list:
            return route  # a move to a dearer target is a choice for quality: leave it be
        note = {"warm": warm.name, "cached_tokens": cached, "stay_usd": round(stay, 8),
                "switch_usd": round(switch, 8), "switched": switch < stay}
        if switch < stay:
            route.details["sticky"] = note
            self.counts["sticky_switched"] += 1
            return route
        self.counts["sticky_kept"] += 1
        rejected = {**route.rejected, chosen.name: f"moving off {warm.name}'s warm prompt cache would cost "
                                                   f"${switch:.6f} against ${stay:.6f} staying"}
        rejected.pop(warm.name, None)
        return Route(warm, route.strategy, f"kept on {warm.name}: its prompt cache is warm ({cached} tokens)",
                     rejected=rejected, details={**route.details, "sticky": note})

    def _order(self, route: Route, ctx: RouteContext) -> list[Target]:
        """Chosen target first, then the other allowed targets in the router's order."""
        skip = {route.target.name} | ({route.escalate_to.name} if route.escalate_to else set())
        return [route.target] + [t for t in ctx.candidates if t.name not in skip]

    # -- serving -----------------------------------------------------------------------
    async def handle(self, request: Request, call_next: CallNext) -> Response:
        if request.context.target is not None:  # fixed before the router (``@optimize``): kept as it is
            return await call_next(request)
        route, ctx = await self.route(request, hold=True)
        out = RouteOutcome()
        if route.escalate_to is not None:
            rest = [t for t in self._order(route, ctx)[1:] if t is not route.escalate_to]
            response = await self.runner.cascade(request, route, rest, call_next, out)
        else:
            response = await self.runner.call(request, self._order(route, ctx), call_next, out)
        return self._account(request, route, response, out)

    async def astream(self, request: Request, call_next: StreamNext) -> AsyncIterator[Chunk]:
        if request.context.target is not None:
            async for chunk in call_next(request):
                yield chunk
            return
        route, ctx = await self.route(request, hold=True)
        out = RouteOutcome()
        if route.escalate_to is not None:
            rest = [t for t in self._order(route, ctx)[1:] if t is not route.escalate_to]
            chunks = self.runner.cascade_stream(request, route, rest, call_next, out)
        else:
            chunks = self.runner.stream(request, self._order(route, ctx), call_next, out)
        async for chunk in chunks:
            if chunk.response is not None:
                chunk = Chunk(response=self._account(request, route, chunk.response, out))
            yield chunk

    # -- explaining and costing --------------------------------------------------------
    def _account(self, request: Request, route: Route, response: Response, out: RouteOutcome) -> Response:
        served = out.served or route.target
        info = route.explain()
        info["served"] = served.name
        if out.attempts:
            info["attempts"] = out.attempts
        if served is not route.target and not (out.cascade and out.cascade.get("escalated")):
            info["fallback"] = True
            self.counts["fallbacks"] += 1
            info["rejected"].pop(served.name, None)
            errors = [a["error"] for a in out.attempts if a.get("target") == route.target.name and "error" in a]
            info["rejected"][route.target.name] = f"failed: {', '.join(errors) or 'skipped'}; fell back"
        if out.cascade is not None:
            self._explain_cascade(info, route, out.cascade)
            calls = [*(r for r in out.paid if r is not response), response]
            info["cascade"] = {**out.cascade, "calls": [
                {"served_by": r.served_by, "cost_usd": round(r.cost_usd, 8),
                 "prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens}
                for r in calls]}
            self.counts["escalations" if out.cascade.get("escalated") else "cascade_kept"] += 1
        budget = request.context.recall(("router", "budget"))
        if budget:
            info["budget"] = budget
        request.context.info["route"] = info
        self.counts[f"served:{served.name}"] += 1
        if self.sticky and served.prompt_caching is not None:
            self.warm.remember(conversation_key(request), served.name, request.messages, request.params.get("tools"))
        self._record_saving(request, served, response)
        return response

    @staticmethod
    def _explain_cascade(info: dict[str, Any], route: Route, cascade: dict[str, Any]) -> None:
        """Lift the cascade's score to the top of the explanation, with why one answer was not used."""
        score, threshold = cascade.get("score"), route.threshold
        info["score"] = score
        cheap, strong = route.target.name, route.escalate_to.name if route.escalate_to else ""
        if "why" in cascade:
            info["rejected"][cheap] = cascade["why"]
        elif cascade.get("checked"):
            info["rejected"][cheap] = (f"answer scored {score} >= threshold {threshold}, sent to {strong} to be "
                                       "checked (check_rate); its answer is served")
        elif cascade.get("escalated"):
            info["rejected"][cheap] = f"answer scored {score} < threshold {threshold} ({cascade.get('scorer')})"
        elif cascade.get("escalation_failed"):
            info["rejected"][strong] = f"escalation failed: {cascade['escalation_failed']}"
        else:
            judged = "no scorer could judge" if score is None else f"{score} >= threshold {threshold}"
            info["rejected"][strong] = f"not needed: cheap answer {judged}"

    def _record_saving(self, request: Request, served: Target, response: Response) -> None:
        """Report the choice; the chain prices it against the requested model."""
        what = "cascade" if "cascade" in request.context.info.get("route", {}) else "routed"
        request.context.facts.target_chosen(self.plugin_name, f"{what} {request.model} -> {served.name}")

    def on_feedback(self, response_id: str, good: bool) -> None:
        """Counts feedback; the labels themselves live in the ledger (see :meth:`feedback_data`)."""
        self.counts["feedback_good" if good else "feedback_bad"] += 1

    def stats(self) -> dict[str, Any]:
        """Counters (served per target, fallbacks, escalations, budget actions) and cooldown state."""
        return {"counts": dict(self.counts), "cooldowns": self.cooldowns.state()}

    def __repr__(self) -> str:
        names = [t.name if isinstance(t, Target) else t for t in self._specs]
        return f"ModelRouter(targets={names}, strategy={self.strategy!r})"


def _call_cost(target: Target, prompt_tokens: int, output_tokens: int, cached: int) -> float | None:
    """USD of one call to ``target`` with ``cached`` prompt tokens read from its provider's cache
    (the rest written to it where the provider caches at breakpoints); ``cached=-1``: at list price."""
    price, caching = target.price, target.prompt_caching
    if price is None:
        return None
    if cached < 0 or caching is None:
        return price.cost(prompt_tokens, output_tokens)
    written = prompt_tokens - cached if caching.breakpoints and prompt_tokens >= caching.min_tokens else 0
    return price.cost(prompt_tokens, output_tokens, cached, written)


def _estimate(targets: list[Target], ctx: RouteContext, dearest: bool = False) -> float:
    """Estimated USD of one call to each of ``targets`` (a cascade may call both), or of the
    dearest one; targets without a price count 0."""
    costs = [c for t in targets if (c := estimated_cost(t, ctx.prompt_tokens, ctx.output_tokens)) is not None]
    if not costs:
        return 0.0
    return max(costs) if dearest else sum(costs)
