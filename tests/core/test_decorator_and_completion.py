from __future__ import annotations

from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget

import costmw
from costmw import Chain, Plugin, Request, Response
from costmw.testing import FakeOpenAIServer


class Upper(Plugin):
    async def after(self, request: Request, response: Response) -> Response:
        response.text = response.text.upper()
        return response


def test_optimize_called_with_a_chain() -> None:
    chain = Chain(plugins=[Upper()])
    seen: list[dict[str, Any]] = []

    @costmw.optimize(chain, model="gpt-4o-mini")
    def ask(messages: list[dict[str, Any]], **params: Any) -> str:
        """Ask my model."""
        seen.append(params)
        return "answer to " + messages[-1]["content"]

    assert ask([{"role": "user", "content": "q"}], temperature=0) == "ANSWER TO Q"
    assert seen == [{"temperature": 0}]
    assert ask.__name__ == "ask" and ask.__doc__ == "Ask my model."
    row = chain.ledger.rows()[0]
    assert row.requested_model == "gpt-4o-mini" and row.cost_usd > 0


async def test_optimize_async_function() -> None:
    chain = Chain(plugins=[Upper()])

    @costmw.optimize(chain)
    async def ask(messages: list[dict[str, Any]]) -> str:
        return "async " + messages[-1]["content"]

    assert await ask([{"role": "user", "content": "q"}]) == "ASYNC Q"


def test_optimize_bare_uses_the_default_chain() -> None:
    costmw.set_default_chain(Chain(plugins=[Upper()]))
    try:
        @costmw.optimize
        def ask(messages: list[dict[str, Any]]) -> str:
            return "bare"

        assert ask([{"role": "user", "content": "q"}]) == "BARE"
    finally:
        costmw.set_default_chain(None)


def test_optimize_rejects_non_chain() -> None:
    with pytest.raises(TypeError, match="costmw.Chain"):
        costmw.optimize("chain")  # type: ignore[call-overload]


def test_completion_is_a_litellm_drop_in(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[LiteLLMTarget("openai/gpt-4o-mini", api_base=fake_openai.url, api_key="sk-x")])
    out = costmw.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hey"}], chain=chain)
    assert out.choices[0].message.content == "echo: hey"
    assert out.usage.total_tokens > 0
    assert out._hidden_params["costmw"]["served_by"] == "target:openai/gpt-4o-mini"
    chunks = list(costmw.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "s"}],
                                    chain=chain, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: s"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens > 0
    assert chunks[-1]._hidden_params["costmw"]["served_by"] == "target:openai/gpt-4o-mini"


async def test_acompletion_streams_litellm_chunks(fake_openai: FakeOpenAIServer) -> None:
    chain = Chain(targets=[LiteLLMTarget("openai/gpt-4o-mini", api_base=fake_openai.url, api_key="sk-x")])
    stream = await costmw.acompletion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "a"}],
                                      chain=chain, stream=True)
    text = [c.choices[0].delta.content async for c in stream]
    assert "".join(t or "" for t in text) == "echo: a"


def test_optimize_calls_the_function_even_when_the_chain_has_a_router() -> None:
    from costmw.adapters import MockTarget
    from costmw.plugins import ModelRouter

    cheap = MockTarget(lambda r: "cheap", name="cheap", price=(0.01, 0.01))
    chain = Chain(plugins=[ModelRouter(targets=[cheap], strategy="cheapest")], targets=[cheap])

    @costmw.optimize(chain, model="gpt-4o", price=(2.5, 10))
    def ask(messages: list[dict[str, Any]]) -> str:
        return "mine"

    assert ask([{"role": "user", "content": "q"}]) == "mine" and cheap.calls == []
    [row] = chain.ledger.rows()
    assert row.served_by.startswith("target:fn:") and row.savings == {}


def test_default_chain_creates_litellm_targets(fake_openai: FakeOpenAIServer) -> None:
    costmw.set_default_chain(None)
    try:
        chain = costmw.default_chain()
        assert chain.auto_targets
        request = Request.create([{"role": "user", "content": "x"}], "openai/some-model")
        target = chain.target_for(request)
        assert isinstance(target, LiteLLMTarget) and target.model == "openai/some-model"
    finally:
        costmw.set_default_chain(None)
