"""A responder for :class:`FakeOpenAIServer` that behaves like a cooperative chat model.

``schema_responder`` answers deterministically from the request alone:

- tools offered and the conversation does not end with a tool result (or ``tool_choice``
  forces one): it calls a tool (the one ``tool_choice`` names, else the one whose name appears in
  the last user message, else the first) with arguments built from the tool's JSON schema,
  filled from the user's words: numbers in order for numeric fields, a quoted phrase (else the
  message itself) for strings;
- ``response_format`` json_schema: JSON that matches the schema; json_object: a JSON object whose
  keys are the quoted words of the prompt;
- otherwise a short text answer that mentions the last user message, or the last tool result;
- ``stop`` sequences cut the text, ``max_tokens`` (4 characters a token) truncates it with
  finish reason ``length``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ._fake_openai import Reply

__all__ = ["example_for_schema", "schema_responder"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


class _Filler:
    """Values taken from the user's words, in order."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self._numbers: Iterator[str] = iter(_NUMBER.findall(text))
        quoted = [next(g for g in m if g) for m in _QUOTED.findall(text)]
        self._quoted: Iterator[str] = iter(quoted)

    def number(self) -> str:
        return next(self._numbers, "1")

    def string(self) -> str:
        return next(self._quoted, None) or (self.text[:60] or "text")


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return _resolve(node, root)
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or () if isinstance(o, Mapping) and o.get("type") != "null"]
        if options:
            return _resolve({**{k: v for k, v in schema.items() if k != key}, **options[0]}, root)
    return schema


def _value(schema: Mapping[str, Any], root: Mapping[str, Any], fill: _Filler) -> Any:
    schema = _resolve(schema, root)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return int(float(fill.number()))
    if kind == "number":
        return float(fill.number())
    if kind == "boolean":
        return True
    if kind == "array":
        items = schema.get("items")
        return [_value(items, root, fill)] if isinstance(items, Mapping) else []
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _value(sub, root, fill) for name, sub in props.items() if isinstance(sub, Mapping)}
    return fill.string()


def example_for_schema(schema: Mapping[str, Any], text: str = "") -> Any:
    """A value that satisfies ``schema`` (a JSON schema), filled from ``text`` where it can."""
    return _value(schema, schema, _Filler(text))


def _pick_tool(tools: list[Mapping[str, Any]], choice: Any, text: str) -> Mapping[str, Any] | None:
    functions: list[Mapping[str, Any]] = [t["function"] for t in tools if isinstance(t.get("function"), Mapping)]
    if not functions:
        return None
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        return next((f for f in functions if f.get("name") == wanted), None)
    lowered = text.lower()
    return next((f for f in functions if str(f.get("name", "")).lower() in lowered), functions[0])


def _limit(text: str, body: Mapping[str, Any]) -> tuple[str, str | None]:
    stop = body.get("stop")
    for s in [stop] if isinstance(stop, str) else (stop or []):
        if s and s in text:
            text = text[:text.index(s)]
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if isinstance(limit, int) and len(text) > 4 * limit:
        return text[:4 * limit], "length"
    return text, None


def schema_responder(body: dict[str, Any]) -> Reply:
    """Answer an OpenAI chat request the way a cooperative model would (see the module docstring)."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    user = _text(next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), ""))
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    forced = choice == "required" or isinstance(choice, Mapping)
    if tools and choice != "none" and (forced or last.get("role") != "tool"):
        fn = _pick_tool(tools, choice, user)
        if fn is not None:
            params = fn.get("parameters") or {"type": "object", "properties": {}}
            return Reply(tool_calls=[(str(fn["name"]), example_for_schema(params, user))])
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return Reply(text=json.dumps(example_for_schema(schema, user), ensure_ascii=False))
    if fmt.get("type") == "json_object":
        keys = [next(g for g in m if g) for m in _QUOTED.findall(user)] or ["answer"]
        return Reply(text=json.dumps({k: user[:60] for k in keys}, ensure_ascii=False))
    if last.get("role") == "tool":
        text = f"The tool returned {_text(last.get('content'))}."
    else:
        text = f"Hello! You said: {user}" if user else "Hello!"
    text, finish = _limit(text, body)
    return Reply(text=text or "…", finish_reason=finish)
