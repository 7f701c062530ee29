"""Which parts of a chat request the minifier may rewrite, and how to rewrite just those.

Only text is rewritten: string contents and the text parts of multimodal contents. Messages with
role ``tool`` or ``function``, messages carrying ``tool_calls``, and everything in ``params``
(tool schemas, ``response_format``) are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from costmw.plugin_api import Message

__all__ = ["editable", "map_text", "split_question", "text_parts"]

_NEVER = frozenset({"tool", "function"})
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LAST_QUESTION = re.compile(r"[.!?:\n]\s+([^.!?\n]{3,}\?)\s*$")


def editable(message: Message) -> bool:
    """Whether any text of ``message`` may be rewritten."""
    return message.get("role") not in _NEVER and not message.get("tool_calls") and not message.get("function_call")


def text_parts(message: Message) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p["text"]) for p in content if isinstance(p, dict) and p.get("type") == "text"
                and isinstance(p.get("text"), str)]
    return []


def map_text(message: Message, fn: Callable[[str], str]) -> Message:
    """A copy of ``message`` with ``fn`` applied to each text (the message itself when nothing changes)."""
    if not editable(message):
        return message
    content = message.get("content")
    if isinstance(content, str):
        new = fn(content)
        return message if new == content else {**message, "content": new}
    if not isinstance(content, list):
        return message
    parts: list[Any] = []
    changed = False
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            new = fn(part["text"])
            if new != part["text"]:
                part = {**part, "text": new}
                changed = True
        parts.append(part)
    return {**message, "content": parts} if changed else message


def split_question(text: str, count: Callable[[str], int]) -> tuple[str, str, str]:
    """Split the last user message into (context, separator, question).

    The question is the last paragraph when it is short next to the rest, else a final
    sentence ending with ``?``; without either, everything is question (nothing to compress).
    """
    body = text.rstrip()
    cuts = list(_PARAGRAPH.finditer(body))
    if cuts:
        last = cuts[-1]
        question = body[last.end():]
        if count(question) <= max(200, count(body) // 4):
            return body[:last.start()], body[last.start():last.end()], question + text[len(body):]
    m = _LAST_QUESTION.search(body)
    if m:
        start = m.start(1)
        return body[:start].rstrip(), body[len(body[:start].rstrip()):start], body[start:] + text[len(body):]
    return "", "", text


def last_user_index(messages: Sequence[Message]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1
