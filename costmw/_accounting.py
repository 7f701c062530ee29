"""The one accounting path: the facts of a call become its cost, baseline and savings.

Runs once per call, on success, error and cancellation alike (``Chain._settle``). The row it
makes reconciles by construction and line by line::

    baseline - cost = sum(savings)

- baseline: the request exactly as the caller sent it, priced at the requested model, with the
  answer's completion tokens (none for a failed call, those generated so far for a cancelled one).
  Its prompt tokens are what the provider reported when the request reached the requested model
  unchanged (on this call, or on an earlier call of the same request, so a cache hit has its
  miss's baseline), else costmw's count of the original request.
- cost: every call made for the request (cascade tries, samples, summaries), each priced at its
  target's price by :func:`price_call`.
- savings, one line per plugin: a call avoided gets what is left of the baseline; tokens removed
  are priced at the requested model's input price; the plugin that chose the target gets the
  requested model's price for the tokens billed less what the answering calls cost at list
  price; discounts a call carries (a batch API) are their own lines; calls a plugin made on the
  side are charged to it. ``unexplained`` holds what no fact explains (a provider counting a
  prompt differently from costmw); ``failed`` / ``cancelled`` what a call that never answered
  did not spend.

Savings a target reports are credits of :func:`price_call` (the provider's prompt cache, a
batch discount): it returns the cost and the credits of one call, and every credit becomes a
line; a new kind of reported saving is one more credit there.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ._facts import CallMade
from ._pricing import Price
from ._tokens import count_message_tokens
from ._types import Request, Response, Saving

__all__ = ["PROVIDER_CACHE", "UNEXPLAINED", "Account", "baseline_prompt_tokens", "price_call", "settle"]

UNEXPLAINED = "unexplained"
PROVIDER_CACHE = "provider_cache"
_EPS = 1e-12


@dataclass(slots=True)
class Account:
    """The priced outcome of one call: what the ledger row and the response carry."""

    status: str
    cost_usd: float
    baseline_cost_usd: float
    lines: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def savings(self) -> list[Saving]:
        return [Saving(name, usd, self.details.get(name, ""), self.tokens.get(name, 0))
                for name, usd in self.lines.items()]


def price_call(call: CallMade) -> tuple[float, float, dict[str, float]]:
    """(cost, list-price cost, credits by line) of one call at its target's price. Credits are
    savings the call's own facts explain: the provider's prompt cache (``provider_cache``: tokens
    read at the cache price, less the surcharge on tokens written) and a batch discount."""
    price, usage = call.price, call.usage
    if price is None:
        return 0.0, 0.0, {}
    full = price.cost(usage.prompt_tokens, usage.completion_tokens)
    credits: dict[str, float] = {}
    if usage.cached_tokens or usage.cache_write_tokens:
        credits[PROVIDER_CACHE] = price.cache_discount(usage.cached_tokens, usage.cache_write_tokens)
    if call.discount and full:
        after_cache = full - sum(credits.values())
        credits[call.discount_by or call.target] = after_cache * call.discount
    return full - sum(credits.values()), full, credits


class ReportedPrompts:
    """Prompt tokens providers reported for requests they were sent unchanged, by request (a
    bounded memory), so a cache hit on the same request later has the same baseline as its miss."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._known: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(request: Request) -> str:
        text = json.dumps([request.model, list(request.messages), request.params.get("tools")],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, request: Request) -> int | None:
        with self._lock:
            return self._known.get(self.key(request))

    def put(self, request: Request, tokens: int) -> None:
        key = self.key(request)
        with self._lock:
            self._known[key] = tokens
            self._known.move_to_end(key)
            while len(self._known) > self.size:
                self._known.popitem(last=False)


def baseline_prompt_tokens(original: Request, response: Response | None,
                           reported: ReportedPrompts | None = None) -> tuple[int, bool]:
    """Prompt tokens of the request as sent, and whether a provider reported them: when the request
    reached the requested model unchanged (now, or earlier for the same request), else costmw's count."""
    served: Request | None = original.context.recall("served")
    usage = response.usage if response is not None else None
    target = original.context.recall("served_target")
    if (usage is not None and usage.prompt_tokens and not usage.estimated and served is not None
            and target is not None and original.model in (target.name, target.model)
            and served.messages == original.messages
            and served.params.get("tools") == original.params.get("tools")
            and response is not None and response.served_by.startswith(("target:", "batch:"))):
        if reported is not None:
            reported.put(original, usage.prompt_tokens)
        return usage.prompt_tokens, True
    known = reported.get(original) if reported is not None else None
    if known is not None:
        return known, True
    counted: int = original.context.memo(
        ("accounting", "original_prompt_tokens"),
        lambda: count_message_tokens(original.messages, original.model, original.params.get("tools")))
    return counted, False


class _Lines:
    """Saving lines being built: USD, a note and tokens per name."""

    def __init__(self) -> None:
        self.usd: dict[str, float] = defaultdict(float)
        self.details: dict[str, str] = {}
        self.tokens: dict[str, int] = {}

    def add(self, name: str, usd: float, detail: str = "", tokens: int = 0) -> None:
        self.usd[name] += usd
        if detail:
            self.details.setdefault(name, detail)
        if tokens:
            self.tokens[name] = self.tokens.get(name, 0) + tokens

    def rest(self, baseline: float, cost: float) -> float:
        return baseline - cost - sum(self.usd.values())


def settle(original: Request, response: Response | None, status: str, reference: Price,
           known: ReportedPrompts | None = None) -> Account:
    """Price the facts of ``original``'s call (``status``: ok, error or cancelled)."""
    facts = original.context.facts
    completion = response.usage.completion_tokens if response is not None and status != "error" else 0
    prompt, reported = baseline_prompt_tokens(original, response if status == "ok" else None, known)
    baseline = reference.cost(prompt, completion)
    lines = _Lines()
    cost, answer_full, answered = _price_calls(facts.calls, lines)
    if answered and status != "error":
        assert response is not None
        _explain_answer(original, reference, reference.cost(response.usage.prompt_tokens, completion) - answer_full,
                        lines)
    elif facts.avoided is not None and status != "error":
        lines.add(facts.avoided[0], lines.rest(baseline, cost), facts.avoided[1], prompt + completion)
    elif status != "ok":
        lines.add(status, lines.rest(baseline, cost), "the call did not complete: nothing was billed beyond "
                                                      "the calls made")
    rest = lines.rest(baseline, cost)
    if abs(rest) > _EPS:
        lines.add(UNEXPLAINED, rest)
        lines.details[UNEXPLAINED] = "; ".join(d for d in (lines.details.get(UNEXPLAINED), "token counts differ") if d)
    kept = {k: v for k, v in lines.usd.items() if abs(v) > _EPS}
    if kept and abs(sum(kept.values()) - (baseline - cost)) > _EPS:
        kept[UNEXPLAINED] = kept.get(UNEXPLAINED, 0.0) + (baseline - cost - sum(kept.values()))
    info = {"baseline": {"model": original.model, "prompt_tokens": prompt, "completion_tokens": completion,
                         "prompt_reported": reported, "price": [reference.input_per_1m, reference.output_per_1m]},
            "calls": [_call_info(c) for c in facts.calls]}
    return Account(status, cost, baseline, kept, {k: v for k, v in lines.details.items() if k in kept},
                   {k: v for k, v in lines.tokens.items() if k in kept}, info)


def _price_calls(calls: list[CallMade], lines: _Lines) -> tuple[float, float, bool]:
    """Total cost, list-price cost of the calls on the way to the answer, and whether there were any;
    discounts become their lines and side calls are charged to the plugin that made them."""
    cost = answer_full = 0.0
    answered = False
    for call in calls:
        paid, full, credits = price_call(call)
        cost += paid
        for name, usd in credits.items():
            lines.add(name, usd, "the provider's prompt cache" if name == PROVIDER_CACHE
                      else f"{call.discount:.0%} provider discount")
        if call.by:
            lines.add(call.by, -paid)
        else:
            answer_full += full
            answered = True
    return cost, answer_full, answered


def _explain_answer(original: Request, reference: Price, choice_usd: float, lines: _Lines) -> None:
    """A target answered: tokens removed at the requested input price; the requested model's price
    for the tokens billed less what the answering calls cost, to the plugin that chose the target."""
    facts = original.context.facts
    for removal in facts.removed:
        removed = removal.before - removal.after
        lines.add(removal.plugin, removed * reference.input_per_1m / 1e6, removal.detail or
                  f"{removed} input tokens removed ({removal.before} -> {removal.after})", removed)
    if facts.chosen is not None:
        lines.add(facts.chosen[0], choice_usd, facts.chosen[1])
    elif abs(choice_usd) > _EPS:
        models = sorted({c.model for c in facts.calls if not c.by})
        lines.add(UNEXPLAINED, choice_usd, f"served by {', '.join(models)} for {original.model}, a target no "
                                           "plugin chose" if models != [original.model] else "")


def _call_info(call: CallMade) -> dict[str, Any]:
    paid, _, _ = price_call(call)
    out: dict[str, Any] = {"target": call.target, "model": call.model, "prompt_tokens": call.usage.prompt_tokens,
                           "completion_tokens": call.usage.completion_tokens, "cost_usd": paid}
    if call.usage.estimated:
        out["estimated"] = True
    if call.by:
        out["by"] = call.by
    if call.partial:
        out["partial"] = True
    return out
