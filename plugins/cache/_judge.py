"""LLMJudge: the learned verifier, with a second opinion from the chain's cheapest target on the
pairs it is unsure of. Off by default (``SemanticCache(verifier="judge")``); every call it makes
is priced in the ledger as a cost of the cache.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import ConfigError, Request, Response

from ._protocol import CacheVerdict, CacheVerifier

if TYPE_CHECKING:
    from costmw import Chain
    from costmw.plugin_api import Target

__all__ = ["JUDGE_CALLS", "LLMJudge"]

log = logging.getLogger("costmw.cache")

#: The calls a judge made while the cache awaited it: the cache sets a list here around each
#: batch and prices what was appended (target, response) for the request it serves.
JUDGE_CALLS: contextvars.ContextVar[list[tuple[Any, Response]] | None] = contextvars.ContextVar(
    "costmw_cache_judge_calls", default=None)

_INSTRUCTIONS = ("You decide whether one stored answer can be reused. Reply with exactly one word: "
                 "yes if an answer to question A fully and correctly answers question B, otherwise no.")


class LLMJudge:
    """Asks an LLM about candidates whose probability from ``model`` lies in [``low``, ``high``):
    its yes or no replaces the model's verdict there; outside that band the model decides alone,
    and so does :meth:`check` (the synchronous form never calls out). ``target``: a target name
    of the chain (default: its cheapest priced target). A judge call that fails or times out
    keeps the model's verdict."""

    def __init__(self, model: CacheVerifier, target: str | None = None, *, low: float = 0.2, high: float = 0.9,
                 timeout_s: float = 10.0) -> None:
        if not 0.0 <= low < high <= 1.0:
            raise ConfigError(f"judge bounds must satisfy 0 <= low < high <= 1, got low={low!r}, high={high!r}")
        self.model = model
        self.target_name = target
        self.low, self.high = float(low), float(high)
        self.timeout_s = float(timeout_s)
        self.calls = 0
        self._chain: Chain | None = None

    @property
    def version(self) -> str:
        return f"judge({self.low},{self.high})+{self.model.version}"

    def bind(self, chain: Chain) -> None:
        self._chain = chain

    def check(self, query: str, cached: str) -> CacheVerdict:
        return self.model.check(query, cached)

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        verdicts = list(await self.model.acheck_many(query, candidates))
        target = self._target()
        if target is None:
            return verdicts
        grey = [i for i, v in enumerate(verdicts) if self.low <= v.probability < self.high]
        answers = await asyncio.gather(*(self._ask(target, query, candidates[i]) for i in grey))
        for i, answer in zip(grey, answers):
            if answer is not None:
                verdicts[i] = CacheVerdict(answer, verdicts[i].probability, "judge",
                                           f"model {verdicts[i].probability:.2f}, judge {'yes' if answer else 'no'}")
        return verdicts

    def _target(self) -> Target | None:
        if self._chain is None:
            return None
        targets = self._chain.targets
        if self.target_name is not None:
            return targets.get(self.target_name)
        priced = [t for t in targets.values() if t.price is not None and getattr(t, "kind", "") != "classifier"]
        if not priced:
            return next(iter(targets.values()), None)
        return min(priced, key=lambda t: t.price.cost(150, 1) if t.price is not None else 0.0)

    async def _ask(self, target: Target, query: str, cached: str) -> bool | None:
        request = Request.create(
            [{"role": "system", "content": _INSTRUCTIONS},
             {"role": "user", "content": f"Question A: {cached}\nQuestion B: {query}"}],
            target.model, params={"max_tokens": 2, "temperature": 0}, metadata={"purpose": "cache_judge"})
        try:
            response = await asyncio.wait_for(target.acomplete(request), self.timeout_s)
        except Exception as exc:
            log.debug("costmw semantic cache: the judge call failed: %s", exc)
            return None
        self.calls += 1
        made = JUDGE_CALLS.get()
        if made is not None:
            made.append((target, response))
        word = response.text.strip().lower()
        return True if word.startswith("yes") else False if word.startswith("no") else None
