"""Provider prompt caching: which prefixes a provider serves from its cache, and what a
conversation last sent where, so plugins can keep a warm prefix warm.

OpenAI (and providers priced like it) cache every prompt prefix of 1,024 tokens or more by
themselves, in steps of 128 tokens. Anthropic caches only prefixes that end at a
``cache_control`` breakpoint, from a minimum length that depends on the model, and charges a
surcharge for writing them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._pricing import model_info
from ._types import Message, Request

__all__ = ["PromptCaching", "SentPrefixes", "common_prefix", "conversation_key", "prompt_caching"]


@dataclass(frozen=True, slots=True)
class PromptCaching:
    """How a provider caches prompt prefixes.

    ``breakpoints``: only prefixes that end at a ``cache_control`` breakpoint are cached (Anthropic);
    otherwise every long enough prefix is (OpenAI). ``min_tokens``: the shortest cacheable
    prefix; ``step_tokens``: cached lengths are multiples of it; ``ttl_s``: how long an unused
    entry stays warm.
    """

    provider: str
    breakpoints: bool = False
    min_tokens: int = 1024
    step_tokens: int = 128
    ttl_s: float = 300.0

    def cacheable(self, prefix_tokens: int) -> int:
        """How many tokens of a repeated prefix of ``prefix_tokens`` tokens the provider reads from its cache."""
        if prefix_tokens < self.min_tokens:
            return 0
        return prefix_tokens - prefix_tokens % max(1, self.step_tokens)


def _anthropic_min_tokens(model: str) -> int:
    """The shortest prefix Anthropic caches for ``model`` (its documented minimums)."""
    name = model.lower()
    if "haiku-4" in name or "opus-4-5" in name or "opus-4-6" in name:
        return 4096
    if "haiku" in name:
        return 2048
    return 1024


def prompt_caching(model: str) -> PromptCaching | None:
    """How ``model``'s provider caches prompts, from LiteLLM's price map (None: it does not)."""
    info = model_info(model) or {}
    if not (info.get("supports_prompt_caching") or info.get("cache_read_input_token_cost") is not None):
        return None
    provider = str(info.get("litellm_provider") or model.split("/", 1)[0])
    if provider == "anthropic" or "claude" in model.lower():
        return PromptCaching("anthropic", breakpoints=True, min_tokens=_anthropic_min_tokens(model), step_tokens=1)
    return PromptCaching(provider)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def conversation_key(request: Request) -> str:
    """Names the conversation a request belongs to: its tools and its first two messages (the
    system prompt and the opening turn), which stay the same while the conversation grows.
    Worked out once per request, on the request as the caller sent it when the first plugin asks,
    so plugins further in (after the history was cut) name the same conversation."""
    key: str = request.context.memo(
        ("prompt_cache", "conversation"),
        lambda: _digest([request.params.get("tools"), list(request.messages[:2])])[:32])
    return key


def common_prefix(a: Sequence[Message], b: Sequence[Message]) -> int:
    """How many leading messages ``a`` and ``b`` share, byte for byte."""
    n = 0
    for x, y in zip(a, b):
        if x is not y and _digest(x) != _digest(y):
            break
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class _Sent:
    target: str
    messages: tuple[Message, ...]
    tools_digest: str
    at: float


class SentPrefixes:
    """What each conversation last sent, and to which target: bounded, least recently used out.

    A provider's cache is warm for a conversation when the same target got the same tools and
    a prefix of the messages within the cache's time to live.
    """

    def __init__(self, size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._data: OrderedDict[str, _Sent] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str, target: str, messages: Sequence[Message], tools: Any = None) -> None:
        with self._lock:
            self._data[key] = _Sent(target, tuple(messages), _digest(tools), self.clock())
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def last(self, key: str) -> tuple[str, tuple[Message, ...]] | None:
        """The target and messages ``key`` sent last (however long ago)."""
        sent = self._data.get(key)
        return None if sent is None else (sent.target, sent.messages)

    def warm(self, key: str, messages: Sequence[Message], tools: Any = None,
             ttl_s: float = 300.0) -> tuple[str, int] | None:
        """The target whose cache holds a prefix of ``messages``, and how many leading messages it
        holds; None when the conversation sent nothing within ``ttl_s`` or the tools changed."""
        sent = self._data.get(key)
        if sent is None or self.clock() - sent.at > ttl_s or sent.tools_digest != _digest(tools):
            return None
        shared = common_prefix(sent.messages, messages)
        return (sent.target, shared) if shared else None
