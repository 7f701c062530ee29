"""PromptMinifier: send fewer input tokens for the same answer."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import (
    CallNext,
    Chunk,
    ConfigError,
    CostmwError,
    Message,
    Plugin,
    Price,
    PromptCaching,
    Request,
    Response,
    StreamNext,
    Target,
    Usage,
    conversation_key,
    count_message_tokens,
    count_tokens,
    message_text,
    register_plugin,
)

from ._history import SummaryCache, fit_history, render_transcript, split_head
from ._levels import LEVELS, Level
from ._longctx import LongContext
from ._messages import map_text
from ._prefix import SentTurns, kept_prefix, prompt_cost
from ._rules import RuleOptions, minify_text
from ._scorer import TokenScorer
from ._summary import cheapest_target, summarize_with

if TYPE_CHECKING:
    from costmw import Chain

__all__ = ["PromptMinifier"]

log = logging.getLogger("costmw.minifier")
_INLINE_CHARS = 20_000  # longer prompts are rewritten in a worker thread, off the event loop
_STABLE_TRIM = 0.6  # with a provider cache, cut old turns in blocks: to this share of the budget


@dataclass(slots=True)
class _Plan:
    """What the minifier did to one request (reported to the chain as facts)."""

    before: int
    after: int
    steps: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    summary_cost_usd: float = 0.0
    side_calls: list[tuple[Target, Usage]] = field(default_factory=list)


@register_plugin("prompt_minifier")
class PromptMinifier(Plugin):
    """Cut input tokens at three strengths while keeping what the answer depends on.

    ``level``: ``"safe"`` (deterministic rewrites only), ``"balanced"`` (also drops hedges and
    compresses long context to half with a local LM), ``"aggressive"`` (compresses to a third,
    from a lower length, history included). ``budget_tokens`` caps the conversation: older turns
    are replaced by a summary from ``summarizer`` (a target or a target's name; by default the
    cheapest capable target of the chain). ``compress``, ``rate``, ``target_tokens`` and
    ``min_tokens`` override the level's compression settings; ``scorer`` is the LM used to score
    tokens (a TokenScorer, a transformers model directory, or None for SmolLM2-135M).

    ``prefix_stable`` (on by default) keeps a conversation's cached prefix cached when the
    target's provider caches prompt prefixes: rewrites are made message by message, the same on
    every call; compression leaves the system prompt and the turns sent before alone; and old
    turns are cut in blocks (down to 60% of ``budget_tokens``), and only when the cut prompt, the
    summary call included, costs less than the previous prompt with the new turn appended, read
    from the provider's cache. Otherwise the minifier backs off and sends the latter, over the
    budget if need be. ``prefix_stable=False`` rewrites each request as if it were the first.
    """

    def __init__(
        self,
        level: str = "safe",
        budget_tokens: int | None = None,
        *,
        summarizer: Target | str | None = None,
        summary_max_tokens: int = 256,
        summary_timeout_s: float = 30.0,
        trim_to: float = 1.0,
        compress: bool | None = None,
        rate: float | None = None,
        target_tokens: int | None = None,
        min_tokens: int | None = None,
        scorer: TokenScorer | str | None = None,
        dedupe: bool = True,
        cache_size: int = 256,
        prefix_stable: bool = True,
    ) -> None:
        if level not in LEVELS:
            raise ConfigError(f"prompt_minifier: level must be one of {sorted(LEVELS)}, got {level!r}")
        if budget_tokens is not None and (not isinstance(budget_tokens, int) or budget_tokens < 64):
            raise ConfigError(f"prompt_minifier: budget_tokens must be an integer >= 64, got {budget_tokens!r}")
        if not 0 < trim_to <= 1:
            raise ConfigError(f"prompt_minifier: trim_to must be in (0, 1], got {trim_to!r}")
        if summarizer is not None and not isinstance(summarizer, (Target, str)):
            raise ConfigError(f"prompt_minifier: summarizer must be a target or a target name, got {summarizer!r}")
        if summary_max_tokens < 16 or summary_timeout_s <= 0 or cache_size < 1:
            raise ConfigError("prompt_minifier: summary_max_tokens >= 16, summary_timeout_s > 0 and cache_size >= 1")
        self.level: Level = LEVELS[level]
        self.budget_tokens = budget_tokens
        self.summarizer = summarizer
        self.summary_max_tokens = summary_max_tokens
        self.summary_timeout_s = summary_timeout_s
        self.trim_to = trim_to
        self.dedupe = dedupe
        self.summaries = SummaryCache(cache_size)
        self.prefix_stable = prefix_stable
        self.turns = SentTurns(max(1024, cache_size))
        self.long_context = LongContext.configure(self.level, compress=compress, rate=rate,
                                                  target_tokens=target_tokens, min_tokens=min_tokens, scorer=scorer)
        self.stats: Counter[str] = Counter()
        self._chain: Chain | None = None
        self._warned: set[str] = set()

    def bind(self, chain: Chain) -> None:
        self._chain = chain
        if isinstance(self.summarizer, str) and chain.targets and self.summarizer not in chain.targets:
            raise ConfigError(f"prompt_minifier: summarizer {self.summarizer!r} is not a target of this chain "
                              f"(targets: {', '.join(chain.targets)})")

    # -- the chain hooks -------------------------------------------------------------------
    async def handle(self, request: Request, call_next: CallNext) -> Response:
        changed, _ = await self.prepare(request)
        return await call_next(changed)

    async def astream(self, request: Request, call_next: StreamNext) -> AsyncIterator[Chunk]:
        changed, _ = await self.prepare(request)
        async for chunk in call_next(changed):
            yield chunk

    # -- the work --------------------------------------------------------------------------
    async def prepare(self, request: Request) -> tuple[Request, _Plan | None]:
        """The minified request and what was done (the request itself and None when nothing helps)."""
        self.stats["calls"] += 1
        if not request.options.minify:
            return request, None
        model, tools = request.model, request.params.get("tools")
        before: int = request.context.memo(
            "original_prompt_tokens", lambda: count_message_tokens(request.messages, model, tools))
        plan = _Plan(before, before)
        opts = RuleOptions(instructions=True, dedupe=self.dedupe, hedges=self.level.hedges,
                           compact_json="response_format" not in request.params)
        if sum(len(message_text(m)) for m in request.messages) > _INLINE_CHARS:
            messages = await asyncio.to_thread(lambda: [self._rewrite(m, opts) for m in request.messages])
        else:
            messages = [self._rewrite(m, opts) for m in request.messages]
        self._step(plan, "rules", request.messages, messages, model, tools)
        cache = self._provider_cache(request)
        key = conversation_key(request) if cache is not None else ""
        sent = self.turns.previous(key) if key else None
        stable = len(split_head(messages)[0]) if cache is not None else 0
        if self.budget_tokens is not None:
            if cache is not None and sent is not None:
                fitted, stable = await self._fit_stable(request, messages, plan, cache, opts, sent)
            else:
                fitted = await self._fit(messages, model, plan, _STABLE_TRIM if cache is not None else None)
            for target, usage in plan.side_calls:  # paid for whatever happens to the call next
                request.context.facts.call(target, usage, by=self.plugin_name)
            messages = self._step(plan, "history", messages, fitted, model, tools)
        if self.long_context.enabled:
            compressed = await self._compress(messages, model, plan, stable)
            messages = self._step(plan, "compression", messages, compressed, model, tools)
        if key:
            self.turns.remember(key, request.messages, messages if plan.after < before else request.messages)
        if plan.after >= before:
            self.stats["unchanged"] += 1
            request.context.remember("prompt_tokens", before)
            request.context.info["minifier"] = {"level": self.level.name, "tokens_before": before,
                                                "tokens_after": before, "removed_tokens": 0}
            return request, None
        self.stats["minified"] += 1
        detail = f"{before - plan.after} input tokens removed ({before} -> {plan.after})"
        request.context.facts.tokens_removed(self.plugin_name, before, plan.after,
                                             detail + (", less the history summary" if plan.summary_cost_usd else ""))
        request.context.remember("prompt_tokens", plan.after)
        request.context.info["minifier"] = {
            "level": self.level.name, "tokens_before": before, "tokens_after": plan.after,
            "removed_tokens": before - plan.after, "by_step": dict(plan.steps), **plan.notes}
        return request.replace(messages=messages), plan

    def _rewrite(self, message: Message, opts: RuleOptions) -> Message:
        role = message.get("role")
        role_opts = opts if role in ("system", "developer", "user") else RuleOptions(
            instructions=False, dedupe=False, hedges=False, compact_json=opts.compact_json)
        return map_text(message, lambda text: minify_text(text, role_opts))

    @staticmethod
    def _step(plan: _Plan, name: str, old: Sequence[Message], new: list[Message], model: str,
              tools: Any) -> list[Message]:
        """Count what step ``name`` saved (counting only when it changed something); returns ``new``."""
        if len(old) != len(new) or any(a is not b for a, b in zip(old, new)):
            now = count_message_tokens(new, model, tools)
            if now < plan.after:
                plan.steps[name] = plan.after - now
            plan.after = now
        return new

    def _provider_cache(self, request: Request) -> tuple[PromptCaching, Price | None] | None:
        """How the target that will serve ``request`` caches prompts (None: it does not, or prefix_stable is off)."""
        if not self.prefix_stable:
            return None
        target = request.context.target
        if target is None and self._chain is not None:
            try:
                target = self._chain.target_for(request)
            except CostmwError:
                return None
        if target is None or target.prompt_caching is None:
            return None
        return target.prompt_caching, target.price

    async def _fit_stable(self, request: Request, messages: list[Message], plan: _Plan,
                          cache: tuple[PromptCaching, Price | None], opts: RuleOptions,
                          sent: Any) -> tuple[list[Message], int]:
        """The history step when the provider caches prefixes: keep the previous prompt and append
        the new turns while that fits the budget or costs less than cutting; else cut in a block.
        Returns the messages and how many of them lead unchanged from the previous prompt."""
        model, tools = request.model, request.params.get("tools")
        caching, price = cache

        def count(ms: Sequence[Message]) -> int:
            return count_message_tokens(ms, model, tools)

        keep = kept_prefix(sent, request.messages, lambda m: self._rewrite(m, opts))
        if keep is None:
            return await self._fit(messages, model, plan, _STABLE_TRIM), 0
        budget = self.budget_tokens or 0
        kept = prompt_cost(keep, sent.sent, count, caching, price)
        if count_message_tokens(keep, model) <= budget:  # the budget counts messages, as fit_history does
            return keep, len(sent.sent)
        dry = await fit_history(messages, budget=budget, count=lambda ms: count_message_tokens(ms, model),
                                summarize=None, cache=self.summaries, salt=self._summary_salt(),
                                trim_to=_STABLE_TRIM, summary_tokens=self.summary_max_tokens)
        cut = prompt_cost(dry.messages, sent.sent, count, caching, price)
        extra = 0.0
        if dry.how == "truncated" and (self.summarizer is not None or self._chain is not None):
            summarizer = self._summary_target(None, [])
            replaced = count(messages[:-1]) - count(dry.messages[:-1])
            if summarizer is not None and summarizer.price is not None:
                extra = summarizer.price.cost(max(0, replaced), self.summary_max_tokens)
            if price is not None:
                extra += self.summary_max_tokens * price.input_per_1m / 1e6
        plan.notes["prefix"] = {"keep_usd": round(kept.usd, 8), "cut_usd": round(cut.usd + extra, 8),
                                "keep_tokens": kept.tokens, "keep_cached_tokens": kept.cached}
        if kept.usd <= cut.usd + extra:
            plan.notes["prefix"]["kept"] = True
            self.stats["prefix_kept"] += 1
            return keep, len(sent.sent)
        plan.notes["prefix"]["kept"] = False
        self.stats["prefix_cut"] += 1
        return await self._fit(messages, model, plan, _STABLE_TRIM), 0

    async def _fit(self, messages: list[Message], model: str, plan: _Plan,
                   trim_to: float | None = None) -> list[Message]:
        async def summarize(previous: str | None, older: Any) -> tuple[str, float]:
            target = self._summary_target(previous, older)
            if target is None:
                raise LookupError("no target can write the summary")
            plan.notes["summarizer"] = target.name
            text, usage = await summarize_with(target, previous, older, max_tokens=self.summary_max_tokens,
                                               timeout_s=self.summary_timeout_s)
            plan.side_calls.append((target, usage))
            return text, target.cost(usage.prompt_tokens, usage.completion_tokens)

        summarizer = summarize if (self.summarizer is not None or self._chain is not None) else None
        fit = await fit_history(messages, budget=self.budget_tokens or 0,
                                count=lambda ms: count_message_tokens(ms, model), summarize=summarizer,
                                cache=self.summaries, salt=self._summary_salt(),
                                trim_to=self.trim_to if trim_to is None else min(self.trim_to, trim_to),
                                summary_tokens=self.summary_max_tokens)
        if fit.how != "unchanged":
            plan.notes["history"] = fit.how
            plan.notes["history_replaced_messages"] = fit.replaced
            self.stats[f"history_{fit.how}"] += 1
        if fit.error:
            self._warn_once("summary", f"prompt_minifier: the summary failed, older turns were dropped: {fit.error}")
        if fit.summary_cost_usd:
            plan.summary_cost_usd += fit.summary_cost_usd
            plan.notes["summary_cost_usd"] = fit.summary_cost_usd
        return fit.messages

    def _summary_salt(self) -> str:
        s = self.summarizer
        return s.name if isinstance(s, Target) else s or "cheapest"

    def _summary_target(self, previous: str | None, older: Any) -> Target | None:
        if isinstance(self.summarizer, Target):
            return self.summarizer
        chain = self._chain
        if chain is None:
            return None
        targets = chain.targets
        if isinstance(self.summarizer, str):
            return targets.get(self.summarizer)
        prompt = count_tokens(render_transcript(previous, older)) + 80
        return cheapest_target(targets.values(), prompt, self.summary_max_tokens)

    async def _compress(self, messages: list[Message], model: str, plan: _Plan, keep: int = 0) -> list[Message]:
        """Compress long texts, leaving the first ``keep`` messages (a cached prefix) as they are."""
        if keep >= len(messages):
            return messages
        try:
            result = await asyncio.to_thread(self.long_context.apply, messages[keep:], model)
        except Exception as exc:  # a failing scorer never fails the call
            self.stats["compress_errors"] += 1
            self._warn_once("compress", f"prompt_minifier: compression skipped: {type(exc).__name__}: {exc}")
            return messages
        if result.scored_tokens:
            plan.notes["compression"] = {"rate": result.rate, "scored_tokens": result.scored_tokens,
                                         "seconds": round(result.seconds, 3), "texts": result.texts}
        return [*messages[:keep], *result.messages]

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(message)
