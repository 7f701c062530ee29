"""Provider prompt caching: cached reads and writes priced from the provider's usage fields,
the fake server's emulation of OpenAI's and Anthropic's rules, and Anthropic breakpoints."""

from __future__ import annotations

from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget

from costmw import Chain, Request
from costmw.plugin_api import Price, PromptCaching, prompt_caching
from costmw.testing import FakeOpenAIServer

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz123456"
SYSTEM = "You answer questions about the warehouse. " + " ".join(
    f"Shelf {i} holds part number P-{i:04d} in bin {i % 17}." for i in range(600))


def conversation(turns: int) -> list[list[dict[str, str]]]:
    """The prompts of a conversation that grows by one user turn and one answer each time."""
    prompts, messages = [], [{"role": "system", "content": SYSTEM}]
    for t in range(turns):
        messages = [*messages, {"role": "user", "content": f"Where is part P-{t:04d}? " + "Please be brief. " * 30}]
        prompts.append(messages)
        messages = [*messages, {"role": "assistant", "content": f"echo: Where is part P-{t:04d}?"}]
    return prompts


def test_price_charges_cached_reads_and_writes_at_their_own_rates() -> None:
    price = Price(2.0, 8.0, cache_read_per_1m=0.5, cache_write_per_1m=2.5)
    assert price.cost(1_000_000, 0) == pytest.approx(2.0)
    assert price.cost(1_000_000, 0, cached_tokens=600_000) == pytest.approx(0.4 * 2.0 + 0.6 * 0.5)
    assert price.cost(1_000_000, 0, cache_write_tokens=1_000_000) == pytest.approx(2.5)
    assert price.cache_discount(600_000) == pytest.approx(0.6 * 1.5)
    assert price.cache_discount(0, 1_000_000) == pytest.approx(-0.5)
    assert Price(2.0, 8.0).cost(1000, 0, cached_tokens=1000) == Price(2.0, 8.0).cost(1000, 0)


def test_price_map_gives_cache_prices_and_caching_rules() -> None:
    gpt, claude = Price.coerce({"input": 1, "output": 2, "cache_read": 0.1}), prompt_caching("claude-sonnet-4-5")
    assert gpt is not None and gpt.cache_read_per_1m == 0.1
    assert claude == PromptCaching("anthropic", breakpoints=True, min_tokens=1024, step_tokens=1)
    openai = prompt_caching("gpt-4o")
    assert openai is not None and not openai.breakpoints and openai.cacheable(1100) == 1024
    assert openai.cacheable(1000) == 0 and openai.cacheable(1300) == 1280


def test_openai_cached_tokens_are_priced_at_the_cache_read_price(fake_openai: FakeOpenAIServer) -> None:
    target = LiteLLMTarget("openai/gpt-4o", api_base=fake_openai.url, api_key=KEY)
    chain = Chain(targets=[target])
    first, second = (chain.complete(p, model="openai/gpt-4o") for p in conversation(2))
    assert first.usage.cached_tokens == 0
    u = second.usage
    assert u.cached_tokens >= 1024 and u.cached_tokens % 128 == 0 and u.cached_tokens < u.prompt_tokens
    assert fake_openai.chat_requests  # the counts came back over HTTP, in OpenAI's usage shape
    price = target.price
    assert price is not None and price.cache_read_per_1m == pytest.approx(1.25)
    expected = ((u.prompt_tokens - u.cached_tokens) * 2.5 + u.cached_tokens * 1.25 + u.completion_tokens * 10) / 1e6
    assert second.cost_usd == pytest.approx(expected)
    assert second.baseline_cost_usd == pytest.approx(price.cost(u.prompt_tokens, u.completion_tokens))


def test_short_prompts_are_not_cached(fake_openai: FakeOpenAIServer) -> None:
    target = LiteLLMTarget("openai/gpt-4o", api_base=fake_openai.url, api_key=KEY)
    short = [{"role": "user", "content": "hello there"}]
    for _ in range(2):
        r = Chain(targets=[target]).complete(short, model="openai/gpt-4o")
        assert r.usage.cached_tokens == 0


def test_anthropic_reads_and_writes_are_priced_and_breakpoints_placed(fake_openai: FakeOpenAIServer) -> None:
    target = LiteLLMTarget("anthropic/claude-sonnet-4-5", api_base=fake_openai.url, api_key=KEY)
    chain = Chain(targets=[target])
    responses = [chain.complete(p, model="anthropic/claude-sonnet-4-5") for p in conversation(3)]
    first, second, third = (r.usage for r in responses)
    assert first.cached_tokens == 0 and first.cache_write_tokens == first.prompt_tokens
    assert second.cached_tokens == first.prompt_tokens  # the whole first prompt, read back
    assert third.cache_write_tokens == third.prompt_tokens - third.cached_tokens > 0
    w = responses[0]
    expected = (first.prompt_tokens * 3.75 + first.completion_tokens * 15) / 1e6  # every input token written
    assert w.cost_usd == pytest.approx(expected)
    r = responses[2]
    expected = (third.cached_tokens * 0.3 + third.cache_write_tokens * 3.75 + third.completion_tokens * 15) / 1e6
    assert r.cost_usd == pytest.approx(expected) and r.cost_usd < r.baseline_cost_usd
    sent = fake_openai.messages_requests[-1]
    assert sent["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert sent["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


def test_no_breakpoints_no_anthropic_cache(fake_openai: FakeOpenAIServer) -> None:
    target = LiteLLMTarget("anthropic/claude-sonnet-4-5", api_base=fake_openai.url, api_key=KEY,
                           cache_breakpoints=False)
    for prompt in conversation(2):
        u = Chain(targets=[target]).complete(prompt, model="anthropic/claude-sonnet-4-5").usage
        assert u.cached_tokens == 0 and u.cache_write_tokens == 0


def test_breakpoints_need_a_long_enough_prefix_and_respect_the_callers_own() -> None:
    from costmw.adapters._breakpoints import with_breakpoints

    rules = PromptCaching("anthropic", breakpoints=True, min_tokens=1024, step_tokens=1)
    short = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert with_breakpoints(short, None, rules, "claude-sonnet-4-5") == short
    own = [{"role": "system", "content": SYSTEM, "cache_control": {"type": "ephemeral"}},
           {"role": "user", "content": "hi"}]
    assert with_breakpoints(own, None, rules, "claude-sonnet-4-5") == own
    marked = with_breakpoints(conversation(1)[0], None, rules, "claude-sonnet-4-5")
    assert [("cache_control" in m) for m in marked] == [True, True]


def test_prompt_caching_can_be_turned_off() -> None:
    assert LiteLLMTarget("openai/gpt-4o", prompt_caching=False).prompt_caching is None
    assert Request.create([{"role": "user", "content": "x"}], "m").model == "m"


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"])
def test_the_ledger_records_cached_tokens_and_credits_the_provider_cache(
        fake_openai: FakeOpenAIServer, tmp_path: Any, model: str) -> None:
    from costmw import Ledger

    target = LiteLLMTarget(model, api_base=fake_openai.url, api_key=KEY)
    chain = Chain(targets=[target], ledger=Ledger(tmp_path / "ledger.db"))
    responses = [chain.complete(p, model=model) for p in conversation(2)]
    assert chain.ledger.flush(10)  # rows reach the file from the ledger's writer thread
    rows = Ledger(tmp_path / "ledger.db").rows()
    last, u = rows[-1], responses[-1].usage
    price = target.price
    assert price is not None and u.cached_tokens > 0
    assert (last.cached_tokens, last.cache_write_tokens) == (u.cached_tokens, u.cache_write_tokens)
    assert last.savings["provider_cache"] == pytest.approx(price.cache_discount(u.cached_tokens, u.cache_write_tokens))
    for row in rows:
        assert row.baseline_cost_usd - row.cost_usd == pytest.approx(sum(row.savings.values()), abs=1e-12)
    first = rows[0]
    if first.cache_write_tokens:  # Anthropic's first call writes the prefix: a surcharge, booked as a negative line
        assert first.savings["provider_cache"] < 0
    assert chain.ledger.summary()["cached_tokens"] == sum(r.usage.cached_tokens for r in responses)
