"""SemanticCache and its verifier: one protocol, batched off the event loop, bad names caught at
construction, a verifier that cannot load leaves the exact tier, normalised matching."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

import pytest
from cache_helpers import MODEL, make_cache, make_chain, user
from costmw.adapters import MockTarget
from costmw.plugins.cache import CacheVerdict, CacheVerifier, SemanticCache, _verifiers

from costmw import Chain, ConfigError, Request


class Recording:
    """A verifier for tests: serves when ``judge`` says so; records what it was asked and where."""

    version = "recording/1"

    def __init__(self, judge: object = True) -> None:
        self.judge = judge
        self.batches: list[tuple[str, list[str]]] = []
        self.threads: list[str] = []

    def check(self, query: str, cached: str) -> CacheVerdict:
        ok = self.judge(query, cached) if callable(self.judge) else bool(self.judge)
        return CacheVerdict(ok, 0.9 if ok else 0.1, "model")

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        self.batches.append((query, list(candidates)))

        def run() -> list[CacheVerdict]:
            self.threads.append(threading.current_thread().name)
            return [self.check(query, c) for c in candidates]

        return await asyncio.to_thread(run)


def test_any_object_with_the_protocol_is_a_verifier_and_gets_candidates_in_one_batch() -> None:
    recording = Recording(judge=lambda query, cached: query.startswith("what's"))
    assert isinstance(recording, CacheVerifier)
    cache = make_cache(verifier=recording, threshold=0.0, candidates=3)
    chain, _mock = make_chain(cache)
    for text in ("What is the capital of France?", "What is the capital of Spain?", "What is the capital of Peru?"):
        chain.complete(user(text), model=MODEL)
    recording.batches.clear()
    hit = chain.complete(user("what's the capital of France"), model=MODEL)
    assert hit.served_by == "cache:semantic"
    assert len(recording.batches) == 1 and len(recording.batches[0][1]) == 3  # every candidate, one call
    assert all(name != "MainThread" for name in recording.threads)
    chain.close()


def test_a_refusing_verdict_is_a_miss_that_names_its_reason() -> None:
    recording = Recording(judge=False)
    chain, _mock = make_chain(make_cache(verifier=recording, threshold=0.0))
    chain.complete(user("What is the capital of France?"), model=MODEL)
    other = chain.complete(user("what's the capital of France"), model=MODEL)
    assert other.served_by == "target:mock" and other.info["cache"]["reason"] == "verifier:model"
    chain.close()


def test_a_plain_function_is_a_verifier() -> None:
    chain, _mock = make_chain(make_cache(verifier=lambda q, c: "spain" not in q.lower(), threshold=0.0))
    chain.complete(user("What is the capital of France?"), model=MODEL)
    assert chain.complete(user("the capital of France?"), model=MODEL).served_by == "cache:semantic"
    assert chain.complete(user("What is the capital of Spain?"), model=MODEL).served_by == "target:mock"
    chain.close()


@pytest.mark.parametrize("name", ["lerned", "rules2", ""])
def test_an_unknown_verifier_name_fails_when_the_cache_is_built(name: str) -> None:
    with pytest.raises(ConfigError, match="verifier"):
        make_cache(verifier=name)


def test_an_unknown_embedder_name_fails_at_once_without_the_network() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="unknown embedder 'minilmm'"):
        SemanticCache(store="memory", embedder="minilmm")
    assert time.monotonic() - started < 1.0


def test_a_verifier_that_cannot_load_leaves_the_exact_tier_and_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(max_error: float) -> CacheVerifier:
        raise OSError("model file missing")

    monkeypatch.setattr(_verifiers, "learned_verifier", broken)
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        cache = make_cache(verifier=True, threshold=0.0)
        chain, _mock = make_chain(cache)
        chain.complete(user("What is the capital of France?"), model=MODEL)
        assert chain.complete(user("What is the capital of France?"), model=MODEL).served_by == "cache:exact"
        near = chain.complete(user("what is the capital of france"), model=MODEL)
    assert near.served_by == "target:mock"  # no semantic hit without a verifier that loaded
    assert cache.stats["errors"] == 1
    assert sum("verifier failed" in r.getMessage() for r in caplog.records) == 1
    chain.close()


def test_a_verifier_that_fails_on_a_call_never_fails_the_call() -> None:
    def boom(query: str, cached: str) -> bool:
        raise RuntimeError("verifier crashed")

    cache = make_cache(verifier=boom, threshold=0.0)
    chain, _mock = make_chain(cache)
    chain.complete(user("What is the capital of France?"), model=MODEL)
    near = chain.complete(user("tell me the capital of France"), model=MODEL)
    assert near.served_by == "target:mock" and near.info["cache"]["reason"] == "verifier_error"
    assert cache.stats["errors"] == 1
    chain.close()


def test_a_huge_prompt_never_stalls_the_event_loop() -> None:
    cache = make_cache(verifier="guards", threshold=0.0)
    chain, _mock = make_chain(cache)
    huge = "Explain this log, please: " + "ERROR 42 at module.func() line 7; " * 300_000  # ~10 MB

    async def run() -> float:
        # CPU time of the loop's own thread: work done on the loop stalls every other request, and
        # unlike wall-clock gaps it does not grow when other processes load the machine
        start = time.thread_time()
        await chain.acomplete(user(huge), model=MODEL)
        await chain.acomplete(user(huge + " And again."), model=MODEL)
        return time.thread_time() - start

    on_loop = chain.run_sync(run())
    # reading the text on the loop took 11 s; hashing and encoding it there once costs well under 1 s
    assert on_loop < 1.5, f"the event loop's thread spent {on_loop:.2f} s of CPU on two huge prompts"
    chain.close()


def test_typos_and_polite_wrappers_are_served_from_the_cache() -> None:
    chain, mock = make_chain(make_cache(verifier="guards", threshold=0.9))
    chain.complete(user("Where can I find my invoice?"), model=MODEL)
    for asked in ("where can i fnd my invocie??", "Good evening, where can I find my invoice?",
                  "Hi there! Where can I find my invoice? Thanks so much!"):
        response = chain.complete(user(asked), model=MODEL)
        assert response.served_by == "cache:semantic", asked
    assert len(mock.calls) == 1
    chain.close()


@pytest.mark.parametrize(("stored", "asked"), [
    ("What is 15% of 80?", "What is 15% of 90?"),
    ("How do I reset the password for user jsmith42?", "How do I reset the password for user jdoe17?"),
    ("What does max_tokens do?", "What does top_p do?"),
    ("How do I convert a fraction to a decimal?", "How do I convert a decimal to a fraction?"),
    ("Why is my build not failing?", "Why is my build failing?"),
    ("How far is 10 km in miles?", "How far is 10 miles in km?"),
])
def test_a_changed_number_identifier_direction_or_negation_is_refused_by_the_guards(stored: str, asked: str) -> None:
    chain, _mock = make_chain(make_cache(verifier="guards", threshold=0.0))
    chain.complete(user(stored), model=MODEL)
    response = chain.complete(user(asked), model=MODEL)
    assert response.served_by == "target:mock", response.info["cache"]
    assert response.info["cache"]["reason"].startswith("verifier:guard:")
    chain.close()


def test_max_error_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_error"):
        make_cache(max_error=0.9)
    with pytest.raises(ConfigError, match="max_error"):
        make_cache(max_error="low")


def test_the_request_is_read_once_per_lookup() -> None:
    request = Request.create(user("Hello! What is the capital of France?"), MODEL)
    cache = make_cache(verifier="guards")
    assert cache.normaliser is not None
    assert cache.normaliser(request.last_user_text) == "What is the capital of France?"


def _judged_chain(reply: str) -> tuple[Chain, MockTarget, MockTarget, SemanticCache]:
    from costmw.plugins.cache import LLMJudge

    unsure = Recording(judge=False)
    unsure.check = lambda q, c: CacheVerdict(False, 0.5, "model")  # type: ignore[method-assign]
    cache = make_cache(verifier=LLMJudge(unsure), threshold=0.0)
    main = MockTarget(lambda r: f"answer to: {r.last_user_text}", model=MODEL, price=(10.0, 30.0), name="main")
    judge = MockTarget(lambda r: reply, model="tiny", price=(0.1, 0.2), name="tiny")
    return Chain([cache], [main, judge]), main, judge, cache


@pytest.mark.parametrize("reply", ["yes", "no"])
def test_the_llm_judge_decides_grey_candidates_and_its_calls_are_priced(reply: str) -> None:
    chain, main, judge, _cache = _judged_chain(reply)
    chain.complete(user("What is the capital of France?"), model=MODEL)
    asked = chain.complete(user("what's the capital of France"), model=MODEL)
    assert len(judge.calls) == 1
    assert asked.cost_usd > 0
    assert asked.baseline_cost_usd - asked.cost_usd == pytest.approx(sum(s.usd for s in asked.savings))
    if reply == "yes":
        assert asked.served_by == "cache:semantic" and len(main.calls) == 1
        assert asked.cost_usd < asked.baseline_cost_usd
    else:
        assert asked.served_by == "target:main" and len(main.calls) == 2
    chain.close()


def test_the_llm_judge_is_off_by_default() -> None:
    cache = make_cache()
    assert "judge" not in cache.verifier.version if cache.verifier is not None else True
