"""Helpers for the semantic cache tests: a deterministic mock model and cache factories."""

from __future__ import annotations

from typing import Any

from costmw.adapters import MockTarget
from costmw.plugins.cache import SemanticCache, Store

from costmw import Chain
from costmw.embeddings import HashingEmbedder

MODEL = "gpt-4o-mini"
PRICE = (0.15, 0.60)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def answer_by_topic(request: Any) -> str:
    """A deterministic 'model': answers name the topic the last user turn asks about."""
    return f"answer to: {request.last_user_text.lower().strip(' ?.')}"


def make_chain(cache: SemanticCache, handler: Any = answer_by_topic, **target: Any) -> tuple[Chain, MockTarget]:
    mock = MockTarget(handler, model=MODEL, price=PRICE, **target)
    return Chain([cache], [mock]), mock


def make_cache(store: Store | str = "memory", **options: Any) -> SemanticCache:
    options.setdefault("embedder", HashingEmbedder(256))
    options.setdefault("threshold", 0.8)
    return SemanticCache(store=store, **options)
