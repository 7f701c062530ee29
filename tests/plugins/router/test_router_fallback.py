"""Fallbacks on each error kind through LiteLLMTarget against the fake OpenAI server; cooldowns; retries."""

from __future__ import annotations

import pytest
from conftest import ask
from costmw.adapters import Capabilities, LiteLLMTarget
from costmw.plugins import ModelRouter

from costmw import Chain, Ledger, TargetError
from costmw.testing import FakeOpenAIServer

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz123456"


def target(server: FakeOpenAIServer, name: str, window: int = 100_000, **kw: object) -> LiteLLMTarget:
    return LiteLLMTarget(f"openai/{name}-model", name=name, api_base=server.url, api_key=KEY, retries=0,
                         backoff=0.01, timeout=kw.pop("timeout", 5.0), price=(1.0, 2.0),  # type: ignore[arg-type]
                         capabilities=Capabilities(context_window=window), **kw)  # type: ignore[arg-type]


def models(server: FakeOpenAIServer) -> list[str]:
    return [r["model"].split("/")[-1] for r in server.chat_requests]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("status", "kind"), [
    (429, "RateLimitError"), (500, "ServerError"), (503, "ServerError"), (400, "ContextWindowError"),
])
def test_falls_back_on_each_error_kind(fake_openai: FakeOpenAIServer, status: int, kind: str) -> None:
    router = ModelRouter([target(fake_openai, "first", window=4000), target(fake_openai, "second")])
    chain = Chain([router], ledger=Ledger())
    fake_openai.fail_next(status)
    response = chain.complete(ask(), model="first")
    assert response.text == "echo: hello there" and response.served_by == "target:second"
    info = response.info["route"]
    assert info["chosen"] == "first" and info["served"] == "second" and info["fallback"] is True
    assert info["attempts"] == [{"target": "first", "error": kind}]
    assert info["rejected"] == {"first": f"failed: {kind}; fell back"}
    assert models(fake_openai) == ["first-model", "second-model"]
    assert chain.ledger.rows()[-1].info["route"]["attempts"][0]["error"] == kind


def test_falls_back_on_timeout(fake_openai: FakeOpenAIServer) -> None:
    router = ModelRouter([target(fake_openai, "first", timeout=0.3), target(fake_openai, "second")])
    chain = Chain([router])
    fake_openai.fail_next(500, delay=2.0)  # the answer comes too late: the client times out
    response = chain.complete(ask(), model="first")
    assert response.served_by == "target:second"
    assert response.info["route"]["attempts"] == [{"target": "first", "error": "TargetTimeout"}]


def test_context_window_error_skips_targets_no_larger(fake_openai: FakeOpenAIServer) -> None:
    small, same, large = (target(fake_openai, "small", 4000), target(fake_openai, "same", 4000),
                          target(fake_openai, "large", 32000))
    chain = Chain([ModelRouter([small, same, large])])
    fake_openai.fail_next(400)
    response = chain.complete(ask(), model="small")
    assert response.served_by == "target:large"
    assert response.info["route"]["attempts"] == [
        {"target": "small", "error": "ContextWindowError"},
        {"target": "same", "skipped": "context window 4000 <= 4000"}]
    assert models(fake_openai) == ["small-model", "large-model"]


def test_other_errors_are_not_retried_elsewhere(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain([ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")])])
    fake_openai.fail_next(401)
    with pytest.raises(TargetError) as info:
        chain.complete(ask(), model="first")
    assert not info.value.retryable
    assert models(fake_openai) == ["first-model"]


def test_fallback_off_and_everything_failing(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain([ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")], fallback=False)])
    fake_openai.fail_next(503)
    with pytest.raises(TargetError):
        chain.complete(ask(), model="first")
    chain = Chain([ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")])])
    fake_openai.fail_next(503, times=2)
    with pytest.raises(TargetError, match="second"):
        chain.complete(ask(), model="first")


def test_backoff_retries_the_same_target_first(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain([ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")],
                               retries=1, backoff=0.01)])
    fake_openai.fail_next(429)
    response = chain.complete(ask(), model="first")
    assert response.served_by == "target:first" and "attempts" not in response.info["route"]
    assert models(fake_openai) == ["first-model", "first-model"]


def test_cooldown_after_repeated_failures(fake_openai: FakeOpenAIServer) -> None:
    clock = Clock()
    router = ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")],
                         cooldown_after=2, cooldown_s=30, clock=clock)
    chain = Chain([router])
    for _ in range(2):  # each fault hits first; the fallback answers
        fake_openai.fail_next(500)
        assert chain.complete(ask(), model="first").served_by == "target:second"
    fake_openai.requests.clear()
    response = chain.complete(ask(), model="first")  # first cools down: not even tried
    assert response.served_by == "target:second"
    assert "cooling down" in response.info["route"]["rejected"]["first"]
    assert models(fake_openai) == ["second-model"]
    assert router.stats()["cooldowns"]["first"]["cooldown_s"] == pytest.approx(30.0)
    clock.now += 31
    fake_openai.requests.clear()
    assert chain.complete(ask(), model="first").served_by == "target:first"
    assert models(fake_openai) == ["first-model"]


def test_success_resets_the_failure_count(fake_openai: FakeOpenAIServer) -> None:
    router = ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")], cooldown_after=2)
    chain = Chain([router])
    fake_openai.fail_next(500)
    chain.complete(ask(), model="first")
    chain.complete(ask(), model="first")  # succeeds on first: its count starts over
    fake_openai.fail_next(500)
    chain.complete(ask(), model="first")
    assert router.cooldowns.remaining("first") == 0.0


def test_all_targets_cooling_are_still_tried(fake_openai: FakeOpenAIServer) -> None:
    clock = Clock()
    router = ModelRouter([target(fake_openai, "only")], cooldown_after=1, cooldown_s=60, clock=clock)
    chain = Chain([router])
    fake_openai.fail_next(503)
    with pytest.raises(TargetError):
        chain.complete(ask(), model="only")
    assert router.cooldowns.remaining("only") > 0
    assert chain.complete(ask(), model="only").served_by == "target:only"
    assert router.cooldowns.remaining("only") == 0.0


def test_stream_falls_back_before_the_first_chunk(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain([ModelRouter([target(fake_openai, "first"), target(fake_openai, "second")])])
    fake_openai.fail_next(503)
    chunks = list(chain.stream(ask(), model="first"))
    assert "".join(c.text for c in chunks if not c.done) == "echo: hello there"
    final = chunks[-1].response
    assert final is not None and final.served_by == "target:second"
    assert final.info["route"]["attempts"] == [{"target": "first", "error": "ServerError"}]
