"""The template check: two prompts built from one template differ only in the slot that matters.

"Classify the sentiment of this review: <review>" asked about two different reviews, or a long
document followed by two different questions, embed almost alike (the shared template dominates,
and long texts are cut at the embedder's window), yet need different answers. When two texts
share most of their words as a common prefix and suffix, the parts in between are compared on
their own: they must be as similar as the cache's threshold asks of whole questions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

__all__ = ["TemplateCheck", "template_slots"]

_WORD = re.compile(r"\S+")
_FILLER = frozenset(
    "a an the my your our this that these those to of for in on at by with please".split()  # noqa: SIM905
)


def template_slots(query: str, cached: str, min_shared: int = 8, min_share: float = 0.5,
                   long_shared: int = 16) -> tuple[str, str] | None:
    """The differing middles of two texts that share a template, or None when they do not.

    A template is ``min_shared`` words or more, and at least ``min_share`` of the shorter text,
    kept as a common prefix and suffix, in a prompt that looks built from one: a shared part of
    ``long_shared`` words or more, or a structured one (a line break, or a "Label:" before the
    variable part). A sentence reworded in the middle ("is a platform to host" / "serves as a
    repository for") is a paraphrase, not a template. A question in which one word was swapped
    for another ("express" for "standard") counts too.
    """
    q, c = _WORD.findall(query), _WORD.findall(cached)
    if q == c:
        return None
    limit = min(len(q), len(c))
    p = 0
    while p < limit and q[p].lower() == c[p].lower():
        p += 1
    s = 0
    while s < limit - p and q[-1 - s].lower() == c[-1 - s].lower():
        s += 1
    shared = p + s
    one_word_swap = len(q) == len(c) == shared + 1 and shared >= 3
    if not one_word_swap:
        if shared < min_shared or shared < min_share * limit:
            return None
        structured = "\n" in query or "\n" in cached or any(w.endswith(":") for w in q[:p])
        if shared < long_shared and not structured:
            return None
    return " ".join(q[p:len(q) - s]), " ".join(c[p:len(c) - s])


class TemplateCheck:
    """Refuses a hit whose template slot differs in meaning (embedding similarity below threshold)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], threshold: float) -> None:
        self.embed = embed
        self.threshold = threshold

    def __call__(self, query: str, cached: str) -> bool:
        slots = template_slots(query, cached)
        if slots is None:
            return True
        a, b = slots
        words_a = {w.lower().strip(".,?!:;") for w in a.split()}
        words_b = {w.lower().strip(".,?!:;") for w in b.split()}
        if (words_a | words_b) <= _FILLER:
            return True  # only filler words changed ("an order" / "my order")
        if not a or not b:
            return False  # a templated prompt gained or lost its variable part
        vectors = self.embed([a, b])
        return float(np.dot(vectors[0], vectors[1])) >= self.threshold - 1e-6
