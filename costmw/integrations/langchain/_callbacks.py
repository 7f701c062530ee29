"""Collect what LangChain calls through costmw cost and saved: a callback handler and ``costmw_usage()``.

Calls made by :class:`CostmwChatModel` are seen when the model run ends (their
``response_metadata["costmw"]``); calls made through :class:`CostmwMiddleware` (including cache
hits, which run no model) arrive as the custom event ``"costmw"``. Each costmw request is counted
once, however many of those reports it produces.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

__all__ = ["EVENT", "CostmwCallbackHandler", "CostmwUsage", "costmw_usage"]

EVENT = "costmw"


class CostmwCallbackHandler(BaseCallbackHandler):
    """Totals of costmw's numbers for every call made while it is attached (thread-safe)."""

    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.rows: list[dict[str, Any]] = []

    def record(self, data: Mapping[str, Any]) -> bool:
        """Add one call's costmw numbers; returns False when that request was already counted."""
        key = str(data.get("request_id") or "")
        with self._lock:
            if key and key in self._seen:
                return False
            if key:
                self._seen.add(key)
            self.rows.append(dict(data))
            return True

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                meta = generation.message.response_metadata if isinstance(generation, ChatGeneration) else {}
                data = meta.get(EVENT) if isinstance(meta, Mapping) else None
                if isinstance(data, Mapping):
                    self.record(data)

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == EVENT and isinstance(data, Mapping):
            self.record(data)

    # -- totals ----------------------------------------------------------------------------
    def _sum(self, key: str) -> float:
        with self._lock:
            return float(sum(float(r.get(key) or 0.0) for r in self.rows))

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.rows)

    @property
    def cost_usd(self) -> float:
        return self._sum("cost_usd")

    @property
    def baseline_cost_usd(self) -> float:
        return self._sum("baseline_cost_usd")

    @property
    def saved_usd(self) -> float:
        return max(0.0, self.baseline_cost_usd - self.cost_usd)

    @property
    def saved_pct(self) -> float:
        baseline = self.baseline_cost_usd
        return 100.0 * self.saved_usd / baseline if baseline else 0.0

    def by_served_by(self) -> dict[str, int]:
        """How many calls each server answered (``cache:semantic``, ``target:gpt-4o-mini``, ...)."""
        counts: dict[str, int] = defaultdict(int)
        with self._lock:
            for r in self.rows:
                counts[str(r.get("served_by") or "")] += 1
        return dict(counts)

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "cost_usd": self.cost_usd,
                "baseline_cost_usd": self.baseline_cost_usd, "saved_usd": self.saved_usd,
                "saved_pct": self.saved_pct, "by_served_by": self.by_served_by(),
                "prompt_tokens": int(self._sum("prompt_tokens")),
                "completion_tokens": int(self._sum("completion_tokens"))}

    def __repr__(self) -> str:
        return (f"CostmwUsage(calls={self.calls}, cost_usd={self.cost_usd:.6f}, "
                f"baseline_cost_usd={self.baseline_cost_usd:.6f}, saved_usd={self.saved_usd:.6f})")


CostmwUsage = CostmwCallbackHandler

_current: ContextVar[CostmwCallbackHandler | None] = ContextVar("costmw_usage", default=None)
register_configure_hook(_current, True)


@contextmanager
def costmw_usage() -> Iterator[CostmwCallbackHandler]:
    """``with costmw_usage() as u:`` attaches a handler to every LangChain run inside the block."""
    handler = CostmwCallbackHandler()
    token = _current.set(handler)
    try:
        yield handler
    finally:
        _current.reset(token)
