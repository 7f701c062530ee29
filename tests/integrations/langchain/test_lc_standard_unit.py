"""LangChain's own standard unit tests (langchain-tests) for CostmwChatModel."""

from __future__ import annotations

from typing import Any

from costmw.adapters import MockTarget
from langchain_tests.unit_tests import ChatModelUnitTests

from costmw import Chain
from costmw.integrations.langchain import CostmwChatModel

_CHAIN = Chain(targets=[MockTarget(name="fake-a")])


class TestCostmwChatModelUnit(ChatModelUnitTests):
    """A chain given explicitly."""

    @property
    def chat_model_class(self) -> type[CostmwChatModel]:
        return CostmwChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"chain": _CHAIN, "model": "fake-a"}

    @property
    def model_override_value(self) -> str:
        return "fake-b"


class TestCostmwChatModelOwnChainUnit(ChatModelUnitTests):
    """No chain given: the model builds its own chain around a LiteLLM target on first use."""

    @property
    def chat_model_class(self) -> type[CostmwChatModel]:
        return CostmwChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-4o-mini"}
