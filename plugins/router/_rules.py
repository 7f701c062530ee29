"""Rule-based routing: by task tag, regex, prompt length, needed capabilities and metadata hints."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from costmw.plugin_api import ConfigError, Options, Request, Target

from ._needs import CAPABILITIES, needs_of
from ._route import Route, RouteContext
from ._strategy import Strategy

__all__ = ["Rule", "Rules", "request_tags"]


def request_tags(request: Request) -> set[str]:
    """The tags of a request (``options.tags``)."""
    return set(request.options.tags)


def _label(request: Request, key: str) -> Any:
    """A rule's ``metadata`` condition reads the option of that name (``tenant``, ...) if there is
    one, else the caller's metadata label."""
    if key in _OPTION_NAMES:
        value = getattr(request.options, key)
        return sorted(value) if isinstance(value, frozenset) else value
    return request.metadata.get(key)


_OPTION_NAMES = frozenset(Options.__dataclass_fields__)


@dataclass
class Rule:
    """Send matching requests to ``target``. Every condition given must hold; none given matches all.

    ``tags``: any of these in ``options.tags``; ``pattern``: a regex found in the last user turn;
    ``min_tokens``/``max_tokens``: bounds on the prompt's tokens; ``needs``: capabilities the request
    needs (``tools``, ``json_mode``, ``streaming``); ``metadata``: key/value pairs that must be equal
    in the request's metadata (the caller's free-form labels).
    """

    target: str | Target
    tags: Sequence[str] = ()
    pattern: str | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    needs: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.tags, str):
            self.tags = (self.tags,)
        if isinstance(self.needs, str):
            self.needs = (self.needs,)
        bad = set(self.needs) - set(CAPABILITIES)
        if bad:
            raise ConfigError(f"rule for {self.target_name!r}: unknown needs {sorted(bad)}; "
                              f"known: {list(CAPABILITIES)}")
        if self.pattern is not None:
            try:
                self._regex = re.compile(self.pattern, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(f"rule for {self.target_name!r}: bad pattern {self.pattern!r}: {exc}") from exc

    @property
    def target_name(self) -> str:
        return self.target.name if isinstance(self.target, Target) else str(self.target)

    def matches(self, ctx: RouteContext) -> str | None:
        """A short description of why the rule matched, or None when it does not."""
        r = ctx.request
        why: list[str] = []
        if self.tags:
            hit = request_tags(r) & set(self.tags)
            if not hit:
                return None
            why.append(f"tag {sorted(hit)[0]!r}")
        if self._regex is not None:
            if not self._regex.search(r.last_user_text):
                return None
            why.append(f"pattern {self.pattern!r}")
        if self.min_tokens is not None or self.max_tokens is not None:
            n = ctx.prompt_tokens
            if (self.min_tokens is not None and n < self.min_tokens) or (
                    self.max_tokens is not None and n > self.max_tokens):
                return None
            why.append(f"{n} prompt tokens")
        if self.needs:
            have = set(needs_of(r).names())
            if not set(self.needs) <= have:
                return None
            why.append("needs " + ", ".join(self.needs))
        for key, value in self.metadata.items():
            if _label(r, key) != value:
                return None
            why.append(f"{key}={value!r}")
        return ", ".join(why) or "default rule"


class Rules(Strategy):
    """The first matching rule picks the target; ``options.route`` names a target directly.

    A rule whose target may not serve this request (it lacks a capability, cools down, or is over
    budget) is skipped and noted, and the next rule is tried. With no match the strategy abstains.
    """

    name = "rules"

    def __init__(self, rules: Sequence[Rule | Mapping[str, Any]] = (), *, hints: bool = True) -> None:
        self.rules = [r if isinstance(r, Rule) else _rule_from(i, r) for i, r in enumerate(rules)]
        self.hints = hints

    async def aroute(self, ctx: RouteContext) -> Route | None:
        skipped: dict[str, str] = {}
        hint = ctx.request.options.route if self.hints else None
        if hint:
            target = ctx.target(hint)
            if target is not None:
                return Route(target, self.name, reason=f"options hint route={hint!r}")
            skipped[hint] = f"hinted but {ctx.why_not(hint)}"
        for rule in self.rules:
            why = rule.matches(ctx)
            if why is None:
                continue
            target = ctx.target(rule.target_name)
            if target is None:
                skipped.setdefault(rule.target_name, f"rule matched ({why}) but {ctx.why_not(rule.target_name)}")
                continue
            rejected = {**skipped, **{t.name: "no rule chose it" for t in ctx.candidates
                                      if t is not target and t.name not in skipped}}
            return Route(target, self.name, reason=f"rule matched: {why}", rejected=rejected)
        return None

    def __repr__(self) -> str:
        return f"Rules({len(self.rules)} rules)"


def _rule_from(i: int, spec: Mapping[str, Any]) -> Rule:
    if "target" not in spec:
        raise ConfigError(f"rules[{i}] has no 'target'")
    try:
        return Rule(**dict(spec))
    except TypeError as exc:
        raise ConfigError(f"rules[{i}]: {exc}") from exc
