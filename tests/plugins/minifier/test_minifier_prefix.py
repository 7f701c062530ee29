"""With a provider that caches prompt prefixes, the minifier keeps the prefix it sends byte-identical
from turn to turn, cuts old turns in blocks, and backs off from a cut that would cost more than the
cache discount it throws away."""

from __future__ import annotations

import itertools
import json
from typing import Any

from costmw.adapters import MockTarget
from costmw.plugins import PromptMinifier

import costmw
from costmw.plugin_api import PromptCaching

OPENAI = PromptCaching("openai")
ANTHROPIC = PromptCaching("anthropic", breakpoints=True, min_tokens=1024, step_tokens=1)
SYSTEM = {"role": "system", "content": "You are the operations agent of a parcel company.\n\n\n" + "\n\n".join(
    f"Policy {i}:   parcels   in zone {i}   are   delivered   within {i % 5 + 1} days;   refunds   need "
    f"ticket   T-{i:03d}." for i in range(60))}
TOOLS = [{"type": "function", "function": {"name": "track", "description": "Where a parcel is.",
                                           "parameters": {"type": "object", "properties": {
                                               "parcel": {"type": "string"}}}}}]


NOTE = " ".join(f"My order   number {k} was   sent   to   the   wrong   address   on   day {k}." for k in range(8))


def serve(request: costmw.Request) -> str:
    return f"Parcel {request.last_user_text.split()[-1]} is in transit and arrives soon, as tracked today."


def summarize(request: costmw.Request) -> str:
    return "The user asked where several parcels were; each was in transit."


def run(turns: int, minifier: PromptMinifier, caching: PromptCaching | None, price: Any) -> tuple[
        list[list[dict[str, Any]]], list[costmw.Response]]:
    main = MockTarget(serve, name="main", price=price)
    main.prompt_caching = caching
    cheap = MockTarget(summarize, name="cheap", price=(0.15, 0.6))
    messages: list[dict[str, Any]] = [SYSTEM]
    responses = []
    with costmw.Chain([minifier], [main, cheap]) as chain:
        for t in range(turns):
            messages.append({"role": "user", "content": f"Turn {t}: the customer wrote:   " + NOTE
                             + f"   Please   track   parcel   P-{t:04d}"})
            r = chain.complete(messages, model="main", metadata={"target": "main"}, tools=TOOLS)
            responses.append(r)
            messages.append(r.message())
    return [list(c.messages) for c in main.calls], responses


def _dump(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, sort_keys=True)


def prefix_breaks(sent: list[list[dict[str, Any]]]) -> int:
    """Turns whose prompt does not start with the previous turn's prompt, byte for byte."""
    return sum(1 for a, b in itertools.pairwise(sent) if _dump(b[:len(a)]) != _dump(a))


def test_the_prefix_sent_stays_byte_identical_over_20_turns() -> None:
    minifier = PromptMinifier(budget_tokens=2600)
    sent, responses = run(20, minifier, OPENAI, (2.5, 10.0, 1.25))
    assert len(sent) == 20
    assert all(_dump(s[:1]) == _dump(sent[0][:1]) for s in sent)  # the system prompt, as rewritten, never changes
    assert sent[0][0]["content"] != SYSTEM["content"]  # ... and it was rewritten
    cuts = [r.info["minifier"].get("history") for r in responses]
    assert prefix_breaks(sent) == sum(1 for c in cuts if c == "summarized") <= 3
    assert sum(1 for c in cuts if c) >= 1  # the budget did cut, in blocks


def test_without_prefix_stability_the_prefix_breaks_on_most_turns() -> None:
    sent, _ = run(20, PromptMinifier(budget_tokens=2600, prefix_stable=False), OPENAI, (2.5, 10.0, 1.25))
    stable, _ = run(20, PromptMinifier(budget_tokens=2600), OPENAI, (2.5, 10.0, 1.25))
    assert prefix_breaks(sent) > prefix_breaks(stable)


def test_a_cut_that_would_lose_more_discount_than_it_saves_backs_off() -> None:
    minifier = PromptMinifier(budget_tokens=2600)
    sent, responses = run(20, minifier, ANTHROPIC, (3.0, 15.0, 0.3, 3.75))
    assert prefix_breaks(sent) == 0
    decisions = [r.info["minifier"]["prefix"] for r in responses if "prefix" in r.info["minifier"]]
    assert decisions and all(d["kept"] and d["keep_usd"] <= d["cut_usd"] for d in decisions)
    assert minifier.stats["prefix_kept"] == len(decisions) and not minifier.stats["prefix_cut"]


def test_without_a_provider_cache_the_budget_is_kept_as_before() -> None:
    minifier = PromptMinifier(budget_tokens=2600)
    _, responses = run(20, minifier, None, (2.5, 10.0))
    assert all("prefix" not in r.info["minifier"] for r in responses)
    assert minifier.stats["history_summarized"] >= 4  # summarised again whenever the budget is reached
