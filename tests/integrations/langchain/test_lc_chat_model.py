"""CostmwChatModel: calls, streams, tools and structured output through a chain, and its numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import MemoryStore, SemanticCache
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import BaseModel

import costmw
from costmw import Chain, ConfigError, Plugin, Request, Response, TargetError
from costmw.integrations.langchain import CostmwChatModel, costmw_usage
from costmw.testing import FakeOpenAIServer


class PickTarget(Plugin):
    """A stand-in router: sends every call to one named target and notes the decision."""

    def __init__(self, name: str) -> None:
        self.target_name = name

    async def before(self, request: Request) -> Request | Response:
        chain = request.context.chain
        request.context.target = chain.targets[self.target_name]
        request.context.info["route"] = {"chosen": self.target_name, "reason": "test"}
        return request


def _echo_chain(*plugins: Plugin) -> tuple[Chain, MockTarget, MockTarget]:
    big = MockTarget(lambda r: f"big: {r.last_user_text}", name="big", price=(10.0, 30.0))
    small = MockTarget(lambda r: f"small: {r.last_user_text}", name="small", price=(0.1, 0.4))
    return Chain(plugins=list(plugins), targets=[big, small]), big, small


def test_invoke_reports_cost_baseline_served_by_and_route() -> None:
    chain, big, small = _echo_chain(PickTarget("small"))
    model = CostmwChatModel(chain=chain, model="big")
    message = model.invoke("hello there")
    assert isinstance(message, AIMessage)
    assert message.content == "small: hello there"
    meta = message.response_metadata["costmw"]
    assert meta["served_by"] == "target:small"
    assert meta["route"] == {"chosen": "small", "reason": "test"}
    usage = message.usage_metadata
    assert usage is not None and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert meta["cost_usd"] == pytest.approx((usage["input_tokens"] * 0.1 + usage["output_tokens"] * 0.4) / 1e6)
    assert meta["baseline_cost_usd"] == pytest.approx((usage["input_tokens"] * 10 + usage["output_tokens"] * 30) / 1e6)
    assert meta["saved_usd"] == pytest.approx(meta["baseline_cost_usd"] - meta["cost_usd"])
    assert len(big.calls) == 0 and len(small.calls) == 1
    assert chain.ledger.rows()[-1].requested_model == "big"


def test_per_call_model_override_options_and_metadata_reach_the_chain() -> None:
    chain, _big, small = _echo_chain()
    model = CostmwChatModel(chain=chain, model="big", request_options={"tenant": "acme"},
                            request_metadata={"team": "search"})
    message = model.invoke("hi", model="small", request_options={"tags": ["t"]}, request_metadata={"run": 3})
    assert message.response_metadata["model_name"] == "small"
    assert small.calls[0].options == costmw.Options(tenant="acme", tags=frozenset({"t"}))
    assert small.calls[0].metadata == {"team": "search", "run": 3}
    assert chain.ledger.rows()[-1].tenant == "acme"


def test_a_misspelt_request_option_is_refused() -> None:
    chain, _big, _small = _echo_chain()
    with pytest.raises(costmw.InvalidRequestError, match="did you mean 'no_cache'"):
        CostmwChatModel(chain=chain, model="big", request_options={"nocache": True}).invoke("hi")


def test_parameters_are_sent_and_none_values_are_not() -> None:
    chain, big, _ = _echo_chain()
    CostmwChatModel(chain=chain, model="big", temperature=0, max_tokens=7, stop=["x"],
                    model_kwargs={"top_p": 0.5}).invoke("hi")
    assert dict(big.calls[-1].params) == {"temperature": 0, "max_tokens": 7, "stop": ["x"], "top_p": 0.5}
    CostmwChatModel(chain=chain, model="big").invoke("hi", stop=["y"])
    assert dict(big.calls[-1].params) == {"stop": ["y"]}


async def test_async_batch_and_stream() -> None:
    chain, _, _ = _echo_chain()
    model = CostmwChatModel(chain=chain, model="big")
    assert (await model.ainvoke("a")).content == "big: a"
    assert [m.content for m in await model.abatch(["a", "b"])] == ["big: a", "big: b"]
    chunks = [c async for c in model.astream("c")]
    assert "".join(str(c.content) for c in chunks) == "big: c"
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].response_metadata["costmw"]["served_by"] == "target:big"
    assert sum(1 for c in chunks if c.usage_metadata) == 1


def test_streams_go_through_the_cache_and_hits_stream() -> None:
    cache = SemanticCache(store=MemoryStore(), embedder="hashing", stream_chunk_chars=4)
    chain, big, _ = _echo_chain(cache)
    model = CostmwChatModel(chain=chain, model="big")
    first = [c for c in model.stream("tell me a story")]
    assert first[-1].response_metadata["costmw"]["served_by"] == "target:big"
    again = list(model.stream("tell me a story"))
    text_chunks = [c for c in again if c.content]
    assert len(text_chunks) > 1  # a hit is streamed in pieces, not returned whole
    full: AIMessageChunk = again[0]
    for c in again[1:]:
        full = full + c
    assert full.content == "big: tell me a story"
    assert full.response_metadata["costmw"]["served_by"] == "cache:exact"
    assert full.response_metadata["costmw"]["savings"][0]["plugin"] == "semantic_cache"
    assert model.invoke("tell me a story").response_metadata["costmw"]["served_by"] == "cache:exact"
    assert len(big.calls) == 1


def _tool_reply(request: Request) -> dict[str, Any]:
    tools = request.params.get("tools") or []
    if not tools:
        return {"text": "plain"}
    name = tools[0]["function"]["name"]
    return {"text": "", "tool_calls": [{"id": "call_7", "type": "function",
                                        "function": {"name": name, "arguments": json.dumps({"a": 1, "b": 2})}}]}


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_bind_tools_sends_openai_tools_and_parses_tool_calls() -> None:
    target = MockTarget(_tool_reply, name="m")
    model = CostmwChatModel(chain=Chain(targets=[target]), model="m")
    message = model.bind_tools([add], tool_choice="any").invoke("add")
    assert message.tool_calls == [{"name": "add", "args": {"a": 1, "b": 2}, "id": "call_7", "type": "tool_call"}]
    params = target.calls[-1].params
    assert params["tools"][0]["function"]["name"] == "add"
    assert params["tool_choice"] == "required"
    model.bind_tools([add], tool_choice="add").invoke("add")
    assert target.calls[-1].params["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    with pytest.raises(ConfigError, match="names no bound tool"):
        model.bind_tools([add], tool_choice="subtract")
    streamed = None
    for chunk in model.bind_tools([add]).stream("add"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.tool_calls[0]["args"] == {"a": 1, "b": 2}


class Person(BaseModel):
    name: str
    age: int


def _structured_reply(request: Request) -> dict[str, Any]:
    fmt = request.params.get("response_format")
    if fmt is not None:
        return {"text": json.dumps({"name": "Ann", "age": 3})}
    return {"text": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": request.params["tool_choice"]["function"]["name"], "arguments": '{"name": "Bo", "age": 4}'}}]}


@pytest.mark.parametrize(("method", "expected"), [
    ("function_calling", Person(name="Bo", age=4)),
    ("json_schema", Person(name="Ann", age=3)),
    ("json_mode", Person(name="Ann", age=3)),
])
def test_with_structured_output(method: str, expected: Person) -> None:
    target = MockTarget(_structured_reply, name="m")
    model = CostmwChatModel(chain=Chain(targets=[target]), model="m")
    assert model.with_structured_output(Person, method=method).invoke("who?") == expected  # type: ignore[arg-type]
    raw = model.with_structured_output(Person, method=method, include_raw=True).invoke("who?")  # type: ignore[arg-type]
    assert raw["parsed"] == expected and isinstance(raw["raw"], AIMessage)
    if method == "json_schema":
        fmt = target.calls[-1].params["response_format"]
        assert fmt["json_schema"]["schema"]["required"] == ["name", "age"]
    with pytest.raises(ConfigError, match="method"):
        model.with_structured_output(Person, method="xml")  # type: ignore[arg-type]


def test_target_failures_reach_the_app_as_costmw_errors() -> None:
    def broken(request: Request) -> str:
        raise RuntimeError("backend down")

    model = CostmwChatModel(chain=Chain(targets=[MockTarget(broken, name="m")]), model="m")
    with pytest.raises(TargetError, match="backend down"):
        model.invoke("hi")


def test_bad_configuration_fails_fast() -> None:
    with pytest.raises(ConfigError, match="model="):
        CostmwChatModel()
    with pytest.raises(ConfigError, match="costmw.Chain"):
        CostmwChatModel(chain=object(), model="m")
    with pytest.raises(ConfigError, match="max_tokens"):
        CostmwChatModel(model="m", max_tokens=0)
    chain = Chain(targets=[MockTarget(name="only")])
    assert CostmwChatModel(chain=chain).model_name == "only"


def test_without_a_chain_it_builds_one_around_a_litellm_target(smart_openai: FakeOpenAIServer,
                                                                fake_key: str) -> None:
    model = CostmwChatModel(model="openai/fake-own", base_url=smart_openai.url, api_key=fake_key, temperature=0)
    assert fake_key not in repr(model) and fake_key not in json.dumps(model.model_dump(), default=str)
    message = model.invoke("hi")
    assert message.content == "Hello! You said: hi"
    assert message.response_metadata["costmw"]["served_by"] == "target:openai/fake-own"
    assert smart_openai.chat_requests[-1]["model"] == "fake-own"
    assert model.get_chain() is model.get_chain()
    model.get_chain().close()


def test_costmw_usage_collects_every_call_once() -> None:
    chain, _, _ = _echo_chain(PickTarget("small"))
    model = CostmwChatModel(chain=chain, model="big")
    with costmw_usage() as usage:
        model.invoke("a")
        list(model.stream("b"))
        model.batch(["c", "d"])
    model.invoke("outside")
    assert usage.calls == 4
    rows = chain.ledger.rows()[:4]
    assert usage.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))
    assert usage.baseline_cost_usd == pytest.approx(sum(r.baseline_cost_usd for r in rows))
    assert usage.saved_usd > 0 and 0 < usage.saved_pct <= 100
    assert usage.by_served_by() == {"target:small": 4}
    assert usage.summary()["prompt_tokens"] == sum(r.prompt_tokens for r in rows)
