"""Keeping a conversation's cached prefix cached: what the minifier sent last, what keeping that
prefix would cost against what a rewrite would, and the cheaper of the two.

A provider that caches prompt prefixes bills a repeated prefix at a discount only when it is
byte-identical to one sent before. The minifier's per-message rewrites are deterministic, so
they keep a prefix as it was; cutting old turns (the history budget) does not. Before such a cut
the minifier prices both prompts, the rewrite and the previous prompt with the new turn
appended, at the target's cached and uncached prices, and sends the cheaper one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from costmw.plugin_api import Message, Price, PromptCaching, common_prefix

__all__ = ["PrefixCost", "SentTurns", "prompt_cost"]


@dataclass(frozen=True, slots=True)
class _Turn:
    original: tuple[Message, ...]
    sent: tuple[Message, ...]


class SentTurns:
    """Per conversation, the request as the caller sent it and as the minifier sent it, last time."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._data: OrderedDict[str, _Turn] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str, original: Sequence[Message], sent: Sequence[Message]) -> None:
        with self._lock:
            self._data[key] = _Turn(tuple(original), tuple(sent))
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def previous(self, key: str) -> _Turn | None:
        return self._data.get(key)


def kept_prefix(turn: _Turn, original: Sequence[Message],
                rewrite: Callable[[Message], Message]) -> list[Message] | None:
    """The previous prompt as sent, with the turns added since (rewritten one by one) after it;
    None when the conversation did not grow by appending (an edited or a new history)."""
    n = len(turn.original)
    if len(original) <= n or common_prefix(turn.original, original[:n]) != n:
        return None
    return [*turn.sent, *(rewrite(m) for m in original[n:])]


@dataclass(frozen=True, slots=True)
class PrefixCost:
    """What one prompt would cost in input: its tokens, those read from the provider's cache, USD."""

    tokens: int
    cached: int
    usd: float


def prompt_cost(messages: Sequence[Message], previous: Sequence[Message] | None, count: Callable[
        [Sequence[Message]], int], caching: PromptCaching, price: Price | None) -> PrefixCost:
    """Input cost of ``messages`` after ``previous`` was sent: the shared leading messages are read
    from the cache (as far as the provider's rules allow), the rest is billed in full, or written
    to the cache at its write price where the provider caches at breakpoints."""
    tokens = count(messages)
    shared = common_prefix(previous, messages) if previous else 0
    cached = min(tokens, caching.cacheable(count(messages[:shared]))) if shared else 0
    if price is None:
        return PrefixCost(tokens, cached, 0.0)
    written = tokens - cached if caching.breakpoints and tokens >= caching.min_tokens else 0
    return PrefixCost(tokens, cached, price.cost(tokens, 0, cached, written))
