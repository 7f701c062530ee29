"""Prompt caching as providers do it, for the fake server: OpenAI's automatic prefix cache and
Anthropic's breakpoint cache. Token counts are estimated (four characters a token) from the
request as it arrives, so a prefix counts as cached only when it is byte-identical to one sent before.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["AnthropicPromptCache", "OpenAIPromptCache"]

_CHARS_PER_TOKEN = 4


def _tokens(chars: int) -> int:
    return math.ceil(chars / _CHARS_PER_TOKEN)


class OpenAIPromptCache:
    """Every prompt of at least ``min_tokens`` tokens is cached in steps of ``step_tokens``; a later
    prompt of the same model reads the longest cached prefix it starts with."""

    def __init__(self, min_tokens: int = 1024, step_tokens: int = 128) -> None:
        self.min_tokens = min_tokens
        self.step_chars = step_tokens * _CHARS_PER_TOKEN
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @staticmethod
    def prompt_text(body: dict[str, Any]) -> str:
        """The prompt as the cache sees it: tools first, then the messages."""
        tools = body.get("tools")
        return (json.dumps(tools) if tools else "") + json.dumps(body.get("messages", []))

    def lookup(self, model: str, text: str) -> int:
        """Cached tokens for this prompt (0 below the minimum), and remember its prefixes."""
        h = hashlib.sha256()
        step_keys = []
        for start in range(0, len(text) - len(text) % self.step_chars, self.step_chars):
            h.update(text[start:start + self.step_chars].encode())
            step_keys.append((model, h.hexdigest()))
        cached = 0
        with self._lock:
            for i, key in enumerate(step_keys):
                if key not in self._seen:
                    break
                cached = i + 1
            if _tokens(len(text)) >= self.min_tokens:
                self._seen.update(step_keys)
        tokens = cached * self.step_chars // _CHARS_PER_TOKEN
        return tokens if tokens >= self.min_tokens else 0


def anthropic_blocks(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The prompt in cache order (tools, system, messages), one (serialised block, breakpoint?) each."""
    out: list[tuple[str, bool]] = []

    def add(prefix: str, block: Any) -> None:
        marked = isinstance(block, dict) and block.get("cache_control") is not None
        plain = {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
        out.append((prefix + json.dumps(plain, sort_keys=True), marked))

    for tool in body.get("tools") or []:
        add("tool:", tool)
    system = body.get("system")
    for block in [system] if isinstance(system, str) else system or []:
        add("system:", block)
    for m in body.get("messages") or []:
        content = m.get("content")
        for block in [content] if isinstance(content, str) else content or []:
            add(f"{m.get('role')}:", block)
    return out


class AnthropicPromptCache:
    """Only prefixes that end at a ``cache_control`` breakpoint are written (from ``min_tokens``
    tokens); a breakpoint reads the longest cached prefix ending at it or at one of the
    ``lookback`` blocks before it."""

    def __init__(self, min_tokens: int = 1024, lookback: int = 20) -> None:
        self.min_tokens = min_tokens
        self.lookback = lookback
        self._entries: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def lookup(self, model: str, blocks: Sequence[tuple[str, bool]]) -> tuple[int, int, int]:
        """(total, read, written) input tokens of this prompt; breakpoints are written for later calls."""
        h = hashlib.sha256()
        keys: list[tuple[str, str]] = []
        ends: list[int] = []
        chars = 0
        for text, _ in blocks:
            h.update(text.encode() + b"\x1e")
            keys.append((model, h.hexdigest()))
            chars += len(text)
            ends.append(_tokens(chars))
        total = ends[-1] if ends else 0
        marks = [i for i, (_, marked) in enumerate(blocks) if marked and ends[i] >= self.min_tokens]
        with self._lock:
            read = 0
            for b in marks:
                for j in range(b, max(-1, b - self.lookback - 1), -1):
                    if keys[j] in self._entries:
                        read = max(read, ends[j])
                        break
            written = max(0, ends[marks[-1]] - read) if marks else 0
            self._entries.update(keys[b] for b in marks)
        return total, read, written
