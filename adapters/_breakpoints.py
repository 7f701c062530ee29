"""Anthropic prompt-cache breakpoints, placed where a conversation's prefix stops changing.

Anthropic caches a prefix only up to a block marked ``cache_control``. Two marks serve a
conversation: one at the end of the system prompt (the same on every call, tools included in
front of it) and one at the end of the latest turn, which the next call reads back (Anthropic
looks up to 20 blocks behind a mark for an earlier one). A prefix shorter than the model's
minimum is left unmarked: it would be neither cached nor charged a write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from costmw.plugin_api import Message, PromptCaching, count_message_tokens

__all__ = ["has_breakpoints", "with_breakpoints"]

EPHEMERAL = {"type": "ephemeral"}


def has_breakpoints(messages: Sequence[Message], tools: Any) -> bool:
    """Whether the caller placed breakpoints already (then costmw places none)."""
    for m in messages:
        if m.get("cache_control") is not None:
            return True
        content = m.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("cache_control") for p in content):
            return True
    return any(isinstance(t, dict) and t.get("cache_control") for t in tools or ())


def _mark(message: Message) -> Message:
    content = message.get("content")
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        return {**message, "content": [*content[:-1], {**content[-1], "cache_control": dict(EPHEMERAL)}]}
    return {**message, "cache_control": dict(EPHEMERAL)}


def with_breakpoints(messages: Sequence[Message], tools: Any, caching: PromptCaching, model: str) -> list[Message]:
    """``messages`` with ``cache_control`` marks at the end of the system prompt and of the latest
    turn, each where the prefix up to it reaches ``caching.min_tokens``."""
    out = list(messages)
    if not caching.breakpoints or has_breakpoints(messages, tools):
        return out
    head = 0
    while head < len(out) and out[head].get("role") in ("system", "developer"):
        head += 1
    last = max((i for i, m in enumerate(out) if m.get("role") != "assistant"), default=-1)
    marks = []
    if head and count_message_tokens(out[:head], model, tools) >= caching.min_tokens:
        marks.append(head - 1)
    if last >= head and count_message_tokens(out[:last + 1], model, tools) >= caching.min_tokens:
        marks.append(last)
    for i in marks:
        out[i] = _mark(out[i])
    return out
