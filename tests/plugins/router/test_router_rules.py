"""Rules, capabilities, composition, explanations and savings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Cheapest, Rule, Rules

from costmw import Chain, ConfigError, InvalidRequestError, NoTargetError

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]


def served(chain: Chain, text: str = "hi", **kw: object) -> str:
    response = chain.complete(ask(text), model="strong", **kw)  # type: ignore[arg-type]
    return str(response.info["route"]["served"])


def test_rules_by_tag_regex_length_and_metadata(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                mid: MockTarget, strong: MockTarget) -> None:
    rules = Rules([
        Rule("strong", tags=["legal"]),
        Rule("mid", pattern=r"\bSQL\b"),
        Rule("mid", min_tokens=30),
        Rule("strong", metadata={"tier": "gold"}),
        Rule("cheap"),
    ])
    chain = make_chain(ModelRouter([cheap, mid, strong], strategy=rules))
    assert served(chain, options={"tags": ["legal", "x"]}) == "strong"
    assert served(chain, "write sql for this") == "mid"
    assert served(chain, "word " * 40) == "mid"
    assert served(chain, metadata={"tier": "gold"}) == "strong"
    assert served(chain, metadata={"tier": "silver"}) == "cheap"
    info = chain.complete(ask("please write SQL"), model="strong").info["route"]
    assert info["strategy"] == "rules" and info["chosen"] == "mid"
    assert "pattern" in info["reason"]
    assert info["rejected"] == {"cheap": "no rule chose it", "strong": "no rule chose it"}


def test_metadata_hint_and_rules_from_dicts(make_chain: Callable[..., Chain], cheap: MockTarget,
                                            strong: MockTarget) -> None:
    router = ModelRouter([cheap, strong], strategy={"name": "rules", "rules": [{"target": "cheap", "tags": "faq"}]})
    chain = make_chain(router)
    assert served(chain, options={"route": "cheap"}) == "cheap"
    assert served(chain, options={"tags": "faq"}) == "cheap"
    assert served(chain) == "strong"  # no rule matched: the requested model
    with pytest.raises(ConfigError, match="rules\\[0\\] has no 'target'"):
        ModelRouter([cheap], strategy={"name": "rules", "rules": [{"tags": ["x"]}]})
    with pytest.raises(ConfigError, match="bad pattern"):
        Rule("cheap", pattern="(")
    with pytest.raises(ConfigError, match="unknown needs"):
        Rule("cheap", needs=["telepathy"])


def test_target_lacking_a_capability_is_never_chosen(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                      mid: MockTarget, strong: MockTarget) -> None:
    chain = make_chain(ModelRouter([cheap, mid, strong], strategy=[Rules([Rule("cheap")]), Cheapest()]))
    info = chain.complete(ask(), model="strong", tools=TOOLS).info["route"]
    assert info["served"] == "mid"  # the rule's target lacks tools; the cheapest capable one serves
    assert info["rejected"]["cheap"] == "lacks tools"
    assert served(chain, response_format={"type": "json_object"}) == "cheap"
    assert served(chain, tools=TOOLS, response_format={"type": "json_object"}) == "strong"
    long_prompt = "word " * 700  # fits strong's window only
    info = chain.complete(ask(long_prompt), model="strong").info["route"]
    assert info["served"] == "strong"
    assert "context window 50" in info["rejected"]["cheap"] and "context window 500" in info["rejected"]["mid"]
    assert served(chain, options={"needs": ["tools"]}) == "mid"
    assert not cheap.calls or all(not c.params.get("tools") for c in cheap.calls)
    with pytest.raises(InvalidRequestError, match="unknown capabilities"):
        chain.complete(ask(), model="strong", options={"needs": ["flying"]})


def test_no_capable_target_raises(make_chain: Callable[..., Chain], cheap: MockTarget) -> None:
    chain = make_chain(ModelRouter([cheap], strategy="cheapest"))
    with pytest.raises(NoTargetError, match="cheap: lacks tools"):
        chain.complete(ask(), model="cheap", tools=TOOLS)
    assert cheap.calls == []


def test_composition_and_function_strategies(make_chain: Callable[..., Chain], cheap: MockTarget,
                                             strong: MockTarget) -> None:
    def pick(ctx: object) -> str | None:
        return "cheap" if "cheap please" in ctx.request.last_user_text else None  # type: ignore[attr-defined]

    router = ModelRouter([cheap, strong], strategy=Rules([Rule("strong", tags=["vip"])]) | pick)
    chain = make_chain(router)
    assert served(chain, "cheap please", options={"tags": ["vip"]}) == "strong"  # rules come first
    assert served(chain, "cheap please") == "cheap"
    info = chain.complete(ask("anything"), model="strong").info["route"]
    assert info["strategy"] == "requested" and info["served"] == "strong"


def test_unknown_strategy_and_targets_fail_fast(make_chain: Callable[..., Chain], cheap: MockTarget) -> None:
    with pytest.raises(ConfigError, match="unknown routing strategy 'psychic'"):
        ModelRouter([cheap], strategy="psychic")
    with pytest.raises(ConfigError, match="targets\\[0\\]"):
        ModelRouter([42])  # type: ignore[list-item]
    chain = make_chain(ModelRouter(["nowhere"]), )
    chain.add_target(cheap)
    with pytest.raises(ConfigError, match="'nowhere' is not in the chain"):
        chain.complete(ask(), model="cheap")


def test_targets_by_name_and_savings_in_the_ledger(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                   strong: MockTarget) -> None:
    chain = make_chain(ModelRouter(["cheap", "strong"], strategy="cheapest"))
    chain.add_target(cheap)
    chain.add_target(strong)
    response = chain.complete(ask("a question"), model="strong")
    assert response.served_by == "target:cheap"
    expected = strong.cost(response.usage.prompt_tokens, response.usage.completion_tokens) - response.cost_usd
    assert [s.plugin for s in response.savings] == ["model_router"]
    assert response.savings[0].usd == pytest.approx(expected)
    assert response.baseline_cost_usd == pytest.approx(expected + response.cost_usd)
    row = chain.ledger.rows()[-1]
    assert row.info["route"]["chosen"] == "cheap"
    assert row.savings["model_router"] == pytest.approx(expected)


def test_router_from_config() -> None:
    chain = Chain.from_config({
        "plugins": [{"model_router": {"targets": ["small", "big"], "strategy": [
            {"name": "rules", "rules": [{"target": "big", "pattern": "prove"}]}, "cheapest"]}}],
        "targets": [{"kind": "mock", "name": "small", "reply": "s", "price": [0.1, 0.1]},
                    {"kind": "mock", "name": "big", "reply": "b", "price": [9.0, 9.0]}],
    })
    assert chain.complete(ask("prove it"), model="big").text == "b"
    assert chain.complete(ask("say hi"), model="big").text == "s"
    with pytest.raises(ConfigError, match="model_router"):
        Chain.from_config({"plugins": [{"model_router": {"targets": ["small"], "colour": "red"}}]})


def test_strategy_naming_an_unknown_target_fails_when_the_chain_is_built(
        make_chain: Callable[..., Chain], cheap: MockTarget, strong: MockTarget) -> None:
    chain = make_chain(ModelRouter([cheap, strong], strategy=Rules([Rule("gpt-9")])))
    with pytest.raises(ConfigError, match="names \\['gpt-9'\\]"):
        chain.complete(ask(), model="strong")
    assert cheap.calls == strong.calls == []
