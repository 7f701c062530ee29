"""Checks of user input made once, when a request is created: content parts and model parameters.

Bad input fails here with an InvalidRequestError that names the field, instead of surfacing later
as a plugin's or a provider's error (or, worse, being sent on). Only what costmw can judge without
knowing the target is checked; a parameter costmw does not know passes through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import InvalidRequestError

__all__ = ["MAX_N", "MAX_TOKENS_LIMIT", "PART_TYPES", "check_content", "check_params"]

#: The largest ``max_tokens`` (and ``max_completion_tokens``) accepted: beyond any model's window.
MAX_TOKENS_LIMIT = 1_000_000
#: The most choices (``n``) one request may ask for.
MAX_N = 128
#: Content part types accepted in a list-valued ``content``, by role (OpenAI's chat format).
#: Images, audio and files pass through to targets that accept them; where a role takes only
#: text (system, developer, tool), any other part is refused.
PART_TYPES: dict[str, frozenset[str]] = {
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "tool": frozenset({"text"}),
    "function": frozenset({"text"}),
}
# The field each non-text part carries its payload in.
_PAYLOAD = {"image_url": "image_url", "input_audio": "input_audio", "file": "file", "refusal": "refusal"}


def no_surrogates(where: str, text: str) -> None:
    """Refuse a string holding a lone surrogate: it is not Unicode text and cannot be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(f"{where} holds a lone surrogate ({text[exc.start]!r} at index {exc.start}), "
                                  "which is not valid Unicode text") from None


def check_content(where: str, role: str, content: Any) -> None:
    """Check one message's content: text without lone surrogates, parts of types its role takes."""
    if isinstance(content, str):
        no_surrogates(where, content)
        return
    if not isinstance(content, list):
        return
    allowed = PART_TYPES.get(role, PART_TYPES["user"])
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequestError(f"{at} must be a content part dict with a 'type', got {type(part).__name__}")
        kind = part["type"]
        if kind not in allowed:
            raise InvalidRequestError(f"{at} is a {kind!r} part; a {role} message takes only "
                                      f"{', '.join(sorted(allowed))} parts")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequestError(f"{at}.text must be a string, got {type(part.get('text')).__name__}")
            no_surrogates(f"{at}.text", part["text"])
        elif kind in _PAYLOAD and part.get(_PAYLOAD[kind]) is None:
            raise InvalidRequestError(f"{at} is a {kind!r} part without its {_PAYLOAD[kind]!r} field")


def _number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequestError(f"params.{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequestError(f"params.{name} must be between {low:g} and {high:g}, got {value!r}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"params.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequestError(f"params.{name} must be between {low} and {high}, got {value!r}")


def _stop(name: str, value: Any) -> None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise InvalidRequestError(f"params.{name} must be a string or a list of strings, got {value!r}")
    for s in items:
        no_surrogates(f"params.{name}", s)


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise InvalidRequestError(f"params.{name} must be a list of tool dicts, got {type(value).__name__}")
    for i, tool in enumerate(value):
        at = f"params.{name}[{i}]"
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise InvalidRequestError(f"{at} must be a tool dict with a 'type' (e.g. 'function'), got {tool!r:.80}")
        if tool["type"] == "function":
            fn = tool.get("function")
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise InvalidRequestError(f"{at}.function must be a dict with a non-empty 'name'")


_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "temperature": lambda n, v: _number(n, v, 0.0, 2.0),
    "top_p": lambda n, v: _number(n, v, 0.0, 1.0),
    "presence_penalty": lambda n, v: _number(n, v, -2.0, 2.0),
    "frequency_penalty": lambda n, v: _number(n, v, -2.0, 2.0),
    "max_tokens": lambda n, v: _integer(n, v, 1, MAX_TOKENS_LIMIT),
    "max_completion_tokens": lambda n, v: _integer(n, v, 1, MAX_TOKENS_LIMIT),
    "n": lambda n, v: _integer(n, v, 1, MAX_N),
    "seed": lambda n, v: _integer(n, v, -(2**63), 2**63 - 1),
    "stop": _stop,
    "tools": _tools,
}


def check_params(params: Mapping[str, Any]) -> None:
    """Check the model parameters costmw knows (a None value means "not set" and passes)."""
    for name, value in params.items():
        check = _CHECKS.get(name)
        if check is not None and value is not None:
            check(name, value)
