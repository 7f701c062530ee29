"""OpenAICompatibleTarget against the fake OpenAI-compatible server (real HTTP)."""

from __future__ import annotations

import pytest
from costmw.adapters import OpenAICompatibleTarget

from costmw import Chain, ContextWindowError, RateLimitError, ServerError
from costmw.testing import FakeOpenAIServer

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz123456"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def target(server: FakeOpenAIServer, **kw: object) -> OpenAICompatibleTarget:
    return OpenAICompatibleTarget("gpt-4o-mini", api_base=server.url, api_key=KEY, backoff=0.01, **kw)  # type: ignore[arg-type]


def test_a_call_returns_text_usage_and_a_priced_response(fake_openai: FakeOpenAIServer) -> None:
    with Chain(targets=[target(fake_openai)]) as chain:
        r = chain.complete([{"role": "user", "content": "hello there"}], model="gpt-4o-mini", temperature=0)
    assert r.text == "echo: hello there"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.cost_usd > 0 and r.served_by == "target:gpt-4o-mini"
    sent = fake_openai.chat_requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0


def test_stream_and_tools(fake_openai: FakeOpenAIServer) -> None:
    with Chain(targets=[target(fake_openai)]) as chain:
        chunks = list(chain.stream([{"role": "user", "content": "stream me"}], model="gpt-4o-mini"))
        assert "".join(c.text for c in chunks) == "echo: stream me"
        final = chunks[-1].response
        assert final is not None and final.usage.completion_tokens > 0
        r = chain.complete([{"role": "user", "content": "weather?"}], model="gpt-4o-mini", tools=TOOLS)
    assert r.tool_calls and r.tool_calls[0]["function"]["name"] == "get_weather"


def test_the_key_is_sent_but_never_shown(fake_openai: FakeOpenAIServer) -> None:
    t = target(fake_openai)
    assert KEY not in repr(t) and KEY not in str(vars(t).get("headers"))


def test_rate_limits_and_5xx_are_retried_then_mapped(fake_openai: FakeOpenAIServer) -> None:
    with Chain(targets=[target(fake_openai, retries=1)]) as chain:
        fake_openai.fail_next(429, times=1)
        assert chain.complete([{"role": "user", "content": "again"}], model="gpt-4o-mini").text == "echo: again"
        fake_openai.fail_next(429, times=2)
        with pytest.raises(RateLimitError):
            chain.complete([{"role": "user", "content": "x"}], model="gpt-4o-mini")
        fake_openai.fail_next(503, times=2)
        with pytest.raises(ServerError):
            chain.complete([{"role": "user", "content": "y"}], model="gpt-4o-mini")
        fake_openai.fail_next(400, times=1)
        with pytest.raises(ContextWindowError):
            chain.complete([{"role": "user", "content": "z"}], model="gpt-4o-mini")


def test_bad_settings_fail_fast() -> None:
    with pytest.raises(ValueError, match="api_base"):
        OpenAICompatibleTarget("m", api_base="localhost:8000")
    with pytest.raises(ValueError, match="retries"):
        OpenAICompatibleTarget("m", api_base="http://127.0.0.1:1/v1", retries=-1)


def test_from_config(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain.from_config({"targets": [{"kind": "openai", "model": "gpt-4o-mini", "api_base": fake_openai.url,
                                            "api_key": KEY}]})
    with chain:
        assert chain.complete([{"role": "user", "content": "cfg"}], model="gpt-4o-mini").text == "echo: cfg"


class _Body:
    """A response body arriving in pieces cut anywhere (as aiohttp hands them over)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.parts = [data[i:i + size] for i in range(0, len(data), size)]

    async def iter_any(self):  # type: ignore[no-untyped-def]
        for part in self.parts:
            yield part


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
async def test_stream_lines_of_any_length_and_either_line_ending(size: int) -> None:
    from costmw.adapters._openai_http import _lines

    long = b"data: " + b"x" * 200_000  # longer than aiohttp's own readline limit (64 KiB)
    data = b"data: {\"a\": 1}\r\n\r\n" + long + b"\n\ndata: [DONE]"
    got = [line async for line in _lines(_Body(data, size))]
    assert got == [b'data: {"a": 1}', b"", long, b"", b"data: [DONE]"]


async def test_one_session_per_event_loop_closed_by_aclose(fake_openai: FakeOpenAIServer) -> None:
    t = target(fake_openai)
    chain = Chain(targets=[t])
    first = await chain.acomplete([{"role": "user", "content": "one"}], model="gpt-4o-mini")
    second = await chain.acomplete([{"role": "user", "content": "two"}], model="gpt-4o-mini")
    assert (first.text, second.text) == ("echo: one", "echo: two")
    sessions = [s for _, s in t._clients.values()]
    assert len(sessions) == 1 and not sessions[0].closed
    await chain.aclose()
    assert sessions[0].closed and not t._clients
