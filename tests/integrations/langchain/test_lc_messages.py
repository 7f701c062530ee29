"""Conversions between LangChain messages and costmw's OpenAI-format messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from costmw import InvalidRequestError, Request
from costmw.integrations.langchain import from_openai_messages, to_openai_messages


def test_roles_names_tool_calls_and_ids_survive_a_round_trip() -> None:
    messages = [
        SystemMessage("be brief"),
        HumanMessage("add 1 and 2", name="ann"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "call_1", "type": "tool_call"}],
                  name="bot"),
        ToolMessage("3", tool_call_id="call_1", name="add"),
        FunctionMessage("ok", name="legacy"),
        AIMessage("the answer is 3"),
    ]
    wire = to_openai_messages(messages)
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "tool", "function", "assistant"]
    assert wire[1]["name"] == "ann"
    assert wire[2]["tool_calls"] == [{"id": "call_1", "type": "function",
                                      "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 2})}}]
    assert wire[3]["tool_call_id"] == "call_1" and wire[3]["name"] == "add"
    Request.create(wire, "m")  # a valid costmw request

    back = from_openai_messages(wire)
    assert [type(m) for m in back] == [type(m) for m in messages]
    assert back[2].tool_calls == messages[2].tool_calls  # type: ignore[attr-defined]
    assert back[3].tool_call_id == "call_1"  # type: ignore[attr-defined]
    assert [m.name for m in back] == [m.name for m in messages]
    assert to_openai_messages(back) == wire


def test_developer_role_round_trips() -> None:
    wire = [{"role": "developer", "content": "rules"}, {"role": "user", "content": "hi"}]
    back = from_openai_messages(wire)
    assert isinstance(back[0], SystemMessage)
    assert to_openai_messages(back) == wire
    assert to_openai_messages([ChatMessage("rules", role="developer")])[0]["role"] == "developer"


def test_openai_content_parts_pass_through_and_standard_blocks_become_openai_parts() -> None:
    openai_parts = [{"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}]
    standard = [
        {"type": "image", "base64": "QUJD", "mime_type": "image/png"},
        {"type": "image", "url": "https://example.com/dog.png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "REVG"}},
        {"type": "audio", "base64": "UklG", "mime_type": "audio/wav"},
        {"type": "file", "base64": "JVBE", "mime_type": "application/pdf", "filename": "a.pdf"},
        {"type": "file", "file_id": "file-123"},
    ]
    wire = to_openai_messages([HumanMessage(openai_parts), HumanMessage(standard)])
    assert wire[0]["content"] == openai_parts
    assert wire[1]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,REVG"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file-123"}},
    ]
    assert from_openai_messages(wire)[0].content == openai_parts


def test_assistant_tool_use_blocks_become_tool_calls_and_reasoning_is_dropped() -> None:
    ai = AIMessage([{"type": "thinking", "thinking": "hmm", "signature": "x"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}])
    wire = to_openai_messages([HumanMessage("go"), ai])[1]
    assert wire["content"] == [{"type": "text", "text": "calling"}]
    assert wire["tool_calls"][0]["id"] == "t1"
    assert json.loads(wire["tool_calls"][0]["function"]["arguments"]) == {"x": 1}


def test_invalid_tool_calls_are_kept_and_bad_arguments_come_back_invalid() -> None:
    ai = AIMessage("", invalid_tool_calls=[{"name": "f", "args": "{not json", "id": "c9", "error": "bad",
                                            "type": "invalid_tool_call"}])
    wire = to_openai_messages([ai])[0]
    assert wire["tool_calls"][0]["function"]["arguments"] == "{not json"
    back = from_openai_messages([wire])[0]
    assert isinstance(back, AIMessage)
    assert back.tool_calls == [] and back.invalid_tool_calls[0]["id"] == "c9"


@pytest.mark.parametrize(("message", "words"), [
    (HumanMessage([{"type": "text", "text": "a"}, {"type": "hologram", "data": 1}]),
     ["messages[0].content[1]", "hologram"]),
    (HumanMessage([{"type": "image", "file_id": "f1"}]), ["messages[0].content[0]", "image"]),
    (HumanMessage([{"type": "audio", "url": "https://x/a.wav"}]), ["audio"]),
    (HumanMessage([{"type": "file", "url": "https://x/a.pdf"}]), ["file"]),
    (HumanMessage([{"type": "image", "base64": "QUJD"}]), ["mime_type"]),
    (HumanMessage([{"type": "reasoning", "reasoning": "x"}]), ["reasoning", "user"]),
    (HumanMessage([{"text": "no type"}]), ["messages[0].content[0]", "type"]),
    (HumanMessage(""), ["no content"]),
    (ChatMessage("x", role="wizard"), ["wizard"]),
    (RemoveMessage(id="m1"), ["RemoveMessage"]),
])
def test_what_cannot_be_sent_fails_with_a_clear_error(message: object, words: list[str]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        to_openai_messages([message])  # type: ignore[list-item]
    for word in words:
        assert word in str(info.value)


def test_non_messages_and_unknown_roles_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="expected a LangChain message"):
        to_openai_messages(["hello"])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="unknown role"):
        from_openai_messages([{"role": "wizard", "content": "x"}])


_names = st.one_of(st.none(), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
_text = st.text(min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), _text, _names), min_size=1, max_size=6))
def test_text_conversations_round_trip(turns: list[tuple[str, str, str | None]]) -> None:
    wire = [{"role": r, "content": t, **({"name": n} if n else {})} for r, t, n in turns]
    assert to_openai_messages(from_openai_messages(wire)) == wire
