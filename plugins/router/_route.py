"""What a routing strategy decides (a Route) and what a strategy sees while deciding (RouteContext)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from costmw.plugin_api import Request, Target, count_message_tokens

__all__ = ["Route", "RouteContext", "estimated_cost", "rank_by_cost"]

DEFAULT_OUTPUT_TOKENS = 256


@dataclass
class Route:
    """A strategy's choice: the target to call, and why.

    ``escalate_to`` and ``scorer`` make it a cascade: ``target`` answers first, and when the
    scorer rates that answer below ``threshold`` the request goes on to ``escalate_to``.
    ``details`` are added to the explanation as they are (JSON-able values).
    """

    target: Target
    strategy: str
    reason: str = ""
    score: float | None = None
    threshold: float | None = None
    rejected: dict[str, str] = field(default_factory=dict)
    escalate_to: Target | None = None
    scorer: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> dict[str, Any]:
        """The decision as a JSON-able dict (what the response and the ledger row carry)."""
        out: dict[str, Any] = {
            "strategy": self.strategy,
            "chosen": self.target.name,
            "reason": self.reason,
            "score": None if self.score is None else round(float(self.score), 4),
            "threshold": None if self.threshold is None else round(float(self.threshold), 4),
            "rejected": dict(self.rejected),
        }
        out.update(self.details)
        if self.escalate_to is not None:
            out["escalate_to"] = self.escalate_to.name
        return out


def estimated_cost(target: Target, prompt_tokens: int, output_tokens: int) -> float | None:
    """USD a target would charge for a call of this size (None when its price is unknown)."""
    price = target.price
    return None if price is None else price.cost(prompt_tokens, output_tokens)


def rank_by_cost(targets: Sequence[Target], prompt_tokens: int, output_tokens: int) -> list[Target]:
    """``targets`` cheapest first for a call of this size; unknown prices keep their place last."""
    known = [(c, i, t) for i, t in enumerate(targets)
             if (c := estimated_cost(t, prompt_tokens, output_tokens)) is not None]
    unknown = [t for t in targets if t.price is None]
    return [t for _, _, t in sorted(known, key=lambda x: (x[0], x[1]))] + unknown


class RouteContext:
    """The request and the targets still allowed for it, with shared, memoised work.

    ``candidates`` are in the router's order and have already passed the capability, cooldown
    and budget checks; ``excluded`` says why each other target was left out.
    """

    def __init__(self, request: Request, candidates: Sequence[Target], excluded: Mapping[str, str],
                 all_targets: Sequence[Target]) -> None:
        self.request = request
        self.candidates = list(candidates)
        self.excluded = dict(excluded)
        self.all_targets = list(all_targets)

    def target(self, name: str) -> Target | None:
        """The candidate called ``name`` (None when it is not allowed for this request)."""
        return next((t for t in self.candidates if t.name == name), None)

    def why_not(self, name: str) -> str:
        return self.excluded.get(name, "not among the router's targets")

    @property
    def prompt_tokens(self) -> int:
        r = self.request
        return int(r.context.memo(("prompt_tokens", id(r.messages)),
                                  lambda: count_message_tokens(r.messages, r.model, r.params.get("tools"))))

    @property
    def output_tokens(self) -> int:
        p = self.request.params
        return int(p.get("max_tokens") or p.get("max_completion_tokens") or DEFAULT_OUTPUT_TOKENS)

    def by_cost(self, targets: Sequence[Target] | None = None) -> list[Target]:
        """Targets cheapest first for this request's size; unknown prices keep their place last."""
        return rank_by_cost(self.candidates if targets is None else targets, self.prompt_tokens, self.output_tokens)
