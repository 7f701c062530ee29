"""Fixtures for the router tests: priced mock targets, and a chain builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from costmw.adapters import Capabilities, MockTarget

from costmw import Chain, Ledger, Plugin

USER = "hello there"


def ask(text: str = USER) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def cheap() -> MockTarget:
    return MockTarget(lambda r: f"cheap: {r.last_user_text}", name="cheap", price=(0.1, 0.4),
                      capabilities=Capabilities(tools=False, json_mode=True, context_window=50))


@pytest.fixture
def mid() -> MockTarget:
    return MockTarget(lambda r: f"mid: {r.last_user_text}", name="mid", price=(1.0, 4.0),
                      capabilities=Capabilities(tools=True, json_mode=False, context_window=500))


@pytest.fixture
def strong() -> MockTarget:
    return MockTarget(lambda r: f"strong: {r.last_user_text}", name="strong", price=(10.0, 30.0),
                      capabilities=Capabilities(tools=True, json_mode=True, context_window=5000))


@pytest.fixture
def make_chain() -> Callable[..., Chain]:
    def build(*plugins: Plugin, store_text: bool = False, **kw: Any) -> Chain:
        return Chain(list(plugins), ledger=Ledger(store_text=store_text), **kw)

    return build
