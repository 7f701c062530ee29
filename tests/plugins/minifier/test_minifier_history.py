"""History budget: keeps the system prompt and tool pairs, summarises once per prefix, never fails the call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from costmw.adapters import Capabilities, MockTarget
from costmw.plugins import PromptMinifier
from costmw.plugins.minifier._history import SUMMARY_PREFIX, SummaryCache, fit_history
from costmw.plugins.minifier._summary import cheapest_target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import costmw
from costmw._tokens import count_message_tokens

SYSTEM = {"role": "system", "content": "You are the support assistant of a parcel company. Be brief."}


def _turn(i: int, tools: int) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": f"Question number {i}: where is parcel P-{i:04d}? " * 3}]
    if tools:
        calls = [{"id": f"call_{i}_{k}", "type": "function",
                  "function": {"name": "lookup", "arguments": json.dumps({"parcel": f"P-{i:04d}", "k": k})}}
                 for k in range(tools)]
        msgs.append({"role": "assistant", "content": None, "tool_calls": calls})
        msgs += [{"role": "tool", "tool_call_id": c["id"], "content": f"status of {c['id']}: in transit"}
                 for c in calls]
    msgs.append({"role": "assistant", "content": f"Parcel P-{i:04d} is in transit and arrives on day {i}. " * 2})
    return msgs


def _conversation(tool_plan: Sequence[int]) -> list[dict[str, Any]]:
    out = [SYSTEM]
    for i, tools in enumerate(tool_plan):
        out += _turn(i, tools)
    out.append({"role": "user", "content": "And the last one?"})
    return out


def _count(ms: Sequence[dict[str, Any]]) -> int:
    return count_message_tokens(ms, "gpt-4o")


def _assert_tool_pairs_whole(messages: Sequence[dict[str, Any]]) -> None:
    open_ids: set[str] = set()
    for m in messages:
        for c in m.get("tool_calls") or ():
            open_ids.add(c["id"])
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_ids, "a tool result lost its call"
    results = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    assert open_ids <= results, "a tool call lost its result"


async def _summarize(previous: str | None, older: Sequence[dict[str, Any]]) -> tuple[str, float]:
    return f"{len(older)} older messages about parcels.", 0.001


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8), st.integers(80, 900), st.booleans())
def test_budget_keeps_system_prompt_latest_turn_and_tool_pairs(
        plan: list[int], budget: int, with_summary: bool) -> None:
    messages = _conversation(plan)
    fit = asyncio.run(fit_history(messages, budget=budget, count=_count,
                                  summarize=_summarize if with_summary else None, cache=SummaryCache()))
    out = fit.messages
    assert out[0] == SYSTEM
    assert out[-1] == messages[-1]
    _assert_tool_pairs_whole(out)
    if _count(messages) <= budget:
        assert out == messages
    else:
        kept = [m for m in out if m in messages]
        assert kept == [m for m in messages if m in kept], "kept messages stay in order"
        if fit.how in ("summarized", "cached"):
            assert out[1]["content"].startswith(SUMMARY_PREFIX)


async def test_fits_the_budget_when_the_latest_turn_allows() -> None:
    messages = _conversation([1, 0, 2, 0, 1, 0])
    budget = _count(messages) // 2
    fit = await fit_history(messages, budget=budget, count=_count, summarize=_summarize, cache=SummaryCache(),
                            summary_tokens=40)
    assert fit.how == "summarized"
    assert _count(fit.messages) <= budget
    assert fit.replaced > 0


async def test_summary_is_paid_once_per_history_prefix() -> None:
    calls: list[int] = []

    async def summarize(previous: str | None, older: Sequence[dict[str, Any]]) -> tuple[str, float]:
        calls.append(len(older))
        return "the user asked about parcels 0 to 3", 0.0

    cache = SummaryCache()
    messages = _conversation([0, 1, 0, 1, 0, 0])
    budget = _count(messages) // 2
    first = await fit_history(messages, budget=budget, count=_count, summarize=summarize, cache=cache)
    again = await fit_history(messages, budget=budget, count=_count, summarize=summarize, cache=cache)
    assert first.how == "summarized" and again.how == "cached"
    assert again.messages == first.messages
    assert len(calls) == 1
    # one more short exchange: the cached summary of the same prefix still fits, no new call
    longer = [*messages, {"role": "assistant", "content": "It arrives tomorrow."},
              {"role": "user", "content": "Thanks, and parcel 9?"}]
    third = await fit_history(longer, budget=budget, count=_count, summarize=summarize, cache=cache)
    assert third.how == "cached" and len(calls) == 1


async def test_a_longer_history_extends_the_cached_summary() -> None:
    seen: list[str | None] = []

    async def summarize(previous: str | None, older: Sequence[dict[str, Any]]) -> tuple[str, float]:
        seen.append(previous)
        return f"summary of {len(older)} messages", 0.0

    cache = SummaryCache()
    messages = _conversation([0] * 6)
    budget = _count(messages) // 2
    await fit_history(messages, budget=budget, count=_count, summarize=summarize, cache=cache, summary_tokens=20)
    grown = _conversation([0] * 12)
    await fit_history(grown, budget=budget, count=_count, summarize=summarize, cache=cache, summary_tokens=20)
    assert seen[0] is None and seen[1] is not None and seen[1].startswith("summary of")


async def test_summarizer_failure_falls_back_to_truncation() -> None:
    async def broken(previous: str | None, older: Sequence[dict[str, Any]]) -> tuple[str, float]:
        raise TimeoutError("summarizer timed out")

    messages = _conversation([1, 0, 1, 0])
    fit = await fit_history(messages, budget=_count(messages) // 2, count=_count, summarize=broken,
                            cache=SummaryCache())
    assert fit.how == "truncated" and "timed out" in (fit.error or "")
    assert fit.messages[0] == SYSTEM and fit.messages[-1] == messages[-1]
    assert all(not str(m.get("content", "")).startswith(SUMMARY_PREFIX) for m in fit.messages)


def test_cheapest_capable_target_is_chosen() -> None:
    big = MockTarget(name="big", price=(5.0, 15.0))
    small = MockTarget(name="small", price=(0.1, 0.4), capabilities=Capabilities(context_window=100))
    mid = MockTarget(name="mid", price=(0.5, 1.5))
    unknown = MockTarget(name="unknown", price=None)
    assert cheapest_target([big, small, mid, unknown], 50, 20) is small
    assert cheapest_target([big, small, mid, unknown], 500, 20) is mid  # small's window is too short
    assert cheapest_target([unknown], 500, 20) is unknown


def test_plugin_summarises_with_the_cheapest_target_and_nets_its_cost() -> None:
    def serve(request: costmw.Request) -> str:
        return "ok"

    def summarize(request: costmw.Request) -> dict[str, Any]:
        assert request.metadata.get("purpose") == "minifier_summary"
        return {"text": "The user tracked parcels P-0000 to P-0005.", "usage": {"prompt_tokens": 1000,
                                                                                  "completion_tokens": 100}}

    main = MockTarget(serve, name="main", price=(10.0, 30.0))
    cheap = MockTarget(summarize, name="cheap", price=(1.0, 2.0))
    messages = _conversation([1, 0, 1, 0, 1, 0])
    budget = _count(messages) // 2
    with costmw.Chain([PromptMinifier(budget_tokens=budget)], [main, cheap]) as chain:
        r = chain.complete(messages, model="main", options={"target": "main"})
    served = main.calls[-1].messages
    assert served[0] == SYSTEM and served[1]["content"].startswith(SUMMARY_PREFIX)
    assert len(cheap.calls) == 1
    info = r.info["minifier"]
    assert info["history"] == "summarized" and info["summarizer"] == "cheap"
    summary_cost = (1000 * 1.0 + 100 * 2.0) / 1e6
    saving = r.savings[0]
    assert saving.tokens == info["removed_tokens"] > 0
    assert saving.usd == pytest.approx(saving.tokens * 10.0 / 1e6 - summary_cost)


def test_plugin_survives_a_failing_summarizer() -> None:
    def fail(request: costmw.Request) -> str:
        raise RuntimeError("summary service down")

    main = MockTarget(lambda r: "ok", name="main", price=(10.0, 30.0))
    messages = _conversation([1, 0, 1, 0, 1, 0])
    plugin = PromptMinifier(budget_tokens=_count(messages) // 2, summarizer=MockTarget(fail, name="sum"))
    with costmw.Chain([plugin], [main]) as chain:
        r = chain.complete(messages, model="main")
    assert r.text == "ok" and r.info["minifier"]["history"] == "truncated"
    _assert_tool_pairs_whole(main.calls[-1].messages)
    assert plugin.stats["history_truncated"] == 1
