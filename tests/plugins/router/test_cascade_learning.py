"""A cascade that learns from its own traffic: escalations (and checked kept answers) teach the
confidence model's ``similar_right`` how the cheap model does on prompts like these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Cascade, ConfidenceModel, ConfidenceScorer, NeighbourRate
from costmw.plugins.router._cascade import answers_agree
from costmw.plugins.router._confidence_data import fit_confidence
from costmw.plugins.router._neighbours import TrafficMemory
from test_router_neighbours import kinds_rows, unit

from costmw import Chain, ConfigError, Request, Response
from costmw.embeddings import HashingEmbedder

NEW_KIND = "translate this short english greeting into french, please"


class Local(MockTarget):
    kind = "hf"  # a local model: it reports token log-probabilities


def replying(text: str) -> Callable[[Request], Response]:
    """Always ``text``, said with middling certainty (log-probability -1 per answer)."""

    def answer(request: Request) -> Response:
        response = Response(text=text)
        if request.params.get("logprobs"):
            response.logprobs = [{"token": text, "logprob": -1.0, "top_logprobs": []}]
        return response

    return answer


@pytest.fixture(scope="module")
def model() -> ConfidenceModel:
    # fit on kinds the cheap model always or never gets right; the evidence itself says nothing
    return fit_confidence(kinds_rows(), features=["span_mean", "span_min", "similar_right"],
                          embedder=HashingEmbedder())


def prompts(count: int) -> list[str]:
    return [f"{NEW_KIND} (case {i})?" for i in range(count)]


def test_answers_agree_on_the_final_answer_and_never_credit_an_answer_not_given() -> None:
    assert answers_agree("42", "The answer is 42.") and answers_agree("so 1,200", "1200")
    assert answers_agree("Paris", "The capital of France is Paris.") and answers_agree("yes", "Yes.")
    assert not answers_agree("41", "The answer is 42.") and not answers_agree("42", "Paris")
    assert not answers_agree("", "anything") and not answers_agree("Lyon", "The capital is Paris.")
    # a clock time is one value, not its last number
    assert answers_agree("3:45", "The train leaves at 03:45.") and not answers_agree("2:45", "It leaves at 3:45.")
    # a long cheap reply must say the same thing, not merely share a few words
    assert not answers_agree("The capital of France is a city on the Seine", "The capital of France is Paris.")


def test_traffic_memory_joins_the_past_prompts_and_keeps_at_most_its_size() -> None:
    past = unit([1, 0, 0], [0, 1, 0])
    base = NeighbourRate(past, [True, False], k=2, prior_weight=1.0)
    memory = TrafficMemory(base, max_prompts=3)
    query = unit([0, 0, 1])
    assert memory.rate(query)[0] == pytest.approx(base.rate(query)[0]) == pytest.approx(0.5)  # the base alone
    memory.add(unit([0, 0.1, 1])[0], False)
    assert memory.rate(query)[0] < 0.5  # its nearest prompt now is one the cheap model got wrong
    for _ in range(4):
        memory.add(unit([0, 0, 1])[0], True)
    assert len(memory) == 3  # the oldest (the wrong one) went first
    # the two nearest are remembered right answers at similarity 1, and the prior (0.5) weighs 1
    assert memory.rate(query)[0] == pytest.approx((2 + 0.5) / 3, rel=1e-3)
    with pytest.raises(ConfigError, match="3-dimensional"):
        memory.add(np.ones(4), True)
    with pytest.raises(ConfigError, match="max_prompts"):
        TrafficMemory(base, max_prompts=0)


def test_a_kind_the_cheap_model_answers_like_the_strong_one_comes_to_be_kept(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    static = ConfidenceScorer(model)
    first = static_score(static, prompts(1)[0])
    threshold = first + 0.05  # an unfamiliar kind starts below the bar
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=threshold))])
    served = [chain.complete(ask(p), model="strong") for p in prompts(12)]
    route = served[0].info["route"]["cascade"]
    assert route["escalated"] is True and route["cheap_agreed"] is True
    assert served[-1].served_by == "target:cheap"  # learned: the cheap model gets this kind right
    assert scorer.stats["observed"] >= 1 and scorer.stats["agreed"] == scorer.stats["observed"]
    assert all(r.served_by == "target:cheap" for r in served[6:])  # once learned, kept
    # without learning, the same traffic is escalated every time
    fixed = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=static, threshold=threshold))])
    assert all(fixed.complete(ask(p), model="strong").served_by == "target:strong" for p in prompts(12))


def test_a_kind_the_cheap_model_gets_wrong_scores_lower_as_it_is_seen(model: ConfidenceModel) -> None:
    cheap = Local(replying("hola"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    scores = []
    for p in prompts(6):
        response = chain.complete(ask(p), model="strong")
        assert response.served_by == "target:strong"
        assert response.info["route"]["cascade"]["cheap_agreed"] is False
        scores.append(response.info["route"]["cascade"]["score"])
    assert scores[-1] < scores[0] and scorer.stats == {"observed": 6, "agreed": 0, "checked": 0}


def test_checked_kept_answers_are_served_by_the_strong_model_and_learned_from(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True, check_rate=0.5, seed=3)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=0.0))])
    served = [chain.complete(ask(p), model="strong") for p in prompts(40)]
    checked = [r for r in served if r.info["route"]["cascade"].get("checked")]
    assert 8 <= len(checked) <= 32 and scorer.stats["checked"] == len(checked)
    assert all(r.served_by == "target:strong" for r in checked)  # paid for, so served
    assert all(r.cost_usd > 0 for r in checked) and scorer.stats["observed"] == len(checked)
    assert "checked" in checked[0].info["route"]["rejected"]["cheap"]
    assert all(r.served_by == "target:cheap" for r in served if r not in checked)


def test_a_streamed_escalation_is_learned_from(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    chunks = list(chain.stream(ask(prompts(1)[0]), model="strong"))
    final = chunks[-1].response
    assert final is not None and final.info["route"]["cascade"]["cheap_agreed"] is True
    assert scorer.stats["observed"] == 1 and scorer.traffic is not None and len(scorer.traffic) == 1


def test_learning_is_set_up_where_it_can_work(model: ConfidenceModel) -> None:
    assert Cascade().judge(Local(replying("x"), name="l"))[0].traffic is not None  # on by default
    assert Cascade(check_rate=0.05).judge(Local(replying("x"), name="l"))[0].check_rate == 0.05
    assert Cascade(learn=False).judge(Local(replying("x"), name="l"))[0].traffic is None
    with pytest.raises(ConfigError, match="pass them to it"):
        Cascade(scorer="refusal", learn=False)
    with pytest.raises(ConfigError, match="pass them to it"):
        Cascade(scorer="refusal", learn=True)
    with pytest.raises(ConfigError, match="needs learn=True"):
        Cascade(learn=False, check_rate=0.1)
    with pytest.raises(ConfigError, match="check_rate"):
        ConfidenceScorer(model, learn=True, check_rate=1.0)
    plain = ConfidenceModel(["span_mean"]).fit([{"span_mean": float(i % 7)} for i in range(40)],
                                               [i % 7 > 3 for i in range(40)])
    with pytest.raises(ConfigError, match="similar_right"):
        ConfidenceScorer(plain, learn=True)
    with pytest.raises(ConfigError, match="compare"):
        ConfidenceScorer(model, learn=True, compare="equal")  # type: ignore[arg-type]


def static_score(scorer: ConfidenceScorer, prompt: str) -> float:
    import asyncio

    async def no_samples(**params: Any) -> Response:
        raise AssertionError("no samples")

    request = Request.create([{"role": "user", "content": prompt}], "cheap")
    value = asyncio.run(scorer.ascore(request, replying("bonjour")(request.replace(params={"logprobs": True})),
                                      no_samples))
    assert value is not None
    return value


def test_a_comparison_that_fails_never_fails_the_call(model: ConfidenceModel, caplog: pytest.LogCaptureFixture) -> None:
    def broken(cheap: str, strong: str) -> bool:
        raise RuntimeError("comparison broke")

    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True, compare=broken)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    response = chain.complete(ask(prompts(1)[0]), model="strong")
    assert response.served_by == "target:strong" and response.text == "Bonjour."
    assert "cheap_agreed" not in response.info["route"]["cascade"] and scorer.stats["observed"] == 0
    assert "could not learn" in caplog.text


def test_what_one_tenant_teaches_never_moves_another_tenants_decisions(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])

    def score(prompt: str, tenant: str) -> float:
        response = chain.complete(ask(prompt), model="strong", options={"tenant": tenant})
        value = response.info["route"]["cascade"]["score"]
        assert isinstance(value, float)
        return value

    before = score(prompts(1)[0], "b")
    taught = [score(p, "a") for p in prompts(10)]
    assert taught[-1] > taught[0]  # tenant a's own answers move its scores ...
    assert score(f"{NEW_KIND} (case 99)?", "b") < taught[-1]  # ... not tenant b's
    memory = scorer.traffic
    assert memory is not None and len(memory) == 12  # one memory, each prompt counted for its tenant
    vector = HashingEmbedder().embed([f"{NEW_KIND} (case 5)?"])
    assert memory.rate(vector, "b")[0] < memory.rate(vector, "a")[0]
    assert before == pytest.approx(static_score(ConfidenceScorer(model), prompts(1)[0]), abs=1e-4)  # rounded


def test_a_learning_cascade_reads_its_threshold_off_answers_scored_as_it_would_score_them(
        model: ConfidenceModel, tmp_path: Any) -> None:
    from costmw.plugins.router._confidence_data import learning_probabilities, neighbours_of

    rows = kinds_rows()
    assert model.learning_calibration and len(model.learning_calibration) == len(rows)
    # a kind the cheap model always gets right is given more as its questions keep coming
    neighbours = neighbours_of(rows, embedder=HashingEmbedder())
    learned = learning_probabilities(rows, features=["span_mean", "span_min", "similar_right"],
                                     neighbours=neighbours, by_category=True)
    fixed = [p for p, _ in model.calibration]
    good = [i for i, r in enumerate(rows) if r["right"]]
    bad = [i for i, r in enumerate(rows) if not r["right"]]
    assert np.mean([learned[i] for i in good]) > np.mean([fixed[i] for i in good])
    assert np.mean([learned[i] for i in bad]) < np.mean([fixed[i] for i in bad])
    assert ConfidenceScorer(model, learn=True).threshold_for(0.9) == model.threshold_for(0.9, learning=True)
    assert ConfidenceScorer(model).threshold_for(0.9) == model.threshold_for(0.9)
    back = ConfidenceModel.load(model.save(tmp_path / "model.json"))
    assert back.learning_calibration == [(pytest.approx(p), r) for p, r in model.learning_calibration]
    # a model without them (an older file) reads the held-out calibration for both
    back.learning_calibration = []
    assert back.threshold_for(0.9, learning=True) == back.threshold_for(0.9)
