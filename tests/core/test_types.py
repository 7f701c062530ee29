from __future__ import annotations

import dataclasses

import pytest

from costmw import InvalidRequestError, Request
from costmw._types import Chunk, join_chunks


def test_request_is_immutable_and_replace_keeps_id_and_context() -> None:
    r = Request.create([{"role": "user", "content": "hi"}], "gpt-4o", params={"temperature": 0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.model = "other"  # type: ignore[misc]
    r2 = r.replace(model="gpt-4o-mini", messages=[{"role": "user", "content": "yo"}])
    assert r.model == "gpt-4o" and r2.model == "gpt-4o-mini"
    assert r2.id == r.id and r2.context is r.context
    assert isinstance(r2.messages, tuple)
    assert r.messages[0]["content"] == "hi"


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ("hello", "must be a list"),
        ([], "empty"),
        ([{"role": "wizard", "content": "x"}], "unknown role 'wizard'"),
        ([{"role": "user"}], "has no content"),
        ([{"role": "user", "content": 5}], "content must be a string"),
        ([{"role": "tool", "content": "42"}], "tool_call_id"),
        (["hi"], "must be a dict"),
    ],
)
def test_bad_messages_fail_with_a_clear_error(messages: object, fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        Request.create(messages, "gpt-4o")


def test_missing_model() -> None:
    with pytest.raises(InvalidRequestError, match="model is required"):
        Request.create([{"role": "user", "content": "hi"}], None)


def test_tenant_and_last_user_text() -> None:
    r = Request.create(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
         {"role": "assistant", "content": "b"}],
        "m", options={"tenant": "acme", "user": "7"},
    )
    assert r.tenant == "acme"
    assert r.last_user_text == "a"


def test_a_user_never_stands_in_for_the_tenant() -> None:
    r = Request.create([{"role": "user", "content": "a"}], "m", options={"user": "42"})
    assert r.tenant is None and r.options.user == "42"


def test_join_chunks_assembles_tool_call_deltas() -> None:
    chunks = [
        Chunk(text="he"), Chunk(text="llo"),
        Chunk(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "get_", "arguments": ""}}]),
        Chunk(tool_calls=[{"index": 0, "function": {"name": "weather", "arguments": '{"city": '}}]),
        Chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Oslo"}'}}]),
    ]
    text, calls = join_chunks(chunks)
    assert text == "hello"
    assert calls == [{"id": "c1", "type": "function",
                      "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
