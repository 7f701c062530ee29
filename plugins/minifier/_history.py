"""Fit a long conversation into a token budget: keep the system prompt and the latest turns,
replace older turns with a summary (cached per history prefix), never split a tool call from its result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from costmw.plugin_api import LRUCache, Message, message_text

__all__ = ["HistoryFit", "SummaryCache", "fit_history", "render_transcript", "split_head"]

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
_HEAD_ROLES = ("system", "developer")

Count = Callable[[Sequence[Message]], int]
# summarize(previous summary or None, messages to add) -> (summary text, cost in USD)
Summarize = Callable[[str | None, Sequence[Message]], Awaitable[tuple[str, float]]]


@dataclass(slots=True)
class HistoryFit:
    """The trimmed conversation and how it was made."""

    messages: list[Message]
    replaced: int = 0            # older messages replaced by the summary (or dropped)
    how: str = "unchanged"       # unchanged | cached | summarized | truncated | too_short
    summary_cost_usd: float = 0.0
    error: str | None = None


class SummaryCache(LRUCache[str, str]):
    """Summaries of history prefixes, keyed by a hash of the prefix; bounded, least recently used out."""

    def __init__(self, size: int = 256) -> None:
        super().__init__(size)


def split_head(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """The leading system/developer messages (the system prompt) and the rest."""
    n = 0
    while n < len(messages) and messages[n].get("role") in _HEAD_ROLES:
        n += 1
    return list(messages[:n]), list(messages[n:])


def _prefix_keys(body: Sequence[Message], salt: str) -> list[str]:
    """keys[k] identifies ``body[:k]`` (keys[0] is the empty prefix)."""
    h = hashlib.sha256(salt.encode())
    keys = [h.hexdigest()]
    for m in body:
        h.update(json.dumps(m, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\x1e")
        keys.append(h.hexdigest())
    return keys


def _cuts(body: Sequence[Message]) -> list[int]:
    """Where the body may be cut: before a user message, with no tool result after the cut
    answering a tool call before it."""
    cuts = []
    open_calls: set[str] = set()
    later_results: list[set[str]] = [set() for _ in range(len(body) + 1)]
    for i in range(len(body) - 1, -1, -1):
        later_results[i] = set(later_results[i + 1])
        if body[i].get("role") == "tool" and body[i].get("tool_call_id"):
            later_results[i].add(str(body[i]["tool_call_id"]))
    for i, m in enumerate(body):
        if i > 0 and m.get("role") == "user" and not (open_calls & later_results[i]):
            cuts.append(i)
        for call in m.get("tool_calls") or ():
            if isinstance(call, dict) and call.get("id"):
                open_calls.add(str(call["id"]))
    return cuts


def summary_message(summary: str) -> Message:
    return {"role": "system", "content": SUMMARY_PREFIX + summary.strip()}


def render_transcript(previous: str | None, messages: Sequence[Message]) -> str:
    """The text a summarizer reads: the earlier summary, then each message as ``role: text``."""
    lines = [f"(summary so far) {previous.strip()}"] if previous else []
    for m in messages:
        role = str(m.get("role"))
        if m.get("name"):
            role += f" ({m['name']})"
        text = message_text(m)
        for call in m.get("tool_calls") or ():
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            text += f"\n[calls {fn.get('name', '?')}({fn.get('arguments', '')})]"
        lines.append(f"{role}: {text.strip()}")
    return "\n".join(lines)


async def fit_history(messages: Sequence[Message], *, budget: int, count: Count, summarize: Summarize | None,
                      cache: SummaryCache, salt: str = "", trim_to: float = 1.0,
                      summary_tokens: int = 256) -> HistoryFit:
    """Bring ``messages`` under ``budget`` tokens, or leave them be when they fit already.

    ``count`` gives the prompt tokens of a list of messages (3 + a sum over messages, as
    ``count_message_tokens`` does), so each message is counted once.
    """
    sizes = [count([m]) - 3 for m in messages]
    if 3 + sum(sizes) <= budget:
        return HistoryFit(list(messages))
    head, body = split_head(messages)
    cuts = _cuts(body)
    if not cuts:
        return HistoryFit(list(messages), how="too_short")
    head_size = 3 + sum(sizes[:len(head)])
    tail = [0] * (len(body) + 1)  # tail[k]: tokens of body[k:]
    for i in range(len(body) - 1, -1, -1):
        tail[i] = tail[i + 1] + sizes[len(head) + i]
    keys = _prefix_keys(body, salt)
    # a summary made on an earlier turn still fits: reuse it, keeping as many turns as possible
    for k in cuts:
        cached = cache.get(keys[k])
        if cached is not None:
            note = summary_message(cached)
            if head_size + count([note]) - 3 + tail[k] <= budget:
                return HistoryFit([*head, note, *body[k:]], replaced=k, how="cached")
    reserve = min(summary_tokens, budget // 4) if summarize is not None else 0  # room for the summary itself
    goal = int(budget * trim_to) - reserve
    cut = next((k for k in cuts if head_size + tail[k] <= goal), cuts[-1])
    truncated = [*head, *body[cut:]]
    if summarize is None:
        return HistoryFit(truncated, replaced=cut, how="truncated")
    base = max((k for k in range(1, cut) if cache.get(keys[k]) is not None), default=0)
    previous = cache.get(keys[base]) if base else None
    try:
        summary, cost = await summarize(previous, body[base:cut])
    except Exception as exc:
        return HistoryFit(truncated, replaced=cut, how="truncated", error=f"{type(exc).__name__}: {exc}")
    if not summary.strip():
        return HistoryFit(truncated, replaced=cut, how="truncated", summary_cost_usd=cost,
                          error="the summarizer returned an empty summary")
    cache.put(keys[cut], summary)
    return HistoryFit([*head, summary_message(summary), *body[cut:]], replaced=cut, how="summarized",
                      summary_cost_usd=cost)
