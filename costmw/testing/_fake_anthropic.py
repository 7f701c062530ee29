"""The Anthropic-shaped side of the fake server: ``POST /v1/messages``, as LiteLLM's Anthropic
provider calls it, answered by the same responder as the OpenAI side and with Anthropic's
usage fields (``cache_read_input_tokens``, ``cache_creation_input_tokens``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

__all__ = ["as_chat_body", "messages_reply"]


def _text(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    return "\n".join(str(b.get("text", "")) for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text")


def _chat_message(m: dict[str, Any]) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI chat messages (tool results become ``tool`` messages)."""
    content = m.get("content")
    role = m.get("role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = [b for b in content or [] if isinstance(b, dict)]
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b.get("type") == "tool_result":
            out.append({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": _text(b.get("content"))})
    calls = [{"id": b.get("id"), "type": "function",
              "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
             for b in blocks if b.get("type") == "tool_use"]
    text = _text(blocks)
    if text or calls:
        msg: dict[str, Any] = {"role": role, "content": text or None}
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def as_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic messages request as an OpenAI chat request, for the responder."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text(system)})
    for m in body.get("messages") or []:
        messages.extend(_chat_message(m))
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("tools"):
        chat["tools"] = [{"type": "function", "function": {"name": t.get("name"), "description": t.get("description"),
                                                           "parameters": t.get("input_schema")}}
                         for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "none":
        chat["tool_choice"] = "none"
    return chat


def messages_reply(model: str, text: str, tool_calls: list[tuple[str, dict[str, Any]]], finish: str | None,
                   usage: dict[str, int]) -> dict[str, Any]:
    """The body of an Anthropic messages answer."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": n, "input": a}
                for n, a in tool_calls]
    stop = finish if finish not in (None, "stop", "tool_calls") else ("tool_use" if tool_calls else "end_turn")
    return {"id": f"msg_{uuid.uuid4().hex[:16]}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
