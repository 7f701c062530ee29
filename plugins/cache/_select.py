"""Choosing the answer to serve among the nearest cached questions, or none."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._entry import Entry

__all__ = ["Choice", "select"]

_EPS = 1e-6
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Choice:
    """``entry`` to serve (None: a miss), its ``similarity``, and ``reason`` for a miss."""

    entry: Entry | None
    similarity: float = 0.0
    tier: str = "semantic"
    reason: str = ""


def _clip(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _answer(entry: Entry) -> Any:
    return entry.response.get("text"), entry.response.get("tool_calls")


def select(query: str, exact_key: str, found: Sequence[tuple[Entry, float]], *, threshold: float,
           margin: float, verify: Callable[[str, str], Any] | None, fallthrough: float = 0.05) -> Choice:
    """Pick the hit for ``query`` among ``found`` (entry, cosine) pairs, or refuse.

    A candidate must reach ``threshold`` and pass ``verify``; the closest passing one is the
    pick. It is refused when a question judged different by ``verify`` was closer by more than
    ``fallthrough`` and has another answer, or when another candidate that ``verify`` passes, with
    a different answer, is within ``margin`` of it (above the threshold or just under it): the
    query is then ambiguous, unless the contenders are equal but for letter case and the query
    spells them like one of them (see :func:`_case_twin`). Candidates with the same answer never
    block each other.
    """
    ranked = sorted(((e, _clip(s)) for e, s in found), key=lambda pair: -pair[1])
    for entry, _ in ranked:
        if entry.key == exact_key:
            return Choice(entry, 1.0, "exact")
    if not ranked:
        return Choice(None, reason="empty")
    top = ranked[0][1]
    passing: list[tuple[Entry, float]] = []
    refused: list[tuple[Entry, float]] = []
    refusal = ""
    below: list[tuple[Entry, float]] = []
    for entry, sim in ranked:
        if sim < threshold - _EPS:  # cannot be served, but may still make the query ambiguous
            below.append((entry, sim))
            continue
        verdict = True if verify is None or entry.text == query else verify(query, entry.text)
        if verdict:
            passing.append((entry, sim))
        else:
            refused.append((entry, sim))
            refusal = refusal or f"verifier:{getattr(verdict, 'reason', '') or 'refused'}"
    if not passing:
        return Choice(None, top, reason=refusal or "below_threshold")
    best, best_sim = passing[0]
    answer = _answer(best)
    if any(sim > best_sim + fallthrough and _answer(other) != answer for other, sim in refused):
        return Choice(None, best_sim, reason=refusal or "closer_question_differs")
    rivals = [(other, sim) for other, sim in passing[1:] if best_sim - sim < margin and _answer(other) != answer]
    for other, sim in below:  # a question just under the threshold counts too
        if best_sim - sim >= margin:
            break
        if _answer(other) != answer and (verify is None or verify(query, other.text)):
            rivals.append((other, sim))
    if rivals:
        twin = _case_twin(query, [(best, best_sim), *rivals])
        if twin is None or twin[1] < threshold - _EPS:
            return Choice(None, best_sim, reason="ambiguous")
        best, best_sim = twin
    return Choice(best, best_sim, "semantic")


def _case_twin(query: str, contenders: Sequence[tuple[Entry, float]]) -> tuple[Entry, float] | None:
    """Among cached questions equal but for letter case ("`AudioFolder`" / "`audiofolder`"), which
    an uncased embedder cannot tell apart, the one whose spelling the query shares most; None when
    the contenders differ in more than case or the query's spelling matches none of them best."""
    if len({entry.text.casefold() for entry, _ in contenders}) != 1:
        return None
    asked = set(_WORD.findall(query))
    shared = sorted(((len(asked.intersection(_WORD.findall(e.text))), e, s) for e, s in contenders),
                    key=lambda item: -item[0])
    if shared[0][0] == shared[1][0]:
        return None
    return shared[0][1], shared[0][2]
