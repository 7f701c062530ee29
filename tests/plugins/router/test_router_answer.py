"""Answer checks for cascades: worked arithmetic, final answers, answer features, the scorers built on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import (
    ArithmeticScorer,
    Cascade,
    QualityModel,
    TrainedScorer,
    answer_features,
    check_arithmetic,
)
from costmw.plugins.router._answer import ANSWER_FEATURE_NAMES, final_answer, safe_eval

from costmw import Chain, ConfigError
from costmw.embeddings import HashingEmbedder


@pytest.mark.parametrize(("expression", "value"), [
    ("2 + 3 * 4", 14.0), ("(2 + 3) * 4", 20.0), ("$1,200 / 4", 300.0), ("3 x 4", 12.0), ("12 × 3", 36.0),
    ("25% * 80", 20.0), ("2^3", 8.0), ("-5 + 2", -3.0), ("7 // 2", 3.0),
])
def test_safe_eval_computes_plain_arithmetic(expression: str, value: float) -> None:
    assert safe_eval(expression) == pytest.approx(value)


@pytest.mark.parametrize("expression", [
    "__import__('os')", "abs(3)", "x + 1", "1 / 0", "10 ** 100", "", "3 +", "True + 1", "[1, 2]",
])
def test_safe_eval_refuses_anything_else(expression: str) -> None:
    assert safe_eval(expression) is None


def test_check_arithmetic_finds_calculations_that_do_not_add_up() -> None:
    right = "She has 16 - 3 = 13 eggs, sells 9 * $2 = $<<9*2=18>>18.\n#### 18"
    check = check_arithmetic(right)
    assert check.checked >= 3 and check.wrong == ()
    wrong = check_arithmetic("The total is 12 + 5 = 18, so each gets 18 / 3 = 6.\n#### 6")
    assert wrong.checked == 2 and wrong.wrong == ("12 + 5 = 18",)
    note = check_arithmetic("He pays <<4*7=30>>30 dollars.")
    assert note.wrong == ("<<4*7=30>>",)
    chained = check_arithmetic("(80 + 55 + 100) / 3 = 235 / 3 = 78.33")  # rounding to 2 decimals is fine
    assert chained.checked == 2 and chained.wrong == ()
    assert check_arithmetic("Let x = 3 and the answer is 7.").checked == 0  # nothing to re-compute
    assert check_arithmetic("Revenue: 300 * $50 = $15040.").wrong == ("300 * $50 = $15040",)  # off by 0.3%
    assert check_arithmetic("235 / 3 = 78 and 2 / 3 = 0.7 and 1 / 3 = 0.333").wrong == ()  # rounding as written


def test_final_answer_prefers_marked_answers() -> None:
    assert final_answer("12 + 3 = 15 ... 15 * 2 = 30\n#### 30 apples, not 40") == 30.0
    assert final_answer("So the answer is $1,250.50 in total; tax was 4") == 1250.5
    assert final_answer("It took 3 hours and 20 minutes") == 20.0
    assert final_answer("no numbers at all") is None


def test_answer_features_see_unused_numbers_hedges_and_missing_finals() -> None:
    prompt = "Tom has 12 apples and buys 5 more. Each costs $3. How much did he spend?"
    good = answer_features(prompt, "He buys 5 apples at $3 each: 5 * 3 = 15.\n#### 15")
    bad = answer_features(prompt, "Assuming he buys some apples, it is roughly twelve dollars")
    names = list(ANSWER_FEATURE_NAMES)
    assert good.shape == bad.shape == (len(names),) and good.dtype == np.float32
    assert good[names.index("a_has_final_marker")] == 1.0 and bad[names.index("a_has_final_marker")] == 0.0
    assert good[names.index("a_final_computed")] == 1.0 and bad[names.index("a_final_computed")] == 0.0
    assert bad[names.index("a_hedges")] >= 2
    assert bad[names.index("a_prompt_numbers_unused")] > good[names.index("a_prompt_numbers_unused")]


def test_arithmetic_scorer_escalates_a_miscalculated_answer(make_chain: Callable[..., Chain],
                                                            strong: MockTarget) -> None:
    def answer(r: object) -> str:
        text = getattr(r, "last_user_text", "")
        if "sloppy" in text:
            return "3 * 4 = 13, so 13.\n#### 13"
        if "chat" in text:
            return "Hello!"
        return "3 * 4 = 12, so 12.\n#### 12"

    cheap = MockTarget(answer, name="cheap", price=(0.1, 0.1))
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer="arithmetic")))
    assert chain.complete(ask("careful sum"), model="strong").served_by == "target:cheap"
    escalated = chain.complete(ask("sloppy sum"), model="strong")
    assert escalated.served_by == "target:strong" and escalated.info["route"]["cascade"]["score"] == 0.0
    kept = chain.complete(ask("chat"), model="strong")  # nothing to check: no opinion, the answer stands
    assert kept.served_by == "target:cheap" and kept.info["route"]["cascade"]["score"] is None
    strict = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=ArithmeticScorer(require_final=True))))
    assert strict.complete(ask("chat"), model="strong").served_by == "target:strong"


def test_cascade_with_tags_only_handles_tagged_requests(make_chain: Callable[..., Chain],
                                                         strong: MockTarget) -> None:
    cheap = MockTarget(lambda r: "2 * 3 = 7\n#### 7", name="cheap", price=(0.1, 0.1))
    router = ModelRouter([cheap, strong], strategy=Cascade("cheap", "strong", scorer="arithmetic", tags=["math"]))
    chain = make_chain(router)
    untagged = chain.complete(ask("hello"), model="strong")
    assert untagged.served_by == "target:strong" and untagged.info["route"]["strategy"] == "requested"
    tagged = chain.complete(ask("2 times 3?"), model="strong", options={"tags": ["math"]})
    assert tagged.info["route"]["strategy"] == "cascade" and tagged.info["route"]["cascade"]["escalated"] is True
    assert len(cheap.calls) == 1


def _worked(i: int, sloppy: bool) -> tuple[str, str]:
    a, b = 3 + i % 7, 4 + i % 5
    prompt = f"A box holds {a} rows of {b} cans. How many cans are in box number {i}?"
    result = a * b + (1 + i % 3 if sloppy else 0)
    return prompt, f"There are {a} rows of {b}: {a} * {b} = {result}.\n#### {result}"


def test_trained_scorer_learns_from_answer_checks(make_chain: Callable[..., Chain], strong: MockTarget,
                                                  tmp_path: Path) -> None:
    pairs = [_worked(i, sloppy=i % 3 == 0) for i in range(60)]
    labels = [0.0 if i % 3 == 0 else 1.0 for i in range(60)]
    scorer = TrainedScorer(QualityModel(HashingEmbedder(32), answers=True, c=1.0))
    assert scorer.model.use_answers
    scorer.fit([p for p, _ in pairs], [a for _, a in pairs], labels)
    held_out = [_worked(i, sloppy=s) for i, s in ((100, True), (101, False), (103, True), (104, False))]
    scores = scorer.predict([p for p, _ in held_out], [a for _, a in held_out])
    assert scores[0] < 0.5 < scores[1] and scores[2] < 0.5 < scores[3]

    prompts = {"sloppy": _worked(200, True), "careful": _worked(202, False)}
    cheap = MockTarget(lambda r: prompts[r.last_user_text.split(":")[0]][1], name="cheap", price=(0.1, 0.1))
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer)))
    assert chain.complete(ask("careful: " + prompts["careful"][0]), model="strong").served_by == "target:cheap"
    assert chain.complete(ask("sloppy: " + prompts["sloppy"][0]), model="strong").served_by == "target:strong"

    saved = scorer.model.save(tmp_path / "scorer")
    again = TrainedScorer(path=saved, embedder=HashingEmbedder(32))
    assert again.model.use_answers
    np.testing.assert_allclose(again.predict([p for p, _ in held_out], [a for _, a in held_out]), scores, rtol=1e-6)


def test_answer_model_needs_answers() -> None:
    model = QualityModel(HashingEmbedder(16), answers=True, c=1.0)
    prompts = [f"q {i}" for i in range(8)]
    with pytest.raises(ConfigError, match="answers=\\[...\\]"):
        model.fit(prompts, [i % 2 for i in range(8)])
    with pytest.raises(ConfigError, match="8 prompts but 2 answers"):
        model.fit(prompts, [i % 2 for i in range(8)], answers=["a", "b"])
    with pytest.raises(ConfigError, match="prompts but"):
        TrainedScorer(model).fit(prompts, ["a"], [1.0] * 8)
