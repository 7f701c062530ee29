"""CostmwMiddleware: a LangChain v1 agent whose every model call goes through a chain."""

from __future__ import annotations

from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget
from costmw.plugins import MemoryStore, SemanticCache
from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from costmw import Chain, ConfigError, Plugin, Request, Response
from costmw.integrations.langchain import CostmwChatModel, CostmwMiddleware, LangChainTarget, costmw_usage
from costmw.testing import FakeOpenAIServer

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in 'Paris'?"}]}


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."


KEY = "sk-fake-middleware-tests-000000000"


def _model(server: FakeOpenAIServer, name: str = "gpt-4o") -> ChatOpenAI:
    return ChatOpenAI(model=name, base_url=server.url, api_key=KEY, temperature=0)  # type: ignore[arg-type]


def _cached_chain(*plugins: Plugin) -> Chain:
    return Chain(plugins=[SemanticCache(store=MemoryStore(), embedder="hashing"), *plugins])


def _check_round_trip(messages: list[Any]) -> None:
    human, call, result, answer = messages
    assert isinstance(human, HumanMessage)
    assert isinstance(call, AIMessage) and call.tool_calls[0]["name"] == "get_weather"
    assert call.tool_calls[0]["args"] == {"city": "Paris"}
    assert isinstance(result, ToolMessage) and result.tool_call_id == call.tool_calls[0]["id"]
    assert result.content == "It is sunny in Paris."
    assert isinstance(answer, AIMessage) and answer.content == "The tool returned It is sunny in Paris.."


def test_agent_tool_calls_round_trip_and_the_second_run_is_served_from_cache(smart_openai: FakeOpenAIServer) -> None:
    chain = _cached_chain()
    agent = create_agent(_model(smart_openai), tools=[get_weather], middleware=[CostmwMiddleware(chain)])
    with costmw_usage() as first_usage:
        first = agent.invoke(QUESTION)
    _check_round_trip(first["messages"])
    assert len(smart_openai.chat_requests) == 2  # tool call, then the answer
    assert smart_openai.chat_requests[0]["tools"][0]["function"]["name"] == "get_weather"
    assert first_usage.by_served_by() == {"target:gpt-4o": 2} and first_usage.cost_usd > 0

    with costmw_usage() as second_usage:
        second = agent.invoke(QUESTION)
    _check_round_trip(second["messages"])
    assert len(smart_openai.chat_requests) == 2  # nothing new reached the model
    assert second_usage.by_served_by() == {"cache:exact": 2}
    assert second_usage.cost_usd == 0 and second_usage.saved_usd == pytest.approx(first_usage.cost_usd)
    costs = [m.response_metadata["costmw"]["served_by"] for m in second["messages"] if isinstance(m, AIMessage)]
    assert costs == ["cache:exact", "cache:exact"]
    assert [r.served_by for r in chain.ledger.rows()] == ["target:gpt-4o"] * 2 + ["cache:exact"] * 2

    # the agent's model is now a target of the chain, and direct calls through the chain reach it too
    direct = CostmwChatModel(chain=chain, model="gpt-4o").invoke("hi")
    assert direct.content == "Hello! You said: hi"
    assert direct.response_metadata["costmw"]["served_by"] == "target:gpt-4o"


async def test_async_agent_goes_through_the_chain(smart_openai: FakeOpenAIServer) -> None:
    chain = _cached_chain()
    agent = create_agent(_model(smart_openai), tools=[get_weather], middleware=[CostmwMiddleware(chain)])
    _check_round_trip((await agent.ainvoke(QUESTION))["messages"])
    with costmw_usage() as usage:
        _check_round_trip((await agent.ainvoke(QUESTION))["messages"])
    assert usage.by_served_by() == {"cache:exact": 2}
    assert len(smart_openai.chat_requests) == 2


class Route(Plugin):
    """A stand-in router: picks ``target`` for every call and notes the decision."""

    def __init__(self, target: str) -> None:
        self.target = target

    async def before(self, request: Request) -> Request | Response:
        request.context.target = request.context.chain.targets[self.target]
        request.context.info["route"] = {"chosen": self.target}
        return request


def test_the_router_overrides_the_agents_model_per_call(smart_openai: FakeOpenAIServer) -> None:
    chain = Chain(plugins=[Route("cheap")], targets=[LangChainTarget(_model(smart_openai, "gpt-4o-mini"),
                                                                     name="cheap")])
    agent = create_agent(_model(smart_openai), tools=[get_weather], middleware=[CostmwMiddleware(chain)])
    out = agent.invoke(QUESTION)
    _check_round_trip(out["messages"])
    assert [r["model"] for r in smart_openai.chat_requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    meta = out["messages"][-1].response_metadata["costmw"]
    assert meta["served_by"] == "target:cheap" and meta["route"] == {"chosen": "cheap"}
    assert meta["baseline_cost_usd"] > meta["cost_usd"] > 0  # priced as gpt-4o vs gpt-4o-mini


def test_a_non_langchain_target_answer_is_replayed_through_the_agent(smart_openai: FakeOpenAIServer) -> None:
    direct = LiteLLMTarget("openai/fake-direct", name="direct", api_base=smart_openai.url, api_key=KEY,
                           price=(0.1, 0.2), retries=0)
    chain = Chain(plugins=[Route("direct")], targets=[direct])
    agent = create_agent(_model(smart_openai), tools=[get_weather], middleware=[CostmwMiddleware(chain)])
    out = agent.invoke(QUESTION)
    _check_round_trip(out["messages"])
    assert [r["model"] for r in smart_openai.chat_requests] == ["fake-direct", "fake-direct"]
    assert smart_openai.chat_requests[0]["tools"][0]["function"]["name"] == "get_weather"
    chain.close()


class DropSystem(Plugin):
    """A stand-in minifier: removes the system message."""

    async def before(self, request: Request) -> Request | Response:
        return request.replace(messages=[m for m in request.messages if m["role"] != "system"])


def test_messages_changed_by_the_chain_are_what_the_agent_sends(smart_openai: FakeOpenAIServer) -> None:
    agent = create_agent(_model(smart_openai), tools=[get_weather], system_prompt="You are a weather bot.",
                         middleware=[CostmwMiddleware(Chain(plugins=[DropSystem()]))])
    _check_round_trip(agent.invoke(QUESTION)["messages"])
    assert all(m["role"] != "system" for r in smart_openai.chat_requests for m in r["messages"])
    plain = create_agent(_model(smart_openai), tools=[get_weather], system_prompt="You are a weather bot.",
                         middleware=[CostmwMiddleware(Chain())])
    plain.invoke(QUESTION)
    assert smart_openai.chat_requests[-1]["messages"][0] == {"role": "system", "content": "You are a weather bot."}


class Forecast(BaseModel):
    city: str
    summary: str


def test_structured_output_survives_a_cache_hit(smart_openai: FakeOpenAIServer) -> None:
    agent = create_agent(_model(smart_openai), tools=[], response_format=ToolStrategy(Forecast),
                         middleware=[CostmwMiddleware(_cached_chain())])
    question = {"messages": [{"role": "user", "content": "Forecast for 'Rome'"}]}
    first = agent.invoke(question)
    second = agent.invoke(question)
    assert first["structured_response"] == second["structured_response"]
    assert second["structured_response"].city == "Rome"
    assert len(smart_openai.chat_requests) == 1
    assert second["messages"][1].response_metadata["costmw"]["served_by"] == "cache:exact"


def test_the_agent_sees_its_own_model_errors(smart_openai: FakeOpenAIServer) -> None:
    import openai

    agent = create_agent(_model(smart_openai), tools=[get_weather], middleware=[CostmwMiddleware(Chain())])
    smart_openai.fail_next(400)
    with pytest.raises(openai.BadRequestError):
        agent.invoke(QUESTION)


def test_middleware_needs_a_chain() -> None:
    with pytest.raises(ConfigError, match="costmw.Chain"):
        CostmwMiddleware("chain")  # type: ignore[arg-type]
