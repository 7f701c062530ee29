"""The verifier protocol: how SemanticCache asks "does the answer stored for one question also
answer this one?".

A verifier returns a :class:`CacheVerdict` per candidate, with a calibrated probability that the
stored answer serves the query, and a short reason. The cache serves a candidate only when the
verdict says so; it never looks inside a verifier. Any object with these methods can be passed
as ``SemanticCache(verifier=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["CacheVerdict", "CacheVerifier"]


@dataclass(frozen=True, slots=True)
class CacheVerdict:
    """One judgement of a (query, cached question) pair.

    ``ok``: serve the cached answer. ``probability``: the calibrated probability that the cached
    answer answers the query (1.0 / 0.0 for hard guards). ``reason``: a short, stable label for
    why (``"model"``, ``"guard:number"``, ``"judge"``, ...); ``detail`` is free text for logs.
    """

    ok: bool
    probability: float
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


@runtime_checkable
class CacheVerifier(Protocol):
    """What SemanticCache needs from a verifier.

    ``version`` changes whenever what the verifier derives from a text changes (code or model),
    so stores can tell stale derived data from fresh.
    """

    @property
    def version(self) -> str: ...

    def check(self, query: str, cached: str) -> CacheVerdict: ...

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]: ...
