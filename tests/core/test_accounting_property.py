"""Property: over random chains, every ledger row reconciles and its baseline is the request as sent.

Any subset and order of the built-in plugins, hits and misses, cascades that keep or escalate,
targets that fail (retryably or not) and streams the caller abandons.
"""

from __future__ import annotations

import zlib
from typing import Any

from costmw.adapters import MockTarget
from costmw.plugins import Batcher, MemoryStore, ModelRouter, PromptMinifier, SemanticCache
from costmw.plugins.router import Cascade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmw import Chain, CostmwError, Plugin, Price, Request, ServerError
from costmw.embeddings import HashingEmbedder
from costmw.plugin_api import count_message_tokens

PRICES = {"gpt-4o": Price(2.5, 10.0), "gpt-4o-mini": Price(0.15, 0.6)}
PROMPTS = [
    "What is the capital of France?",
    "Hello! Could you please, if possible, kindly explain what a hash map is? Thanks so much!",
    "Summarize: the meeting moved to Tuesday; bring the quarterly numbers. fail-cheap",
    "Translate 'good morning' into German, please. fail-all",
    "Basically, I would really like to know how many legs a spider has.",
]


def answer(model: str) -> Any:
    def handler(request: Request) -> str:
        text = request.last_user_text
        if "fail-all" in text and zlib.crc32(request.id.encode()) % 2 == 0:
            raise RuntimeError("the model is down")
        if "fail-cheap" in text and model == "gpt-4o-mini":
            raise ServerError("overloaded", target=model, status_code=503)
        return f"{model} says: " + " ".join(text.split()[: 3 + len(text) % 7])

    return handler


def scorer(request: Request, response: Any) -> float:
    return float(zlib.crc32(response.text.encode()) % 2)  # keeps half the cheap answers, escalates half


def make_plugin(kind: str, cheap: MockTarget, strong: MockTarget) -> Plugin:
    if kind == "cache":
        return SemanticCache(store=MemoryStore(), embedder=HashingEmbedder(128), threshold=0.9, verifier="guards")
    if kind == "minifier":
        return PromptMinifier()
    if kind == "cascade":
        return ModelRouter([cheap, strong], strategy=Cascade(cheap.name, strong.name, scorer=scorer))
    if kind == "cheapest":
        return ModelRouter([cheap, strong], strategy="cheapest")
    return Batcher(max_batch_size=4, max_wait_ms=1)


calls = st.lists(st.tuples(st.integers(0, len(PROMPTS) - 1), st.sampled_from(["gpt-4o", "gpt-4o-mini"]),
                           st.sampled_from(["complete", "stream", "cancel"]), st.integers(0, 3)),
                 min_size=1, max_size=6)
kinds = st.lists(st.sampled_from(["cache", "minifier", "cascade", "cheapest", "batcher"]), unique=True,
                 max_size=4).filter(lambda ks: not {"cascade", "cheapest"} <= set(ks)).map(
    lambda ks: sorted(ks, key=lambda k: k == "batcher"))  # the batcher calls the target itself: it comes last


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=kinds, work=calls)
def test_every_row_reconciles_and_its_baseline_is_the_request_as_sent(kinds: list[str],
                                                                      work: list[tuple[int, str, str, int]]) -> None:
    cheap = MockTarget(answer("gpt-4o-mini"), name="gpt-4o-mini", price=PRICES["gpt-4o-mini"])
    strong = MockTarget(answer("gpt-4o"), name="gpt-4o", price=PRICES["gpt-4o"])
    chain = Chain(plugins=[make_plugin(k, cheap, strong) for k in kinds], targets=[strong, cheap])
    sent = []
    try:
        for prompt, model, how, keep in work:
            messages = [{"role": "user", "content": PROMPTS[prompt]}]
            if how != "cancel" or keep:  # a stream never read was never sent
                sent.append((messages, model))
            try:
                if how == "complete":
                    chain.complete(messages, model=model)
                else:
                    stream = chain.stream(messages, model=model)
                    for _ in range(keep if how == "cancel" else 10_000):
                        if next(stream, None) is None:
                            break
                    stream.close()  # type: ignore[attr-defined]
            except CostmwError:
                pass
        rows = chain.ledger.rows()
    finally:
        chain.close()
    assert len(rows) == len(sent)
    for row in rows:
        assert abs(row.baseline_cost_usd - row.cost_usd - sum(row.savings.values())) < 1e-9, row
        assert abs(row.savings.get("unexplained", 0.0)) < 1e-9, row  # one counter on both sides: all explained
        assert row.cost_usd >= 0 and row.status in ("ok", "error", "cancelled")
    for row, (messages, model) in zip(rows, sent, strict=True):  # one call at a time: rows in order
        completion = 0 if row.status == "error" else row.completion_tokens
        independent = PRICES[model].cost(count_message_tokens(messages, model), completion)
        assert row.requested_model == model and abs(row.baseline_cost_usd - independent) < 1e-12, row
