"""Verifiers behind the one protocol (:mod:`._protocol`), and building one from a config value.

:class:`GuardedVerifier` puts the hard guards (:mod:`._guards`) in front of any verifier: a pair
a guard settles never reaches the model. :class:`FunctionVerifier` makes a plain function
``(query, cached) -> bool`` a verifier.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._guards import guard
from ._protocol import CacheVerdict, CacheVerifier

__all__ = ["VERIFIERS", "FunctionVerifier", "GuardedVerifier", "make_verifier"]

#: Verifier names a config may give (``SemanticCache(verifier="learned")``).
VERIFIERS = ("learned", "judge", "guards")


def _source_hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class FunctionVerifier:
    """A function ``(query, cached) -> bool | CacheVerdict`` as a verifier (run in a worker thread)."""

    def __init__(self, fn: Callable[[str, str], Any]) -> None:
        self.fn = fn
        self.version = f"function/{getattr(fn, '__qualname__', type(fn).__name__)}"

    def check(self, query: str, cached: str) -> CacheVerdict:
        verdict = self.fn(query, cached)
        if isinstance(verdict, CacheVerdict):
            return verdict
        ok = bool(verdict)
        return CacheVerdict(ok, 1.0 if ok else 0.0, "function" if ok else f"function:{getattr(verdict, 'reason', '')}")

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        return await asyncio.to_thread(lambda: [self.check(query, c) for c in candidates])


class GuardedVerifier:
    """The hard guards, then ``model`` for every pair they do not settle (None: guards only,
    and a pair no guard refuses is served)."""

    def __init__(self, model: CacheVerifier | None) -> None:
        self.model = model
        calibrate_on = getattr(model, "calibrate_on", None)
        if callable(calibrate_on):  # the model's error rate is counted on the pairs it is asked about
            calibrate_on(lambda query, cached: guard(query, cached) is None)
        guards = _source_hash(Path(__file__).with_name("_guards.py"))
        self.version = f"guards/{guards}+{model.version if model is not None else 'none'}"

    @property
    def threshold(self) -> float | None:
        """The model's calibrated operating point (a probability), when it has one."""
        value = getattr(self.model, "threshold", None)
        return float(value) if isinstance(value, (int, float)) else None

    def check(self, query: str, cached: str) -> CacheVerdict:
        refused = guard(query, cached)
        if refused is not None:
            return refused
        return self.model.check(query, cached) if self.model is not None else CacheVerdict(True, 1.0, "guards")

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        guarded = await asyncio.to_thread(lambda: [guard(query, c) for c in candidates])
        open_ = [c for c, g in zip(candidates, guarded) if g is None]
        if not open_:
            return [g for g in guarded if g is not None]
        if self.model is None:
            judged = [CacheVerdict(True, 1.0, "guards") for _ in open_]
        else:
            judged = list(await self.model.acheck_many(query, open_))
        it = iter(judged)
        return [g if g is not None else next(it) for g in guarded]


def make_verifier(spec: Any, max_error: float) -> CacheVerifier | None:
    """A verifier from ``SemanticCache(verifier=...)``: True or "learned" (the default, the
    guards and the learned model), "guards" (guards only), "judge" (the learned model asking an
    LLM about pairs it is unsure of), False or None (no verifier), a :class:`CacheVerifier`, or a
    function ``(query, cached) -> bool``. Raises ConfigError for anything else."""
    if spec is False or spec is None:
        return None
    if spec is True or spec == "learned":
        return GuardedVerifier(learned_verifier(max_error))
    if spec == "guards":
        return GuardedVerifier(None)
    if spec == "judge":
        from ._judge import LLMJudge

        return GuardedVerifier(LLMJudge(learned_verifier(max_error)))
    if isinstance(spec, str):
        raise ConfigError(f"unknown cache verifier {spec!r}: use one of {list(VERIFIERS)}, true or false")
    if isinstance(spec, CacheVerifier):
        return spec
    if callable(spec):
        return FunctionVerifier(spec)
    raise ConfigError(f"verifier must be a verifier name, true, false, a CacheVerifier or a function "
                      f"(query, cached) -> bool, got {type(spec).__name__}")


def learned_verifier(max_error: float) -> CacheVerifier:
    """The learned verifier at ``max_error``; any failure to set it up propagates (the cache
    then serves exact repeats only)."""
    from ._learned import LearnedVerifier

    try:
        return LearnedVerifier(max_error=max_error)  # type: ignore[no-any-return]
    except ConfigError as exc:  # a damaged model folder is a fault of the install, not of the caller
        raise RuntimeError(str(exc)) from exc
