"""Fixtures for the LangChain integration: a fake OpenAI server that answers like a cooperative model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from costmw.testing import FakeOpenAIServer
from costmw.testing._responders import schema_responder

FAKE_KEY = "sk-fake-langchain-tests-0000000000"


@pytest.fixture
def fake_key() -> str:
    """An API key shaped like a real one, for clients that insist on a key (never a real secret)."""
    return FAKE_KEY


@pytest.fixture
def smart_openai() -> Iterator[FakeOpenAIServer]:
    """A FakeOpenAIServer whose answers follow the request's tools, schemas, stop and max_tokens."""
    with FakeOpenAIServer(responder=schema_responder) as server:
        yield server


@pytest.fixture(scope="module")
def smart_openai_shared() -> Iterator[FakeOpenAIServer]:
    """One such server for a whole test module (stopping a server takes half a second)."""
    with FakeOpenAIServer(responder=schema_responder) as server:
        yield server
