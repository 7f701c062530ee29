"""Routing strategies: small objects that pick a target, or abstain so the next one decides.

Strategies compose with ``|``: ``Rules(...) | Learned(...)`` asks the rules first and the learned
model only when no rule matched. A plain function ``fn(ctx) -> Route | Target | str | None``
(sync or async) is accepted wherever a strategy is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from costmw.plugin_api import ConfigError, Registry, Target, callable_factory, requested_target

from ._route import Route, RouteContext

__all__ = ["STRATEGIES", "Cheapest", "FirstOf", "Requested", "Strategy", "as_strategy", "register_strategy"]


class Strategy:
    """Base class: ``aroute(ctx)`` returns a :class:`Route`, or None to let the next strategy decide."""

    name = "strategy"

    async def aroute(self, ctx: RouteContext) -> Route | None:
        raise NotImplementedError

    def __or__(self, other: Any) -> FirstOf:
        return FirstOf(self, as_strategy(other))

    def __ror__(self, other: Any) -> FirstOf:
        return FirstOf(as_strategy(other), self)

    def parts(self) -> list[Strategy]:
        """This strategy and those it is made of (the router looks for a learned one here)."""
        return [self]


class FirstOf(Strategy):
    """Ask each strategy in turn; the first that does not abstain decides."""

    name = "first_of"
    strategies: list[Strategy]

    def __init__(self, *strategies: Strategy) -> None:
        flat: list[Strategy] = []
        for s in strategies:
            flat.extend(s.strategies if isinstance(s, FirstOf) else [s])
        self.strategies = flat

    async def aroute(self, ctx: RouteContext) -> Route | None:
        for s in self.strategies:
            route = await s.aroute(ctx)
            if route is not None:
                return route
        return None

    def parts(self) -> list[Strategy]:
        return [p for s in self.strategies for p in s.parts()]

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.strategies)


class Requested(Strategy):
    """The target the request asked for (by ``options.target`` or model), else the first allowed.

    It never abstains, so it ends every composed strategy: the router then adds capability
    checks, fallbacks and budgets to plain, unrouted calls.
    """

    name = "requested"

    async def aroute(self, ctx: RouteContext) -> Route | None:
        r = ctx.request
        named = requested_target(ctx.all_targets, r)
        wanted = r.options.target or r.model
        if named is not None and named not in ctx.candidates and r.options.target is None:
            named = requested_target(ctx.candidates, r) or named  # another target of the same model
        if named is not None and named in ctx.candidates:
            return Route(named, self.name, reason=f"the request asked for {wanted!r}")
        if not ctx.candidates:
            return None
        first = ctx.candidates[0]
        rejected = {named.name: ctx.why_not(named.name)} if named is not None else {}
        return Route(first, self.name, reason=f"{wanted!r} is not available; first allowed target",
                     rejected=rejected)

    def __repr__(self) -> str:
        return "Requested()"


class Cheapest(Strategy):
    """The cheapest allowed target for this request's size (by each target's price)."""

    name = "cheapest"

    async def aroute(self, ctx: RouteContext) -> Route | None:
        ranked = ctx.by_cost()
        if not ranked:
            return None
        return Route(ranked[0], self.name, reason="cheapest allowed target",
                     rejected={t.name: "costs more" for t in ranked[1:]})

    def __repr__(self) -> str:
        return "Cheapest()"


class _FunctionStrategy(Strategy):
    def __init__(self, fn: Callable[[RouteContext], Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "function")

    async def aroute(self, ctx: RouteContext) -> Route | None:
        result = self.fn(ctx)
        if inspect.isawaitable(result):
            result = await result
        if result is None or isinstance(result, Route):
            return result
        name = result.name if isinstance(result, Target) else str(result)
        target = ctx.target(name)
        if target is None:
            return None  # the function picked a target this request may not use
        return Route(target, self.name, reason=f"chosen by {self.name}()")


# built-in strategy names, imported when a config first names them; never taken by another factory
BUILTIN_STRATEGIES: dict[str, str] = {
    "requested": "costmw.plugins.router:Requested",
    "cheapest": "costmw.plugins.router:Cheapest",
    "rules": "costmw.plugins.router:Rules",
    "learned": "costmw.plugins.router:Learned",
    "cost_aware": "costmw.plugins.router:CostAware",
    "cost": "costmw.plugins.router:CostAware",
    "cascade": "costmw.plugins.router:Cascade",
}


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("routing strategy", "costmw.strategies",
                                                         BUILTIN_STRATEGIES, callable_factory("routing strategy"))


def register_strategy(name: str, factory: str | Callable[..., Strategy]) -> None:
    """Make a strategy usable by name in a router's configuration: ``factory`` builds it from the
    configured options (a class or function, or its ``"module:attr"`` path). Built-in names cannot be taken."""
    STRATEGIES.register(name, factory)


def as_strategy(spec: Any) -> Strategy:
    """A strategy from an object, a function, a name, ``{"name": ..., **options}``, or a list of those."""
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, str):
        return _by_name(spec, {})
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "name" in options:
            return _by_name(str(options.pop("name")), options)
        if len(options) == 1:
            name, opts = next(iter(options.items()))
            return _by_name(str(name), dict(opts or {}))
        raise ConfigError(f"strategy {spec!r}: write a name, {{name: options}} or {{'name': ..., **options}}")
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        if not spec:
            raise ConfigError("strategy list is empty")
        return FirstOf(*(as_strategy(s) for s in spec))
    if callable(spec):
        return _FunctionStrategy(spec)
    raise ConfigError(f"strategy must be a Strategy, a name, a dict or a list, got {type(spec).__name__}")


def _by_name(name: str, options: dict[str, Any]) -> Strategy:
    factory = STRATEGIES.get(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from exc
