"""Sticky routing: a conversation stays on the target whose prompt cache is warm unless moving pays."""

from __future__ import annotations

from typing import Any

from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Rule, Rules

import costmw
from costmw.plugin_api import PromptCaching

SYSTEM = {"role": "system", "content": " ".join(f"Rule {i}: ship order {i} from depot {i % 7}." for i in range(400))}


def targets(cheap_price: Any) -> tuple[MockTarget, MockTarget]:
    big = MockTarget(lambda r: "big answer", name="big", price=(2.5, 10.0, 0.25))
    big.prompt_caching = PromptCaching("openai")
    cheap = MockTarget(lambda r: "cheap answer", name="cheap", price=cheap_price)
    cheap.prompt_caching = PromptCaching("openai")
    return big, cheap


def two_turns(big: MockTarget, cheap: MockTarget, sticky: bool = True) -> tuple[costmw.Response, costmw.Response]:
    router = ModelRouter([big, cheap], strategy=Rules([Rule("cheap", tags=["easy"])]), sticky=sticky)
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Where does order 12 ship from?"}]
    with costmw.Chain([router]) as chain:
        first = chain.complete(messages, model="big")
        messages += [first.message(), {"role": "user", "content": "And order 13?"}]
        second = chain.complete(messages, model="big", metadata={"tags": ["easy"]})
    return first, second


def test_a_move_that_costs_more_than_the_warm_cache_saves_is_not_taken() -> None:
    big, cheap = targets((2.0, 8.0))  # a little cheaper at list price, but cold
    first, second = two_turns(big, cheap)
    assert first.served_by == "target:big"
    assert second.served_by == "target:big"
    sticky = second.info["route"]["sticky"]
    assert sticky["warm"] == "big" and not sticky["switched"] and sticky["cached_tokens"] >= 1024
    assert sticky["stay_usd"] < sticky["switch_usd"]
    assert "warm prompt cache" in second.info["route"]["rejected"]["cheap"]


def test_a_move_that_saves_more_than_the_warm_cache_is_taken() -> None:
    big, cheap = targets((0.15, 0.6))
    _, second = two_turns(big, cheap)
    assert second.served_by == "target:cheap"
    sticky = second.info["route"]["sticky"]
    assert sticky["switched"] and sticky["switch_usd"] < sticky["stay_usd"]


def test_sticky_off_moves_as_the_strategy_says() -> None:
    big, cheap = targets((2.0, 8.0))
    _, second = two_turns(big, cheap, sticky=False)
    assert second.served_by == "target:cheap" and "sticky" not in second.info["route"]


def test_a_move_to_a_dearer_target_is_always_taken() -> None:
    cheap, big = targets((0.15, 0.6))[::-1]  # the conversation starts on the cheap one
    router = ModelRouter([big, cheap], strategy=Rules([Rule("big", tags=["hard"])]))
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Where does order 12 ship from?"}]
    with costmw.Chain([router]) as chain:
        first = chain.complete(messages, model="cheap")
        messages += [first.message(), {"role": "user", "content": "Prove it."}]
        second = chain.complete(messages, model="cheap", metadata={"tags": ["hard"]})
    assert first.served_by == "target:cheap" and second.served_by == "target:big"
    assert "sticky" not in second.info["route"]
