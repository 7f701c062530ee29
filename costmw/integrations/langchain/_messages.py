"""Conversions between LangChain messages and costmw's OpenAI-format messages.

LangChain → costmw keeps roles, names, tool calls (with their ids), tool call ids and
multimodal content parts (OpenAI parts pass through; LangChain's standard image, audio and
file blocks become the matching OpenAI parts). Content that no OpenAI-format message can carry
raises :class:`costmw.InvalidRequestError` naming the message and the part. Two kinds of
assistant parts are dropped on purpose: ``tool_call``/``tool_use`` blocks (they are sent as
``tool_calls``) and reasoning/thinking blocks (a model's private scratchpad, which no other
model accepts back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..._errors import InvalidRequestError
from ..._types import ROLES, Message

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage, BaseMessage

__all__ = ["from_openai_messages", "to_openai_messages", "tool_calls_from_openai", "tool_calls_to_openai"]

_OPENAI_PARTS = frozenset({"image_url", "input_audio", "refusal"})
_BOOKKEEPING = frozenset({"index", "id", "extras", "annotations"})
_TOOL_BLOCKS = frozenset({"tool_call", "tool_use", "tool_call_chunk", "function_call"})
_REASONING_BLOCKS = frozenset({"reasoning", "thinking", "redacted_thinking"})


def _where(i: int, j: int | None = None) -> str:
    return f"messages[{i}]" if j is None else f"messages[{i}].content[{j}]"


def _data_uri(block: Mapping[str, Any], where: str) -> str:
    mime = block.get("mime_type") or block.get("media_type")
    if not mime:
        raise InvalidRequestError(f"{where}: a base64 {block.get('type')} block needs a mime_type")
    return f"data:{mime};base64,{block.get('base64') or block.get('data')}"


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic-style image block
        block = {"url": source.get("url"), "base64": source.get("data"), "mime_type": source.get("media_type")}
    kind = block.get("source_type")
    if block.get("url") or kind == "url":
        return {"type": "image_url", "image_url": {"url": block.get("url") or block.get("data")}}
    if block.get("base64") or kind == "base64":
        return {"type": "image_url", "image_url": {"url": _data_uri(block, where)}}
    raise InvalidRequestError(f"{where}: an image block needs a url or base64 data (file ids cannot be sent)")


def _audio_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    data = block.get("base64") or (block.get("data") if block.get("source_type") == "base64" else None)
    mime = str(block.get("mime_type") or "")
    if not data or not mime.startswith("audio/"):
        raise InvalidRequestError(f"{where}: an audio block needs base64 data and an audio/* mime_type")
    fmt = {"audio/mpeg": "mp3", "audio/x-wav": "wav"}.get(mime, mime.split("/", 1)[1])
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def _file_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    extras = block.get("extras") or {}
    name = block.get("filename") or extras.get("filename") or (block.get("metadata") or {}).get("filename")
    if block.get("file_id") or block.get("source_type") == "id":
        return {"type": "file", "file": {"file_id": block.get("file_id") or block.get("id")}}
    if block.get("base64") or block.get("source_type") == "base64":
        file: dict[str, Any] = {"file_data": _data_uri(block, where)}
        if name:
            file["filename"] = name
        return {"type": "file", "file": file}
    raise InvalidRequestError(f"{where}: a file block needs base64 data or a file_id (URLs cannot be sent)")


def _content_part(part: Any, role: str, where: str) -> dict[str, Any] | None:
    """One content part in OpenAI form; None when it is dropped on purpose."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        raise InvalidRequestError(f"{where}: a content part must be a string or a dict with a 'type'")
    kind = part["type"]
    if kind == "text":
        return {k: v for k, v in part.items() if k not in _BOOKKEEPING}
    if kind in _OPENAI_PARTS or (kind == "file" and isinstance(part.get("file"), Mapping)):
        return dict(part)
    if kind == "text-plain":
        return {"type": "text", "text": str(part.get("text") or part.get("base64") or "")}
    if kind == "image":
        return _image_part(part, where)
    if kind == "audio":
        return _audio_part(part, where)
    if kind == "file":
        return _file_part(part, where)
    if role == "assistant" and (kind in _TOOL_BLOCKS or kind in _REASONING_BLOCKS):
        return None
    raise InvalidRequestError(
        f"{where}: content part of type {kind!r} cannot be sent in an OpenAI-format {role} message"
    )


def _content(content: Any, role: str, i: int) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{_where(i)}: content must be a string or a list, got {type(content).__name__}")
    parts = [_content_part(p, role, _where(i, j)) for j, p in enumerate(content)]
    kept = [p for p in parts if p is not None]
    return kept if kept or role != "assistant" else ""  # an answer made only of tool calls


def tool_calls_to_openai(message: AIMessage) -> list[dict[str, Any]]:
    """LangChain tool calls (name, args dict, id) as OpenAI tool calls (arguments as a JSON string)."""
    out = [{"id": c.get("id"), "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c.get("args") or {}, ensure_ascii=False)}}
           for c in message.tool_calls]
    out += [{"id": c.get("id"), "type": "function",
             "function": {"name": c.get("name") or "", "arguments": c.get("args") or ""}}
            for c in message.invalid_tool_calls]
    known = {c["id"] for c in out}
    content = message.content if isinstance(message.content, list) else []
    for block in content:  # a tool_use block with no tool_calls entry still is a call
        if not isinstance(block, Mapping) or block.get("type") not in ("tool_use", "tool_call"):
            continue
        if block.get("id") not in known:
            args = json.dumps(block.get("input", block.get("args")) or {}, ensure_ascii=False)
            out.append({"id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name") or "", "arguments": args}})
    return out


def _role(message: BaseMessage, i: int) -> str:
    from langchain_core.messages import (
        AIMessage,
        ChatMessage,
        FunctionMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "developer" if message.additional_kwargs.get("__openai_role__") == "developer" else "system"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, FunctionMessage):
        return "function"
    if isinstance(message, ChatMessage):
        role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
        if role in ROLES:
            return role
        raise InvalidRequestError(f"{_where(i)}: ChatMessage role {message.role!r} is not one of {sorted(ROLES)}")
    raise InvalidRequestError(f"{_where(i)}: a {type(message).__name__} cannot be sent to a model")


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages as OpenAI-format chat messages (raises InvalidRequestError on what cannot be sent)."""
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

    out: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise InvalidRequestError(f"{_where(i)}: expected a LangChain message, got {type(message).__name__}")
        role = _role(message, i)
        item: Message = {"role": role, "content": _content(message.content, role, i)}
        if message.name:
            item["name"] = message.name
        if isinstance(message, AIMessage):
            calls = tool_calls_to_openai(message)
            if calls:
                item["tool_calls"] = calls
            if "function_call" in message.additional_kwargs:
                item["function_call"] = message.additional_kwargs["function_call"]
        elif isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
        if role != "assistant" and item["content"] in ("", []) and role not in ("tool", "function"):
            raise InvalidRequestError(f"{_where(i)} ({role}) has no content")
        out.append(item)
    return out


def tool_calls_from_openai(calls: Sequence[Mapping[str, Any]] | None) -> tuple[list[Any], list[Any]]:
    """OpenAI tool calls as LangChain ``(tool_calls, invalid_tool_calls)``; bad JSON arguments go to the second."""
    from langchain_core.messages.tool import invalid_tool_call, tool_call

    valid: list[Any] = []
    invalid: list[Any] = []
    for c in calls or ():
        fn = c.get("function") or {}
        raw = fn.get("arguments") or ""
        try:
            args = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, AttributeError) as exc:
            invalid.append(invalid_tool_call(name=fn.get("name"), args=raw, id=c.get("id"), error=str(exc)))
            continue
        if isinstance(args, dict):
            valid.append(tool_call(name=fn.get("name") or "", args=args, id=c.get("id")))
        else:
            invalid.append(invalid_tool_call(name=fn.get("name"), args=raw, id=c.get("id"),
                                             error="arguments are not a JSON object"))
    return valid, invalid


def from_openai_messages(messages: Sequence[Mapping[str, Any]]) -> list[BaseMessage]:
    """OpenAI-format chat messages as LangChain messages (the inverse of :func:`to_openai_messages`)."""
    from langchain_core.messages import AIMessage, FunctionMessage, HumanMessage, SystemMessage, ToolMessage

    out: list[BaseMessage] = []
    for i, m in enumerate(messages):
        role, content, name = m.get("role"), m.get("content"), m.get("name")
        content = "" if content is None else content
        if role in ("system", "developer"):
            extra = {"__openai_role__": "developer"} if role == "developer" else {}
            out.append(SystemMessage(content=content, name=name, additional_kwargs=extra))
        elif role == "user":
            out.append(HumanMessage(content=content, name=name))
        elif role == "assistant":
            valid, invalid = tool_calls_from_openai(m.get("tool_calls"))
            extra = {"function_call": m["function_call"]} if m.get("function_call") else {}
            out.append(AIMessage(content=content, name=name, tool_calls=valid, invalid_tool_calls=invalid,
                                 additional_kwargs=extra))
        elif role == "tool":
            out.append(ToolMessage(content=content, name=name, tool_call_id=str(m.get("tool_call_id") or "")))
        elif role == "function":
            out.append(FunctionMessage(content=content, name=str(name or "")))
        else:
            raise InvalidRequestError(f"{_where(i)} has unknown role {role!r}")
    return out
