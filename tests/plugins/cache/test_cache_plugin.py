"""SemanticCache in a chain: tiers, controls, scopes, streams, single flight, failing open."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from cache_helpers import MODEL, PRICE, make_cache, make_chain, user
from costmw.adapters import MockTarget
from costmw.plugins.cache import MemoryStore, SemanticCache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmw import Chain, ConfigError, InvalidRequestError, Request, Response


def test_exact_hit_costs_nothing_and_records_the_saving() -> None:
    chain, mock = make_chain(make_cache())
    first = chain.complete(user("What is the capital of France?"), model=MODEL)
    again = chain.complete(user("What is the capital of France?"), model=MODEL)
    assert len(mock.calls) == 1
    assert first.served_by == "target:mock" and again.served_by == "cache:exact"
    assert again.text == first.text and again.cost_usd == 0.0
    expected = (first.usage.prompt_tokens * PRICE[0] + first.usage.completion_tokens * PRICE[1]) / 1e6
    assert again.savings[0].plugin == "semantic_cache"
    assert again.savings[0].usd == pytest.approx(expected)
    assert again.info["cache"] == {"hit": True, "tier": "exact", "similarity": 1.0}
    assert chain.report()["by_plugin"]["semantic_cache"] == pytest.approx(expected)
    chain.close()


def test_semantic_hit_and_hard_negative_miss() -> None:
    chain, mock = make_chain(make_cache())
    chain.complete(user("What is the capital of France?"), model=MODEL)
    near = chain.complete(user("what is the capital of france"), model=MODEL)
    assert near.served_by == "cache:semantic" and near.text == "answer to: what is the capital of france"
    other = chain.complete(user("What is the capital of Germany?"), model=MODEL)
    assert other.served_by == "target:mock" and "germany" in other.text
    assert other.info["cache"]["reason"].startswith("verifier:")
    assert len(mock.calls) == 2
    chain.close()


def test_the_rest_of_the_conversation_and_parameters_must_match() -> None:
    chain, mock = make_chain(make_cache())
    base = [{"role": "system", "content": "Answer in one word."}, *user("capital of France?")]
    chain.complete(base, model=MODEL)
    chain.complete([{"role": "system", "content": "Answer at length."}, *user("capital of France?")], model=MODEL)
    chain.complete(base, model=MODEL, max_tokens=3)
    chain.complete(base, model="gpt-4o")
    assert len(mock.calls) == 4
    chain.close()


def test_sampled_requests_are_not_cached_unless_opted_in() -> None:
    chain, mock = make_chain(make_cache())
    for _ in range(2):
        chain.complete(user("Tell me a story"), model=MODEL, temperature=0.9)
        chain.complete(user("Tell me a story"), model=MODEL, n=2)
    assert len(mock.calls) == 4
    chain.close()
    opted, mock2 = make_chain(make_cache(cache_sampled=True))
    opted.complete(user("Tell me a story"), model=MODEL, temperature=0.9)
    assert opted.complete(user("Tell me a story"), model=MODEL, temperature=0.9).served_by == "cache:exact"
    assert len(mock2.calls) == 1
    opted.close()


def test_per_request_controls() -> None:
    chain, mock = make_chain(make_cache())
    q = user("How do I reset my password?")
    chain.complete(q, model=MODEL, options={"no_store": True})
    assert chain.complete(q, model=MODEL).served_by == "target:mock"  # nothing was stored before
    assert chain.complete(q, model=MODEL, options={"no_cache": True}).served_by == "target:mock"
    assert chain.complete(q, model=MODEL, options={"no_store": True}).served_by == "cache:exact"
    assert len(mock.calls) == 3
    with pytest.raises(InvalidRequestError, match="ttl"):
        chain.complete(q, model=MODEL, options={"ttl": "tomorrow"})
    chain.close()


def test_ttl_expiry_per_cache_and_per_request() -> None:
    chain, _mock = make_chain(make_cache(ttl=0.3))
    q = user("What is the speed of light?")
    chain.complete(q, model=MODEL)
    assert chain.complete(q, model=MODEL).served_by == "cache:exact"
    import time

    time.sleep(0.4)
    assert chain.complete(q, model=MODEL).served_by == "target:mock"
    chain.complete(user("What is 2 + 2?"), model=MODEL, options={"ttl": 0})  # ttl 0: not stored
    assert chain.complete(user("What is 2 + 2?"), model=MODEL).served_by == "target:mock"
    chain.close()


def test_size_bound_evicts_least_recently_used() -> None:
    chain, _mock = make_chain(make_cache(store=MemoryStore(max_entries=2)))
    for q in ("alpha question", "beta question", "alpha question", "gamma question"):
        chain.complete(user(q), model=MODEL)
    assert chain.complete(user("alpha question"), model=MODEL).served_by == "cache:exact"
    assert chain.complete(user("beta question"), model=MODEL).served_by == "target:mock"
    chain.close()


def test_namespaces_private_and_shared() -> None:
    chain, _mock = make_chain(make_cache(shared_namespaces=["faq"]))
    q = user("What are your opening hours?")
    chain.complete(q, model=MODEL, options={"tenant": "a", "namespace": "support"})
    assert chain.complete(q, model=MODEL, options={"tenant": "a"}).served_by == "target:mock"
    assert chain.complete(q, model=MODEL, options={"tenant": "b", "namespace": "support"}).served_by == "target:mock"
    chain.complete(q, model=MODEL, options={"tenant": "a", "namespace": "faq"})
    assert chain.complete(q, model=MODEL, options={"tenant": "b", "namespace": "faq"}).served_by == "cache:exact"
    chain.close()


QUESTIONS = ["What is the capital of France?", "what is the capital of france", "How do I reset my password?",
             "How do I reset my password", "Where is my order?", "Is the store open today?"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["acme", "globex", "initech", None]), st.sampled_from(QUESTIONS),
                          st.sampled_from(["tenant", "user"])), min_size=1, max_size=25),
       st.sampled_from(["tenant", "user"]))
def test_no_answer_ever_crosses_tenants(calls: list[tuple[str | None, str, str]], scope: str) -> None:
    """Whatever the order of calls, each answer was made for the tenant that receives it,
    even with threshold 0 (every same-conversation entry is a semantic candidate)."""

    def handler(request: Request) -> str:
        return f"[{request.options.tenant}/{request.options.user}] {request.last_user_text}"

    chain, _mock = make_chain(make_cache(threshold=0.0, verifier=False, scope=scope), handler)
    for owner, question, field in calls:
        options = {} if owner is None else {field: owner}
        response = chain.complete(user(question), model=MODEL, options=options)
        made_for = response.text.split("] ")[0][1:].split("/")
        assert made_for[0] == str(options.get("tenant"))  # never another tenant, nor a user of that name
        if scope == "user" or "tenant" not in options:
            assert made_for[1] == str(options.get("user"))
    chain.close()


async def test_async_and_streamed_hits() -> None:
    cache = make_cache(stream_chunk_chars=4)
    chain, mock = make_chain(cache)
    pieces = [c async for c in chain.astream(user("Explain caching briefly"), model=MODEL)]
    assert pieces[-1].response is not None and pieces[-1].response.served_by == "target:mock"
    assert cache.stats["stored"] == 1
    hit = [c async for c in chain.astream(user("Explain caching briefly"), model=MODEL)]
    assert len(hit) > 3 and all(c.response is None for c in hit[:-1])
    assert "".join(c.text for c in hit) == "answer to: explain caching briefly"
    assert hit[-1].response is not None and hit[-1].response.served_by == "cache:exact"
    assert (await chain.acomplete(user("Explain caching briefly"), model=MODEL)).served_by == "cache:exact"
    assert len(mock.calls) == 1
    await chain.aclose()


async def test_an_abandoned_stream_is_not_stored() -> None:
    cache = make_cache()
    chain, _mock = make_chain(cache)
    stream = chain.astream(user("Explain caching briefly"), model=MODEL)
    await stream.__anext__()
    await stream.aclose()
    assert cache.stats["stored"] == 0
    await chain.aclose()


async def test_identical_concurrent_misses_make_one_call() -> None:
    cache = make_cache()
    chain, mock = make_chain(cache, latency=0.2)
    responses = await asyncio.gather(*(chain.acomplete(user("What is a monad?"), model=MODEL) for _ in range(6)))
    assert len(mock.calls) == 1
    assert {r.text for r in responses} == {"answer to: what is a monad"}
    assert sorted(r.served_by for r in responses) == ["cache:exact"] * 5 + ["target:mock"]
    assert cache.stats["shared"] == 5
    assert len({id(r) for r in responses}) == 6
    await chain.aclose()


async def test_when_the_leading_call_fails_the_waiters_try_themselves() -> None:
    failures = iter([True])

    async def flaky(request: Request) -> str:
        await asyncio.sleep(0.1)
        if next(failures, False):
            raise RuntimeError("upstream hiccup")
        return "fine"

    chain, _mock = make_chain(make_cache(), flaky)
    results = await asyncio.gather(*(chain.acomplete(user("Q?"), model=MODEL) for _ in range(3)),
                                   return_exceptions=True)
    assert sum(isinstance(r, Exception) for r in results) == 1
    assert [r.text for r in results if isinstance(r, Response)] == ["fine", "fine"]
    await chain.aclose()


def test_direct_api_sync_and_async() -> None:
    cache = make_cache()
    request = Request.create(user("What is a closure?"), MODEL)
    assert cache.lookup(request) is None
    cache.store(request, Response(text="A function with its environment.", model=MODEL))
    hit = cache.lookup(Request.create(user("What is a closure?"), MODEL))
    assert hit is not None and hit.text == "A function with its environment." and hit.served_by == "cache:exact"

    async def go() -> Response | None:
        await cache.astore(Request.create(user("What is a thunk?"), MODEL), Response(text="A delayed call."))
        return await cache.alookup(Request.create(user("what is a thunk"), MODEL))

    found = asyncio.run(go())
    assert found is not None and found.served_by == "cache:semantic"
    cache.clear()
    assert cache.lookup(request) is None


class BrokenStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def get(self, key: str, now: float) -> Any:
        if self.broken:
            raise ConnectionError("store is down")
        return super().get(key, now)

    def put(self, entry: Any) -> None:
        if self.broken:
            raise ConnectionError("store is down")
        super().put(entry)


def test_store_failures_fail_open_log_once_and_recover(caplog: pytest.LogCaptureFixture) -> None:
    store = BrokenStore()
    cache = make_cache(store=store, retry_after=0.0)
    chain, _mock = make_chain(cache)
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        for _ in range(3):
            assert chain.complete(user("hello there"), model=MODEL).served_by == "target:mock"
    assert cache.stats["errors"] >= 3
    assert len([r for r in caplog.records if "store failed" in r.getMessage()]) == 1
    store.broken = False
    chain.complete(user("hello there"), model=MODEL)
    assert chain.complete(user("hello there"), model=MODEL).served_by == "cache:exact"
    chain.close()


class BrokenEmbedder:
    name = "broken"
    dim = 8

    def embed(self, texts: Any) -> Any:
        raise RuntimeError("model weights missing")


def test_embedder_failure_keeps_the_exact_tier() -> None:
    cache = make_cache(embedder=BrokenEmbedder(), retry_after=60)
    chain, _mock = make_chain(cache)
    chain.complete(user("What is a closure?"), model=MODEL)
    assert chain.complete(user("What is a closure?"), model=MODEL).served_by == "cache:exact"
    assert chain.complete(user("what is a closure"), model=MODEL).served_by == "target:mock"
    assert cache.stats["errors"] == 1  # then the embedder is left alone for retry_after seconds
    chain.close()


def test_tool_calls_are_replayed() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    chain, _mock = make_chain(make_cache(), lambda r: Response(tool_calls=[call], finish_reason="tool_calls"))
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    chain.complete(user("Weather in Paris?"), model=MODEL, tools=tools)
    again = chain.complete(user("Weather in Paris?"), model=MODEL, tools=tools)
    assert again.served_by == "cache:exact" and again.tool_calls == [call]
    chain.close()


def test_built_from_config_with_strings() -> None:
    chain = Chain.from_config({
        "plugins": [{"semantic_cache": {"store": "memory", "embedder": "hashing", "threshold": 0, "ttl": 60}}],
        "targets": [{"kind": "mock", "reply": "ok", "model": MODEL}],
    })
    cache = chain.plugin("semantic_cache")
    assert isinstance(cache, SemanticCache) and cache.threshold == 0.0
    chain.complete(user("hi"), model=MODEL)
    assert chain.complete(user("hi"), model=MODEL).served_by == "cache:exact"
    chain.close()
    for bad, field in (({"threshold": 1.5}, "threshold"), ({"store": "mongo://x"}, "store"),
                       ({"scope": "galaxy"}, "scope"), ({"threshold": "high"}, "threshold")):
        with pytest.raises(ConfigError, match=field):
            Chain.from_config({"plugins": [{"semantic_cache": {"store": "memory", **bad}}]})


def test_an_exact_only_cache_needs_no_embedder() -> None:
    chain, _mock = make_chain(SemanticCache(store="memory", embedder=None))
    chain.complete(user("Hello?"), model=MODEL)
    assert chain.complete(user("Hello?"), model=MODEL).served_by == "cache:exact"
    assert chain.complete(user("hello"), model=MODEL).served_by == "target:mock"
    chain.close()


def test_mock_target_is_untouched_by_cache_hits() -> None:
    mock = MockTarget(model=MODEL)
    chain = Chain([make_cache()], [mock])
    chain.complete(user("echo me"), model=MODEL)
    chain.complete(user("echo me"), model=MODEL)
    assert len(mock.calls) == 1
    chain.close()


def test_entries_carry_the_version_of_their_reading_and_are_read_again_when_it_changes(tmp_path: Any) -> None:
    from costmw.plugins.cache import Normaliser

    path = tmp_path / "versions.db"
    writer = make_cache(f"sqlite:///{path}", verifier="guards")
    chain, _ = make_chain(writer)
    chain.complete(user("Hi there, what is the capital of France?"), model=MODEL)
    chain.close()
    from costmw.plugins.cache import SQLiteStore

    stored = SQLiteStore(path).get(_keys(path)[0], time.time())
    assert stored is not None
    assert stored.derived_data() == {"version": writer.derived_version, "text": "What is the capital of France?"}

    class Changed(Normaliser):  # a new release reads questions differently
        @property
        def version(self) -> str:
            return "norm/next"

    reader = make_cache(f"sqlite:///{path}", verifier="guards", normalise=Changed(spelling=False))
    chain, mock = make_chain(reader)
    near = chain.complete(user("what is the capital of france"), model=MODEL)
    assert near.served_by == "cache:semantic" and not mock.calls
    assert reader.stats["reread"] == 1
    again = reader.storage.get(stored.key, time.time())
    assert again is not None
    assert again.derived_data() == {"version": "norm/next", "text": "What is the capital of France?"}
    chain.close()


def _keys(path: Any) -> list[str]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT key FROM entries")]
    finally:
        db.close()


def test_hits_on_sqlite_are_written_in_the_background(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from costmw.plugins.cache import _sqlite

    monkeypatch.setattr(_sqlite, "_FLUSH_AFTER", 2)
    path = tmp_path / "hits.db"
    chain, _ = make_chain(make_cache(f"sqlite:///{path}"))
    for text in ("first question", "second question"):
        chain.complete(user(text), model=MODEL)
    for _ in range(2):
        for text in ("first question", "second question"):
            assert chain.complete(user(text), model=MODEL).served_by == "cache:exact"
    db = sqlite3.connect(path)
    deadline = time.monotonic() + 5.0
    while db.execute("SELECT sum(hits) FROM entries").fetchone()[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert db.execute("SELECT sum(hits) FROM entries").fetchone()[0] >= 2  # written with no close or put
    chain.close()
    assert db.execute("SELECT sum(hits) FROM entries").fetchone()[0] == 4
    db.close()
