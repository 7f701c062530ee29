"""LangChain's own standard integration tests (langchain-tests) for CostmwChatModel.

The chain's targets are LiteLLM targets pointed at the local fake OpenAI-compatible server,
whose responder follows each request's tools, JSON schemas, stop sequences and token limit.
Tests that need a modality the fake server cannot produce (image, audio, PDF inputs fetched
from the web, audio/reasoning/cache token details) stay off through the suite's own
``supports_*`` switches, each of which skips with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget
from langchain_tests.integration_tests import ChatModelIntegrationTests

from costmw import Chain
from costmw.integrations.langchain import CostmwChatModel
from costmw.testing import FakeOpenAIServer


class TestCostmwChatModelIntegration(ChatModelIntegrationTests):
    chain: Chain

    @pytest.fixture(autouse=True)
    def _chain(self, smart_openai_shared: FakeOpenAIServer, fake_key: str) -> Iterator[None]:
        targets = [LiteLLMTarget(f"openai/{name}", name=name, api_base=smart_openai_shared.url, api_key=fake_key,
                                 price=(1.0, 2.0), retries=0) for name in ("fake-a", "fake-b")]
        self.chain = Chain(targets=targets)
        yield
        self.chain.close()

    @property
    def chat_model_class(self) -> type[CostmwChatModel]:
        return CostmwChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"chain": self.chain, "model": "fake-a"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "fake-b"
