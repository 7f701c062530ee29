"""The cascade's own-evidence scorers: token uncertainty, samples drawn in one call, the calibrated
confidence model and thresholds set from a quality target."""

from __future__ import annotations

import calendar
import contextlib
import io
import json
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import (
    CONFIDENCE_FEATURES,
    EVIDENCE_NAMES,
    Cascade,
    ConfidenceModel,
    ConfidenceScorer,
    TokenScorer,
    check_reply,
    default_confidence_model,
    evidence,
    keep_threshold,
    synthetic_questions,
)
from costmw.plugins.router._confidence_data import (
    DEFAULT_CONFIDENCE,
    calibration_folds,
    fit_confidence,
    held_out_probabilities,
)
from costmw.plugins.router._evidence import answer_key, answer_span, token_stats

from costmw import Chain, ConfigError, Request, Response


def tokens(*pieces: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"token": t, "logprob": v, "bytes": list(t.encode()), "top_logprobs": [
        {"token": t, "logprob": v}, {"token": "?", "logprob": v - 1.0}]} for t, v in pieces]


def test_the_final_answer_span_is_the_last_number_or_a_short_reply() -> None:
    text = "3 apples and 4 pears make 7"
    assert text[slice(*answer_span(text))] == "7"
    assert "Friday."[slice(*answer_span("Friday."))] == "Friday."
    long = "I think about it a lot. The answer must surely be the blue one."
    assert long[slice(*answer_span(long))] == "The answer must surely be the blue one."
    assert answer_key("so it is 1,200.") == answer_key("1200") and answer_key("Paris") == answer_key("paris")


def test_token_stats_read_the_span_apart_from_the_rest() -> None:
    lp = tokens(("The", -0.1), (" total", -0.2), (" is", -0.1), (" 4", -3.0), ("2", -1.0))
    stats = token_stats(lp, "The total is 42")
    assert stats["span_mean"] == pytest.approx(-2.0) and stats["span_min"] == pytest.approx(-3.0)
    assert stats["span_first"] == pytest.approx(-3.0) and stats["lp_min"] == pytest.approx(-3.0)
    assert stats["lp_mean"] == pytest.approx(-4.4 / 5) and stats["span_margin"] == pytest.approx(1.0)
    assert token_stats(None, "x")["has_logprobs"] == 0.0


def test_evidence_counts_agreeing_samples_and_ignored_formats() -> None:
    row = evidence("What is 6 times 7? Reply with just the number.", "42",
                   samples=["42", "It is 42", "41"])
    assert list(row) == list(EVIDENCE_NAMES)
    assert row["agree"] == pytest.approx(2 / 3) and row["has_samples"] == 1.0 and row["ignores_format"] == 0.0
    chatty = evidence("Answer with the city name only.", "Well, there are many cities and it depends on the year.")
    assert chatty["ignores_format"] == 1.0 and chatty["has_samples"] == 0.0


def test_keep_threshold_reaches_the_quality_on_its_examples() -> None:
    probs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    right = [True, True, True, False, True, False, False, False, False, False]
    t = keep_threshold(probs, right, 0.9)
    kept = [r for p, r in zip(probs, right, strict=True) if p >= t]
    assert (sum(kept) + len(probs) - len(kept)) / len(probs) >= 0.9
    assert t == pytest.approx(0.5)  # keeping one more (0.4, wrong) would drop it to 0.8
    assert keep_threshold(probs, right, 1.0) == pytest.approx(0.7)
    assert keep_threshold([0.9], [False], 0.99) > 1.0  # nothing can be kept
    with pytest.raises(ConfigError, match="quality"):
        keep_threshold(probs, right, 0.0)


def separable_rows(n: int, seed: int) -> tuple[list[dict[str, float]], list[bool]]:
    r = random.Random(seed)
    rows, right = [], []
    for _ in range(n):
        ok = r.random() < 0.4
        rows.append({"span_mean": (-0.2 if ok else -2.0) + r.gauss(0, 0.6), "agree": r.random()})
        right.append(ok)
    return rows, right


def test_confidence_model_learns_ranks_and_round_trips_through_json(tmp_path: Path) -> None:
    rows, right = separable_rows(300, 0)
    cal_rows, cal_right = separable_rows(200, 1)
    model = ConfidenceModel(["span_mean", "agree"]).fit(rows, right, calibration=(cal_rows, cal_right))
    probs = model.predict(cal_rows)
    good = [p for p, r in zip(probs, cal_right, strict=True) if r]
    bad = [p for p, r in zip(probs, cal_right, strict=True) if not r]
    assert sum(good) / len(good) > sum(bad) / len(bad) + 0.4
    assert model.coef[0] > 1.0 and abs(model.coef[1]) < 0.5  # the informative feature carries the weight
    loaded = ConfidenceModel.load(model.save(tmp_path / "m.json"))
    assert loaded.predict(cal_rows) == pytest.approx(probs)
    assert loaded.threshold_for(0.95) == model.threshold_for(0.95)
    assert model.threshold_for(0.99) >= model.threshold_for(0.9)


def test_confidence_model_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown confidence features"):
        ConfidenceModel(["nonsense"])
    with pytest.raises(ConfigError, match="both right and wrong"):
        ConfidenceModel(["span_mean"]).fit([{"span_mean": 0.0}] * 20, [True] * 20)
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(ConfigError, match="not a costmw cascade confidence model"):
        ConfidenceModel.load(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text('{"kind": "costmw.cascade.confidence", "features": ["agree"]}')
    with pytest.raises(ConfigError, match="bad or missing field"):
        ConfidenceModel.load(tmp_path / "short.json")


def test_the_shipped_model_loads_and_prefers_confident_consistent_answers() -> None:
    model = default_confidence_model()
    assert model.fitted and model.calibration and set(model.features) <= set(CONFIDENCE_FEATURES)
    assert model.needs_embedding and model.neighbours is not None
    assert len(model.neighbours.right) == model.info["questions"]
    prompt = "What is 12 + 30? Reply with just the number."
    past = {"similar_right": model.neighbours.prior}
    sure = {**evidence(prompt, "42", logprobs=tokens(("4", -0.01), ("2", -0.01)), samples=["42"] * 3), **past}
    unsure = {**evidence(prompt, "Well, it might be 17 or so, I am not sure about this one at all",
                         logprobs=tokens(("Well", -2.5), (" 17", -4.0)), samples=["12", "30", "9"]), **past}
    assert model.predict_one(sure) > model.predict_one(unsure)
    # the same answer is trusted more where the cheap model did well on similar prompts
    assert model.predict_one({**sure, "similar_right": 0.9}) > model.predict_one({**sure, "similar_right": 0.1})
    with pytest.raises(ConfigError, match="similar_right"):
        model.predict_one(evidence(prompt, "42"))  # the feature is never silently read as 0
    assert 0.0 < model.threshold_for(0.95) <= 1.000001


def confident(text: str, logprob: float) -> Callable[[Request], Response]:
    def answer(request: Request) -> Response:
        response = Response(text=text)
        if request.params.get("logprobs"):
            response.logprobs = tokens((text, logprob))
        if (request.params.get("n") or 1) > 1:
            response.info["choices"] = [{"text": text} for _ in range(request.params["n"])]
        return response

    return answer


def test_token_scorer_keeps_confident_answers_and_asks_for_logprobs(make_chain: Callable[..., Chain],
                                                                     strong: MockTarget) -> None:
    sure = MockTarget(confident("42", math.log(0.9)), name="sure", price=(0.1, 0.4))
    chain = make_chain(ModelRouter([sure, strong], strategy=Cascade(scorer=TokenScorer(), threshold=0.5)))
    kept = chain.complete(ask("what is 6 times 7?"), model="strong")
    assert kept.served_by == "target:sure" and kept.info["route"]["score"] == pytest.approx(0.9)
    assert sure.calls[0].params["logprobs"] is True
    unsure = MockTarget(confident("41", math.log(0.2)), name="unsure", price=(0.1, 0.4))
    chain = make_chain(ModelRouter([unsure, strong], strategy=Cascade(scorer="tokens", threshold=0.5)))
    assert chain.complete(ask("what is 6 times 7?"), model="strong").served_by == "target:strong"


def test_samples_are_asked_for_in_one_call(make_chain: Callable[..., Chain], strong: MockTarget) -> None:
    cheap = MockTarget(confident("42", math.log(0.95)), name="cheap", price=(0.1, 0.4))
    rows, right = separable_rows(200, 2)
    model = ConfidenceModel(["span_mean", "agree"]).fit(rows, right)
    chain = make_chain(ModelRouter([cheap, strong], strategy=Cascade(scorer=ConfidenceScorer(model, samples=4),
                                                                     quality=0.9)))
    response = chain.complete(ask("what is 6 times 7?"), model="strong")
    assert len(cheap.calls) == 2  # the answer, then all four samples in one call
    assert cheap.calls[1].params["n"] == 4 and cheap.calls[1].params["temperature"] == 0.7
    assert response.served_by == "target:cheap"
    assert response.info["route"]["threshold"] == pytest.approx(model.threshold_for(0.9), abs=1e-4)


def test_quality_needs_a_calibrated_scorer_and_excludes_threshold() -> None:
    with pytest.raises(ConfigError, match="calibrated scorer"):
        Cascade(scorer="refusal", quality=0.9)
    with pytest.raises(ConfigError, match="not both"):
        Cascade(threshold=0.5, quality=0.9)
    with pytest.raises(ConfigError, match="quality"):
        Cascade(quality=1.5)


def test_a_local_cheap_target_gets_the_confidence_scorer_by_default(tiny_cheap: Any, strong: MockTarget) -> None:
    cascade = Cascade()
    scorer, threshold = cascade.judge(tiny_cheap)
    assert isinstance(scorer, ConfidenceScorer)
    # it learns from its traffic, so its threshold is read off the answers as a learning cascade scores them
    assert threshold == pytest.approx(default_confidence_model().threshold_for(0.95, learning=True))
    fixed = Cascade(learn=False).judge(tiny_cheap)[1]
    assert fixed == pytest.approx(default_confidence_model().threshold_for(0.95)) and fixed != threshold
    remote_scorer, remote_threshold = cascade.judge(strong)
    assert remote_scorer.name == "refusal" and remote_threshold == 0.5
    assert Cascade(quality=0.8).judge(tiny_cheap)[1] <= threshold


@pytest.fixture
def tiny_cheap() -> Any:
    class Local(MockTarget):
        kind = "hf"

    return Local(lambda r: "42", name="local", price=(0.0, 0.0))


def test_generated_questions_have_checkable_answers() -> None:
    questions = synthetic_questions(per_kind=5, seed=1)
    assert len({q["category"] for q in questions}) >= 8 and len(questions) == 5 * len({q["category"]
                                                                                       for q in questions})
    for q in questions:
        assert q["check"] in ("number", "exact", "contains")
        assert check_reply(q["answer"], q["answer"], q["check"]), q
    assert synthetic_questions(per_kind=5, seed=1) == questions
    assert check_reply("The answer is 1,200.", "1200", "number")
    assert check_reply("No, it cannot.", "no", "exact") and not check_reply("Not sure", "no", "exact")
    assert check_reply("It is Nairobi.", "Nairobi", "contains") and not check_reply("Lima", "Nairobi", "contains")
    with pytest.raises(ValueError, match="unknown check"):
        check_reply("x", "x", "fuzzy")


def test_no_logprobs_means_no_opinion_from_a_model_that_reads_them(make_chain: Callable[..., Chain],
                                                                   strong: MockTarget) -> None:
    plain = MockTarget(lambda r: "42", name="plain", price=(0.1, 0.4))
    rows, right = separable_rows(100, 3)
    scorer = ConfidenceScorer(ConfidenceModel(["span_mean"]).fit(rows, right))
    chain = make_chain(ModelRouter([plain, strong], strategy=Cascade(scorer=scorer, quality=0.9)))
    response = chain.complete(ask("what is 6 times 7?"), model="strong")
    assert response.served_by == "target:plain" and response.info["route"]["cascade"]["score"] is None


def wilson_upper(wrong: int, n: int, z: float = 1.6448536) -> float:
    p = wrong / n
    return (p + z * z / (2 * n) + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def test_a_confidence_bound_keeps_only_what_the_bound_allows() -> None:
    n = 200
    probs = [1.0 - i / n for i in range(n)]
    right = [i < 40 or i % 7 == 0 for i in range(n)]  # the top 40 right, then a right answer now and then

    def kept_wrong(threshold: float) -> int:
        return sum(1 for p, r in zip(probs, right, strict=True) if p >= threshold and not r)

    counted = keep_threshold(probs, right, 0.95)
    bounded = keep_threshold(probs, right, 0.95, confidence=0.95)
    assert bounded > counted  # a stricter threshold: fewer kept
    assert kept_wrong(counted) / n <= 0.05 < (kept_wrong(counted) + 1) / n
    w = kept_wrong(bounded)
    assert wilson_upper(w, n) <= 0.05 < wilson_upper(w + 1, n)
    # the more examples say the same, the closer the bound comes to the count
    assert keep_threshold(probs * 20, right * 20, 0.95, confidence=0.95) < bounded
    with pytest.raises(ConfigError, match="confidence"):
        keep_threshold(probs, right, 0.95, confidence=1.0)


def test_a_model_keeps_its_confidence_level_through_json(tmp_path: Path) -> None:
    rows, right = separable_rows(300, 4)
    model = ConfidenceModel(["span_mean"]).fit(rows, right)
    loose = model.threshold_for(0.95)
    model.confidence = 0.95
    assert model.threshold_for(0.95) > loose and model.threshold_for(0.95, confidence=0.0) == loose
    loaded = ConfidenceModel.load(model.save(tmp_path / "m.json"))
    assert loaded.confidence == 0.95 and loaded.threshold_for(0.95) == model.threshold_for(0.95)
    data = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**data, "confidence": 1.5}))
    with pytest.raises(ConfigError, match="confidence"):
        ConfidenceModel.load(tmp_path / "bad.json")


def test_folds_by_category_hold_out_whole_kinds() -> None:
    rows = [{"category": f"k{i % 7}"} for i in range(70)]
    fold = calibration_folds(rows, 5, by_category=True)
    for kind in {r["category"] for r in rows}:
        assert len({f for f, r in zip(fold, rows, strict=True) if r["category"] == kind}) == 1
    assert set(fold) == set(range(5))
    few = [{"category": f"k{i % 3}"} for i in range(30)]  # fewer kinds than folds: dealt within kinds
    fold = calibration_folds(few, 5, by_category=True)
    assert all(len({f for f, r in zip(fold, few, strict=True) if r["category"] == k}) == 5 for k in ("k0", "k1"))


def test_fit_confidence_calibrates_on_held_out_kinds_at_its_confidence() -> None:
    rows, right = separable_rows(240, 5)
    answered = [{"evidence": e, "right": r, "category": f"k{i % 8}"} for i, (e, r) in enumerate(zip(rows, right,
                                                                                                    strict=True))]
    model = fit_confidence(answered, features=["span_mean"], by_category=True)
    assert model.confidence == DEFAULT_CONFIDENCE and model.info["folds_by_category"] is True
    held = held_out_probabilities(answered, features=["span_mean"], by_category=True)
    assert [p for p, _ in model.calibration] == pytest.approx(held)
    assert held != pytest.approx(model.predict(rows).tolist())  # not the final model's own fit
    assert model.threshold_for(0.95) >= model.threshold_for(0.95, confidence=0.0)


def _printed(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # the generators' own small programs
    return out.getvalue().strip()


def test_generated_answers_are_right() -> None:
    questions = synthetic_questions(per_kind=25, seed=3)
    kinds = {q["category"] for q in questions}
    assert {"hard_facts", "easy_facts", "code_more", "multi_step", "calendar", "reasoning", "yes_no"} <= kinds
    checked = 0
    for q in questions:
        prompt = q["prompt"]
        if "```python" in prompt:
            assert _printed(prompt.split("```python\n")[1].split("```")[0]) == q["answer"], q
        elif m := re.fullmatch(r"What is ([\d +*()-]+)\? Reply with just the number\.", prompt):
            assert str(eval(m.group(1))) == q["answer"], q  # arithmetic the prompt spells out
        elif m := re.fullmatch(r"Is (\d+) a leap year\? Answer yes or no\.", prompt):
            assert q["answer"] == ("yes" if calendar.isleap(int(m.group(1))) else "no"), q
        elif m := re.fullmatch(r"How many days are in (\w+) in the year 2023\? .*", prompt):
            month = list(calendar.month_name).index(m.group(1))
            assert q["answer"] == str(calendar.monthrange(2023, month)[1]), q
        elif m := re.fullmatch(r"What number comes next: ([\d, ]+), \.\.\.\? .*", prompt):
            terms = [int(t) for t in m.group(1).split(", ")]
            step, ratio = terms[1] - terms[0], terms[1] // terms[0]
            expected = terms[-1] + step if terms[2] - terms[1] == step else terms[-1] * ratio
            assert q["answer"] == str(expected), q
        else:
            continue
        checked += 1
    assert checked >= 60


def test_the_later_question_kinds_compute_their_answers() -> None:
    import json
    import re

    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}

    def from_roman(text: str) -> int:  # read right to left: a smaller numeral before a larger one subtracts
        total, biggest = 0, 0
        for letter in reversed(text):
            v = values[letter]
            total, biggest = (total - v, biggest) if v < biggest else (total + v, v)
        return total

    questions = [q for q in synthetic_questions(per_kind=40, seed=5)
                 if q["category"] in ("percent", "string_ops", "records", "compare", "notation", "lists")]
    assert {q["category"] for q in questions} == {"percent", "string_ops", "records", "compare", "notation", "lists"}
    checked = 0
    for q in questions:
        prompt, answer = q["prompt"], q["answer"]
        if m := re.match(r"What is (\d+)% of (\d+)\?", prompt):
            assert float(answer) == int(m[1]) * int(m[2]) / 100
        elif m := re.match(r"What number is the Roman numeral ([IVXLC]+)\?", prompt):
            assert int(answer) == from_roman(m[1])
        elif m := re.match(r"Write the word '(\w+)' backwards", prompt):
            assert answer == "".join(reversed(m[1]))
        elif m := re.match(r"Here is a list: ([a-z, ]+)\. What is the (\w+) item", prompt):
            items = m[1].split(", ")
            assert answer == items[["first", "second", "third", "fourth", "fifth", "sixth", "seventh"].index(m[2])]
        elif m := re.match(r'What is the value of the field "(\w+)" in this JSON\?', prompt):
            assert str(json.loads(prompt.split("\n\n", 1)[1])[m[1]]) == answer
        elif m := re.match(r"(\d+):(\d+) ", prompt.removeprefix("What is ")):
            assert answer == f"{int(m[1]) - 12}:{m[2]} pm"
        else:
            continue
        checked += 1
    assert checked >= 40
