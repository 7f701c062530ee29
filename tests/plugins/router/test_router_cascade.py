"""Cascades: scorers, escalation, both calls costed, failures, streams."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import AgreementScorer, Cascade, LogprobScorer, QualityModel, TrainedScorer

from costmw import Chain, ConfigError, RateLimitError, Response, ServerError
from costmw.embeddings import HashingEmbedder


def refusing(name: str = "cheap") -> MockTarget:
    return MockTarget(lambda r: "I'm sorry, I can't help with that." if "hard" in r.last_user_text else "4",
                      name=name, price=(0.1, 0.4))


def test_refusal_escalates_and_both_calls_are_costed(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    cheap = refusing()
    chain = make_chain(ModelRouter([cheap, strong], strategy="cascade"))
    kept = chain.complete(ask("what is 2+2"), model="strong")
    assert kept.text == "4" and len(strong.calls) == 0
    assert kept.info["route"]["cascade"]["escalated"] is False
    assert "not needed" in kept.info["route"]["rejected"]["strong"]
    escalated = chain.complete(ask("a hard one"), model="strong")
    assert escalated.text == "strong: a hard one"
    info = escalated.info["route"]
    assert info["strategy"] == "cascade" and info["served"] == "strong" and info["score"] == 0.0
    assert "answer scored 0.0 < threshold 0.5" in info["rejected"]["cheap"]
    first, second = info["cascade"]["calls"]
    assert first["served_by"] == "target:cheap" and second["served_by"] == "target:strong"
    assert escalated.cost_usd == pytest.approx(first["cost_usd"] + second["cost_usd"])
    assert first["cost_usd"] > 0
    assert chain.ledger.rows()[-1].cost_usd == pytest.approx(escalated.cost_usd)
    assert escalated.savings[0].usd < 0  # escalating cost more than calling the strong target directly
    assert router_counts(chain) == {"cascade_kept": 1, "escalations": 1}


def router_counts(chain: Chain) -> dict[str, int]:
    counts = chain.plugins[0].stats()["counts"]  # type: ignore[attr-defined]
    return {k: v for k, v in counts.items() if k in ("cascade_kept", "escalations")}


def test_empty_answer_escalates(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    cheap = MockTarget(lambda r: "", name="cheap", price=(0.1, 0.1))
    chain = make_chain(ModelRouter([cheap, strong], strategy={"cascade": {"scorer": "refusal"}}))
    assert chain.complete(ask(), model="strong").served_by == "target:strong"


def test_agreement_scorer_draws_a_second_sample(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    answers = itertools.cycle(["The answer is 12.", "I get 15"])
    cheap = MockTarget(lambda r: next(answers), name="cheap", price=(0.1, 0.4))
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=AgreementScorer(), threshold=0.5)))
    response = chain.complete(ask("how many?"), model="strong")
    assert response.served_by == "target:strong"
    assert len(cheap.calls) == 2 and cheap.calls[1].params["temperature"] == 0.7
    calls = response.info["route"]["cascade"]["calls"]
    assert len(calls) == 3 and response.cost_usd == pytest.approx(sum(c["cost_usd"] for c in calls))
    same = MockTarget(lambda r: "Total: 12", name="same", price=(0.1, 0.4))
    chain = make_chain(ModelRouter([same, strong], strategy=Cascade(scorer="agreement")))
    kept = chain.complete(ask("how many?"), model="strong")
    assert kept.served_by == "target:same" and kept.info["route"]["score"] == 1.0
    calls = kept.info["route"]["cascade"]["calls"]
    assert len(calls) == 2 and len(same.calls) == 2  # the kept answer and the sample it agreed with
    assert kept.cost_usd == pytest.approx(sum(c["cost_usd"] for c in calls)) and calls[0]["cost_usd"] > 0


def test_logprob_scorer_reads_token_logprobs(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    def answer(confidence: float) -> Callable[..., Response]:
        raw = SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(
            content=[SimpleNamespace(logprob=float(np.log(confidence)))] * 3))])
        return lambda r: Response(text="maybe", raw=raw)

    for confidence, expected in [(0.9, "target:unsure"), (0.2, "target:strong")]:
        cheap = MockTarget(answer(confidence), name="unsure", price=(0.1, 0.1))
        chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer="logprob", threshold=0.5)))
        response = chain.complete(ask(), model="strong")
        assert response.served_by == expected
        assert cheap.calls[0].params["logprobs"] is True
        assert response.info["route"]["score"] == pytest.approx(confidence, abs=1e-3)
    plain = MockTarget(lambda r: "no logprobs here", name="plain", price=(0.1, 0.1))
    chain = make_chain(ModelRouter([plain, strong], strategy=Cascade(scorer=LogprobScorer())))
    assert chain.complete(ask(), model="strong").served_by == "target:plain"  # no opinion: the answer stands


def test_trained_and_combined_scorers(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    scorer = TrainedScorer(QualityModel(HashingEmbedder(64), c=1.0))
    prompts = [f"question {i}" for i in range(40)]
    answers = ["I am not sure" if i % 2 else f"It is {i}" for i in range(40)]
    scorer.fit(prompts, answers, [0.0 if i % 2 else 1.0 for i in range(40)])
    cheap = MockTarget(lambda r: "I am not sure" if "vague" in r.last_user_text else "It is 7", name="cheap",
                       price=(0.1, 0.1))
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=[scorer, "refusal"])))
    assert chain.complete(ask("question 7"), model="strong").served_by == "target:cheap"
    escalated = chain.complete(ask("question vague"), model="strong")
    assert escalated.served_by == "target:strong"
    assert escalated.info["route"]["cascade"]["scorer"] == "trained+refusal"
    with pytest.raises(ConfigError, match="unknown cascade scorer"):
        Cascade(scorer="vibes")


def test_function_scorer_failure_keeps_the_cheap_answer(make_chain: Callable[..., Chain],
                                                       strong: MockTarget) -> None:
    def broken(request: object, response: object) -> float:
        raise RuntimeError("scorer bug")

    cheap = refusing()
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=broken)))
    response = chain.complete(ask("hard"), model="strong")
    assert response.served_by == "target:cheap" and response.info["route"]["cascade"]["score"] is None


def test_failed_cheap_call_escalates_and_failed_escalation_keeps_cheap(make_chain: Callable[..., Chain],
                                                                        strong: MockTarget) -> None:
    def limited(r: object) -> str:
        raise RateLimitError("slow down", target="cheap")

    chain = make_chain(ModelRouter([MockTarget(limited, name="cheap", price=(0.1, 0.1)), strong],
                                   strategy="cascade"))
    response = chain.complete(ask(), model="strong")
    assert response.served_by == "target:strong"
    assert response.info["route"]["rejected"]["cheap"] == "cheap call failed: RateLimitError"

    def down(r: object) -> str:
        raise ServerError("down", target="strong")

    chain = make_chain(ModelRouter([refusing(), MockTarget(down, name="down", price=(9.0, 9.0))],
                                   strategy="cascade"))
    response = chain.complete(ask("hard"), model="down")
    assert response.served_by == "target:cheap" and "sorry" in response.text
    assert response.info["route"]["cascade"]["escalation_failed"] == "ServerError"


def test_streamed_cascade(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    chain = make_chain(ModelRouter([refusing(), strong], strategy="cascade"))
    kept = list(chain.stream(ask("easy"), model="strong"))
    assert "".join(c.text for c in kept if not c.done) == "4"
    chunks = list(chain.stream(ask("hard"), model="strong"))
    assert "".join(c.text for c in chunks if not c.done) == "strong: hard"  # the refusal never reaches the user
    final = chunks[-1].response
    assert final is not None and final.info["route"]["cascade"]["escalated"] is True
    assert final.cost_usd == pytest.approx(sum(c["cost_usd"] for c in final.info["route"]["cascade"]["calls"]))
