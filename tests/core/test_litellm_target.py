"""End to end through LiteLLMTarget against the fake OpenAI-compatible server (real HTTP)."""

from __future__ import annotations

import json
import logging

import pytest
from costmw.adapters import LiteLLMTarget, forbid_paid_calls

from costmw import AuthenticationError, Chain, Ledger, PermissionDeniedError, RateLimitError, ServerError
from costmw.testing import FakeOpenAIServer

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz123456"
USER = [{"role": "user", "content": "hello world"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def target(server: FakeOpenAIServer, **kw: object) -> LiteLLMTarget:
    return LiteLLMTarget("openai/gpt-4o-mini", api_base=server.url, api_key=KEY, backoff=0.01, **kw)  # type: ignore[arg-type]


def test_plain_call(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[target(fake_openai)])
    r = chain.complete(USER, model="gpt-4o", temperature=0, max_tokens=20)
    assert r.text == "echo: hello world"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.served_by == "target:openai/gpt-4o-mini"
    assert 0 < r.cost_usd < r.baseline_cost_usd
    sent = fake_openai.chat_requests[0]
    assert sent["temperature"] == 0 and sent["max_tokens"] == 20


def test_streamed_call(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[target(fake_openai)])
    chunks = list(chain.stream(USER, model="gpt-4o"))
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks if not c.done) == "echo: hello world"
    final = chunks[-1].response
    assert final is not None and final.text == "echo: hello world" and final.usage.completion_tokens > 0


def test_tool_calls_plain_and_streamed(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[target(fake_openai)])
    r = chain.complete([{"role": "user", "content": "weather in Oslo?"}], model="gpt-4o", tools=TOOLS)
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls and r.tool_calls[0]["function"]["name"] == "get_weather"
    assert json.loads(r.tool_calls[0]["function"]["arguments"]) == {"city": 1}
    assert fake_openai.chat_requests[0]["tools"] == TOOLS
    final = list(chain.stream([{"role": "user", "content": "weather?"}], model="gpt-4o", tools=TOOLS))[-1].response
    assert final is not None and final.tool_calls and final.tool_calls[0]["function"]["name"] == "get_weather"
    follow = [{"role": "user", "content": "weather?"}, r.message(),
              {"role": "tool", "tool_call_id": r.tool_calls[0]["id"], "content": "sunny"}]
    assert chain.complete(follow, model="gpt-4o", tools=TOOLS).text == "The tool said: sunny"


def test_rate_limit_then_success(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(429)
    chain = Chain(targets=[target(fake_openai, retries=2)])
    assert chain.complete(USER, model="gpt-4o").text == "echo: hello world"
    assert len(fake_openai.chat_requests) == 2


def test_rate_limit_exhausts_retries(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(429, times=3)
    chain = Chain(targets=[target(fake_openai, retries=1)])
    with pytest.raises(RateLimitError):
        chain.complete(USER, model="gpt-4o")


def test_server_error_falls_back_to_next_target(fake_openai: FakeOpenAIServer) -> None:
    with FakeOpenAIServer(lambda body: "from the fallback") as backup:
        fake_openai.fail_next(500, times=5)
        fallback = LiteLLMTarget("openai/gpt-4o", api_base=backup.url, api_key=KEY, retries=0)
        chain = Chain(targets=[target(fake_openai, retries=1, fallbacks=[fallback])])
        r = chain.complete(USER, model="gpt-4o")
        assert r.text == "from the fallback"
        assert r.info.get("fallback_from") == "openai/gpt-4o-mini"
        assert len(fake_openai.chat_requests) == 2


def test_server_error_without_fallback(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(503, times=5)
    chain = Chain(targets=[target(fake_openai, retries=0)])
    with pytest.raises(ServerError):
        chain.complete(USER, model="gpt-4o")


def test_api_key_never_leaks(fake_openai: FakeOpenAIServer, tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ledger = Ledger(tmp_path / "l.db", store_text=True)  # type: ignore[operator]
    t = target(fake_openai)
    chain = Chain(targets=[t], ledger=ledger)
    fake_openai.fail_next(401)
    with pytest.raises(Exception) as info:
        chain.complete(USER, model="gpt-4o")
    chain.complete([{"role": "user", "content": f"my key is {KEY}"}], model="gpt-4o")
    assert KEY not in repr(t) and KEY not in repr(chain) and KEY not in str(info.value)
    dump = json.dumps(ledger.to_dicts())
    assert KEY not in dump and "[REDACTED]" in dump
    assert KEY not in caplog.text


def test_forbid_paid_calls_blocks_remote_but_not_local(fake_openai: FakeOpenAIServer) -> None:
    with forbid_paid_calls():
        remote = Chain(targets=[LiteLLMTarget("gpt-4o", api_key=KEY, retries=0)])
        with pytest.raises(Exception, match="paid call"):
            remote.complete(USER, model="gpt-4o")
        assert Chain(targets=[target(fake_openai)]).complete(USER, model="gpt-4o").text


def test_token_logprobs_reach_the_response(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[target(fake_openai)])
    r = chain.complete(USER, model="gpt-4o", logprobs=True)
    assert fake_openai.chat_requests[0]["logprobs"] is True
    assert r.logprobs is not None and "".join(t["token"] for t in r.logprobs) == r.text
    assert all(t["logprob"] == pytest.approx(-0.2231, abs=1e-3) for t in r.logprobs)
    assert chain.complete(USER, model="gpt-4o").logprobs is None


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (403, PermissionDeniedError)])
def test_authentication_and_permission_errors_are_never_retried(fake_openai: FakeOpenAIServer, status: int,
                                                                  error: type[Exception]) -> None:
    fake_openai.fail_next(status, times=3)
    chain = Chain(targets=[target(fake_openai, retries=2)])
    with pytest.raises(error) as caught:
        chain.complete(USER, model="gpt-4o")
    assert not caught.value.retryable  # type: ignore[attr-defined]
    assert len(fake_openai.chat_requests) == 1


def test_a_missing_api_key_is_an_authentication_error(fake_openai: FakeOpenAIServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chain = Chain(targets=[LiteLLMTarget("openai/gpt-4o-mini", api_base=fake_openai.url, retries=2, backoff=0.01)])
    with pytest.raises(AuthenticationError, match="(?i)api_key|credentials"):
        chain.complete(USER, model="gpt-4o")
    assert fake_openai.chat_requests == []
    [row] = chain.ledger.rows()
    assert row.status == "error" and "AuthenticationError" in (row.error or "")
