"""wrap(): an existing LangChain chat model behind a chain, used exactly as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import MemoryStore, SemanticCache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from costmw import Chain, ConfigError
from costmw.integrations.langchain import CostmwChatModel, LangChainTarget, wrap
from costmw.testing import FakeOpenAIServer


@pytest.fixture
def chat_openai(smart_openai: FakeOpenAIServer, fake_key: str) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", base_url=smart_openai.url, api_key=fake_key, temperature=0)  # type: ignore[arg-type]


@pytest.fixture
def cache() -> Iterator[SemanticCache]:
    yield SemanticCache(store=MemoryStore(), embedder="hashing")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_one_line_puts_the_chain_around_an_lcel_chain(chat_openai: ChatOpenAI, cache: SemanticCache,
                                                      smart_openai: FakeOpenAIServer) -> None:
    model = wrap(chat_openai, plugins=[cache])
    app = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | model
    first = app.invoke({"q": "What is 'Paris'?"})
    assert first.content == "Hello! You said: What is 'Paris'?"
    meta = first.response_metadata["costmw"]
    assert meta["served_by"] == "target:gpt-4o-mini" and meta["cost_usd"] > 0  # priced from LiteLLM's map
    second = app.invoke({"q": "What is 'Paris'?"})
    assert second.content == first.content
    assert second.response_metadata["costmw"]["served_by"] == "cache:exact"
    assert second.response_metadata["costmw"]["saved_usd"] == pytest.approx(meta["cost_usd"])
    assert len(smart_openai.chat_requests) == 1
    sent = smart_openai.chat_requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_wrapped_tools_streams_and_structured_output(chat_openai: ChatOpenAI,
                                                     smart_openai: FakeOpenAIServer) -> None:
    model = wrap(chat_openai, plugins=[])
    call = model.bind_tools([add], tool_choice="any").invoke("add 4 and 5")
    assert call.tool_calls[0]["name"] == "add" and call.tool_calls[0]["args"] == {"a": 4, "b": 5}
    assert smart_openai.chat_requests[-1]["tool_choice"] == "required"
    chunks = list(model.stream("stream this", stop=["this"]))
    assert "".join(str(c.content) for c in chunks) == "Hello! You said: stream "
    assert smart_openai.chat_requests[-1]["stop"] == ["this"] and smart_openai.chat_requests[-1]["stream"]

    class City(BaseModel):
        name: str
        population: int

    city = model.with_structured_output(City).invoke("'Oslo' has 700000 people")
    assert city == City(name="Oslo", population=700000)


async def test_wrapped_async_and_async_stream(chat_openai: ChatOpenAI, cache: SemanticCache) -> None:
    model = wrap(chat_openai, plugins=[cache])
    first = await model.ainvoke("hi")
    streamed = [c async for c in model.astream("hi")]
    assert "".join(str(c.content) for c in streamed) == first.content
    assert streamed[-1].response_metadata["costmw"]["served_by"] == "cache:exact"


def test_wrap_into_an_existing_chain_keeps_its_targets() -> None:
    chain = Chain(targets=[MockTarget(name="other")])
    fake = GenericFakeChatModel(messages=iter([AIMessage("from the fake model")]))
    model = wrap(fake, chain, name="fake", price=(1.0, 2.0))
    assert isinstance(model, CostmwChatModel) and model.model_name == "fake"
    assert isinstance(chain.targets["fake"], LangChainTarget) and "other" in chain.targets
    message = model.invoke("hello")
    assert message.content == "from the fake model"
    assert message.response_metadata["costmw"]["served_by"] == "target:fake"
    with pytest.raises(ConfigError, match="already in this chain"):
        wrap(GenericFakeChatModel(messages=iter([])), chain, name="fake")


def test_wrap_refuses_what_it_cannot_wrap(chat_openai: ChatOpenAI) -> None:
    with pytest.raises(ConfigError, match="BaseChatModel"):
        wrap("gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not both"):
        wrap(chat_openai, Chain(), plugins=[])
    with pytest.raises(ConfigError, match="already goes through costmw"):
        wrap(wrap(chat_openai, plugins=[]))


def test_a_model_that_reports_no_usage_saves_nothing_by_itself() -> None:
    from langchain_core.language_models import FakeListChatModel

    model = wrap(FakeListChatModel(responses=["An answer of a few words."]), plugins=[], price=(2.5, 10))
    reply = model.invoke("What is a hash map?")
    meta = reply.response_metadata["costmw"]
    assert meta["cost_usd"] > 0 and meta["saved_usd"] == 0
    assert model.chain.report()["saved_pct"] == 0
