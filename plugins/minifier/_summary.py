"""Summaries of older conversation turns, made by the cheapest capable target of the chain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from costmw.plugin_api import Message, Request, Target, Usage

from ._history import render_transcript

__all__ = ["SUMMARY_INSTRUCTIONS", "cheapest_target", "summarize_with"]

SUMMARY_INSTRUCTIONS = (
    "You compress chat histories. Summarize the conversation below in at most {words} words. "
    "Keep names, numbers, codes, dates, decisions, the user's preferences and open questions. "
    "Write only the summary, in plain sentences."
)


def cheapest_target(targets: Iterable[Target], prompt_tokens: int, answer_tokens: int) -> Target | None:
    """The target that would charge least for the summary call and whose context fits it.

    Targets without a known price come after priced ones (their cost is unknown, not zero);
    label classifiers (``kind == "classifier"``) cannot write a summary and are skipped.
    """
    best: tuple[int, float, int] | None = None
    chosen: Target | None = None
    for order, t in enumerate(targets):
        if getattr(t, "kind", "") == "classifier":
            continue
        window = t.capabilities.context_window
        if window is not None and window < prompt_tokens + answer_tokens:
            continue
        price = t.price
        key = (0, price.cost(prompt_tokens, answer_tokens), order) if price else (1, 0.0, order)
        if best is None or key < best:
            best, chosen = key, t
    return chosen


async def summarize_with(target: Target, previous: str | None, messages: Sequence[Message], *,
                         max_tokens: int, timeout_s: float) -> tuple[str, Usage]:
    """Ask ``target`` for a summary of ``messages`` (after an earlier summary); returns (text, usage)."""
    transcript = render_transcript(previous, messages)
    request = Request.create(
        [{"role": "system", "content": SUMMARY_INSTRUCTIONS.format(words=max(20, int(max_tokens * 0.7)))},
         {"role": "user", "content": transcript}],
        target.model,
        params={"max_tokens": max_tokens, "temperature": 0},
        metadata={"purpose": "minifier_summary"},
    )
    response = await asyncio.wait_for(target.acomplete(request), timeout_s)
    if not response.served_by:
        target._finish(request, response)
    return response.text.strip(), response.usage
