"""The one accounting path: baselines, reconciliation, estimated usage, failures and cancellations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from costmw.adapters import MockTarget

from costmw import Chain, Chunk, Plugin, Price, Request, Response, TargetError
from costmw.plugin_api import count_message_tokens, count_tokens

USER = [{"role": "user", "content": "Please explain in detail how a hash map handles collisions."}]
GPT4O = Price(2.5, 10.0)


def reconciles(row: object) -> bool:
    baseline, cost = row.baseline_cost_usd, row.cost_usd
    return abs(baseline - cost - sum(row.savings.values())) < 1e-9


def test_a_plain_call_saves_nothing_and_usage_is_marked_estimated() -> None:
    target = MockTarget(lambda r: "An answer of some length.", name="gpt-4o", price=GPT4O)
    chain = Chain(targets=[target])
    r = chain.complete(USER, model="gpt-4o")
    assert r.usage.estimated
    assert r.cost_usd == pytest.approx(GPT4O.cost(count_message_tokens(USER, "gpt-4o"),
                                                  count_tokens("An answer of some length.", "gpt-4o")))
    assert r.baseline_cost_usd == r.cost_usd and r.savings == [] and r.saved_usd == 0
    row = chain.ledger.rows()[0]
    assert row.status == "ok" and row.savings == {} and row.info["accounting"]["calls"][0]["estimated"]


def test_a_model_swap_no_plugin_chose_is_an_unexplained_line() -> None:
    chain = Chain(targets=[MockTarget(lambda r: "ok", name="small", price=(0.1, 0.4))])
    r = chain.complete(USER, model="gpt-4o")
    assert [s.plugin for s in r.savings] == ["unexplained"]
    assert "no plugin chose" in r.savings[0].detail
    assert reconciles(chain.ledger.rows()[0])


def test_a_failed_call_keeps_the_plugins_notes_and_its_tags() -> None:
    class Note(Plugin):
        name = "note"

        async def before(self, request: Request) -> Request:
            request.context.info["note"] = {"seen": True}
            return request

    def broken(request: Request) -> str:
        raise RuntimeError("down")

    chain = Chain(plugins=[Note()], targets=[MockTarget(broken, name="gpt-4o", price=GPT4O)])
    with pytest.raises(TargetError):
        chain.complete(USER, model="gpt-4o", metadata={"tags": ["billing", "eu"]})
    [row] = chain.ledger.rows()
    assert row.status == "error" and row.info["note"] == {"seen": True} and row.tags == ["billing", "eu"]
    assert row.cost_usd == 0
    assert row.baseline_cost_usd == pytest.approx(GPT4O.cost(count_message_tokens(USER, "gpt-4o"), 0))
    assert row.savings == {"error": pytest.approx(row.baseline_cost_usd)} and reconciles(row)


class Slow(MockTarget):
    """Streams its answer word by word, forever if asked."""

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        for i in range(1000):
            await asyncio.sleep(0)
            yield Chunk(text=f"word{i} ")


def test_an_abandoned_stream_is_recorded_as_cancelled_with_what_it_generated() -> None:
    chain = Chain(targets=[Slow(name="gpt-4o", price=GPT4O)])
    stream = chain.stream(USER, model="gpt-4o", metadata={"tenant": "acme"})
    got = [next(stream).text for _ in range(5)]
    stream.close()  # type: ignore[attr-defined]
    [row] = chain.ledger.rows()
    assert row.status == "cancelled" and row.served_by == "target:gpt-4o"
    text = "".join(got)
    assert row.completion_tokens == count_tokens(text, "gpt-4o")
    assert row.cost_usd == pytest.approx(GPT4O.cost(count_message_tokens(USER, "gpt-4o"), row.completion_tokens))
    assert row.cost_usd > 0 and row.baseline_cost_usd == pytest.approx(row.cost_usd) and reconciles(row)
    assert chain.ledger.spend("acme") == pytest.approx(row.cost_usd)  # budgets see it
    chain.close()


def test_a_cancelled_async_stream_is_recorded_too() -> None:
    chain = Chain(targets=[Slow(name="gpt-4o", price=GPT4O)])

    async def read_three() -> None:
        stream = chain.astream(USER, model="gpt-4o")
        for _ in range(3):
            await stream.__anext__()
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(read_three())
    [row] = chain.ledger.rows()
    assert row.status == "cancelled" and row.completion_tokens > 0 and reconciles(row)


def test_a_plugin_that_answers_without_saying_so_saves_nothing_it_cannot_explain() -> None:
    class Quiet(Plugin):
        async def before(self, request: Request) -> Response:
            return Response(text="local", served_by="plugin:quiet")

    chain = Chain(plugins=[Quiet()], targets=[MockTarget(name="gpt-4o", price=GPT4O)])
    r = chain.complete(USER, model="gpt-4o")
    assert [s.plugin for s in r.savings] == ["unexplained"] and reconciles(chain.ledger.rows()[0])


def test_a_hit_has_the_same_baseline_as_its_miss_even_after_minifying() -> None:
    from costmw.plugins import MemoryStore, PromptMinifier, SemanticCache

    chain = Chain(plugins=[SemanticCache(store=MemoryStore(), embedder="hashing", verifier="guards"), PromptMinifier()],
                  targets=[MockTarget(lambda r: "Chaining or open addressing.", name="gpt-4o", price=GPT4O)])
    wordy = [{"role": "user", "content": "Hello! Could you please, if possible, kindly explain in detail how a "
                                         "hash map handles collisions? Thank you so much in advance!"}]
    miss = chain.complete(wordy, model="gpt-4o")
    hit = chain.complete(wordy, model="gpt-4o")
    assert miss.served_by == "target:gpt-4o" and hit.served_by == "cache:exact"
    independent = GPT4O.cost(count_message_tokens(wordy, "gpt-4o"), count_tokens("Chaining or open addressing.",
                                                                                     "gpt-4o"))
    assert miss.baseline_cost_usd == pytest.approx(independent) and hit.baseline_cost_usd == pytest.approx(independent)
    assert [s.plugin for s in miss.savings] == ["prompt_minifier"] and miss.savings[0].tokens > 0
    assert [(s.plugin, s.usd) for s in hit.savings] == [("semantic_cache", pytest.approx(independent))]
    assert all(reconciles(row) for row in chain.ledger.rows())
    chain.close()
