"""Test doubles that ship with costmw: a mock target, a fake OpenAI-compatible server, and a
switch that forbids paid calls."""

from __future__ import annotations

from costmw.adapters import MockTarget, forbid_paid_calls

from ._fake_batches import FakeBatchAPI, install_batch_routes
from ._fake_openai import FakeOpenAIServer, Reply
from ._responders import example_for_schema, schema_responder

__all__ = [
    "FakeBatchAPI",
    "FakeOpenAIServer",
    "MockTarget",
    "Reply",
    "example_for_schema",
    "forbid_paid_calls",
    "install_batch_routes",
    "schema_responder",
]
