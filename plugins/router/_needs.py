"""What a request needs from a target (tools, JSON mode, streaming, room in the context window)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costmw.plugin_api import CAPABILITY_NAMES, Request, Target, count_message_tokens

__all__ = ["Needs", "lacks", "needs_of"]

CAPABILITIES = CAPABILITY_NAMES


@dataclass(frozen=True, slots=True)
class Needs:
    """The capabilities a request needs, and the tokens it will occupy (prompt + room to answer)."""

    tools: bool = False
    json_mode: bool = False
    streaming: bool = False
    tokens: int = 0

    def names(self) -> list[str]:
        return [c for c in CAPABILITIES if getattr(self, c)]


def _wants_json(params: Mapping[str, Any]) -> bool:
    fmt = params.get("response_format")
    if isinstance(fmt, Mapping):
        return str(fmt.get("type", "")).startswith("json")
    if isinstance(fmt, str):
        return fmt.startswith("json")
    return fmt is not None and not isinstance(fmt, (bool, int, float))  # a pydantic model class


def needs_of(request: Request) -> Needs:
    """What ``request`` needs (``options.needs`` may add capabilities by name)."""
    p = request.params
    extra = request.options.needs
    prompt = request.context.memo(("prompt_tokens", id(request.messages)),
                                  lambda: count_message_tokens(request.messages, request.model, p.get("tools")))
    answer = int(p.get("max_tokens") or p.get("max_completion_tokens") or 0)
    return Needs(
        tools=bool(p.get("tools") or p.get("functions")) or "tools" in extra,
        json_mode=_wants_json(p) or "json_mode" in extra,
        streaming=request.stream or "streaming" in extra,
        tokens=int(prompt) + answer,
    )


def lacks(target: Target, needs: Needs) -> str | None:
    """Why ``target`` cannot serve a request with these needs (None when it can)."""
    caps = target.capabilities
    missing = [c for c in needs.names() if not getattr(caps, c)]
    if missing:
        return "lacks " + ", ".join(m.replace("_", " ") for m in missing)
    if caps.context_window and needs.tokens > caps.context_window:
        return f"context window {caps.context_window} < {needs.tokens} tokens needed"
    return None
