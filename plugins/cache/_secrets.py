"""What the cache does with an answer whose prompt or answer holds a secret (an API key, a token):
by default it is not stored at all; ``secrets="redact"`` stores it with the secrets replaced."""

from __future__ import annotations

import json
from typing import Any

from costmw.plugin_api import ConfigError, Request, contains_secret, message_text, redact_secrets

from ._entry import Entry

__all__ = ["SECRET_POLICIES", "check_policy", "screen"]

SECRET_POLICIES = ("skip", "redact")


def check_policy(policy: str) -> str:
    if policy not in SECRET_POLICIES:
        raise ConfigError(f"secrets must be one of {SECRET_POLICIES}, got {policy!r}")
    return policy


def _answer_texts(response: dict[str, Any]) -> list[str]:
    return [str(response.get("text") or ""), json.dumps(response.get("tool_calls") or [])]


def screen(request: Request, entry: Entry, policy: str) -> Entry | None:
    """``entry`` as it may be stored: None when it holds a secret and ``policy`` is "skip", else
    with every secret in its question and answer redacted."""
    texts = [message_text(m) for m in request.messages] + [entry.text] + _answer_texts(entry.response)
    if not any(contains_secret(t) for t in texts):
        return entry
    if policy == "skip":
        return None
    entry.text = redact_secrets(entry.text)
    entry.derived = None  # read from the text as it was: read again from the redacted text when needed
    response = dict(entry.response)
    response["text"] = redact_secrets(str(response.get("text") or ""))
    if response.get("tool_calls"):
        response["tool_calls"] = json.loads(redact_secrets(json.dumps(response["tool_calls"])))
    entry.response = response
    return entry
