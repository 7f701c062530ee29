"""The confidence model's ``similar_right`` feature: how the cheap model did on the nearest past prompts."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from costmw.plugins.router import ConfidenceModel, ConfidenceScorer, NeighbourRate, evidence, prompt_template
from costmw.plugins.router._confidence_data import _split, fit_confidence, held_out_probabilities, neighbours_of

from costmw import ConfigError, Request, Response
from costmw.embeddings import HashingEmbedder


def unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_the_rate_is_the_similarity_weighted_share_right_of_the_k_nearest_with_a_prior() -> None:
    past = unit([1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0])
    right = [True, False, True, True, True]
    rate = NeighbourRate(past, right, k=2, prior_weight=1.0)
    query = unit([1, 0.1, 0])
    sims = (past.astype(np.float16).astype(np.float32) @ query[0])
    nearest = np.argsort(-sims)[:2]
    assert set(nearest) == {0, 1}
    expected = (sims[0] * 1 + sims[1] * 0 + 1.0 * 0.8) / (sims[0] + sims[1] + 1.0)  # prior: 4 of 5 right
    assert rate.rate(query)[0] == pytest.approx(expected, rel=1e-6)
    # negative similarity counts for nothing: the opposite prompt's neighbours give the prior back
    far = NeighbourRate(past[[0, 1]], [True, False], k=2, prior_weight=1.0)
    assert far.rate(unit([-1, 0, 0]))[0] == pytest.approx(0.5)
    # without a prior, a prompt identical to a right one, with k=1, reads 1
    assert NeighbourRate(past, right, k=1, prior_weight=0.0).rate(past[0])[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="3-dimensional"):
        rate.rate(np.ones((1, 4), dtype=np.float32))


def test_own_rates_leave_out_the_row_itself_and_its_template() -> None:
    past = unit([1, 0, 0], [1, 0.01, 0], [0.9, 0.3, 0], [0, 1, 0], [0.1, 1, 0])
    right = [True, True, False, True, False]
    templates = ["a", "a", "b", "c", "d"]
    rate = NeighbourRate(past, right, templates=templates, k=1, prior_weight=0.0)
    own = rate.own_rates()
    # row 0's nearest is row 1 (same template, left out), so it reads row 2 (wrong)
    assert own[0] == pytest.approx(0.0) and own[1] == pytest.approx(0.0)
    assert own[3] == pytest.approx(0.0) and own[4] == pytest.approx(1.0)
    # a row's own label never moves its own value
    flipped = NeighbourRate(past, [not right[0], *right[1:]], templates=templates, k=1, prior_weight=0.0)
    assert flipped.own_rates()[0] == pytest.approx(own[0])
    # without templates only the row itself is left out
    assert NeighbourRate(past, right, k=1, prior_weight=0.0).own_rates()[0] == pytest.approx(1.0)


def test_prompts_of_one_template_share_it() -> None:
    assert prompt_template("What is 12 + 30? Reply with just the number.") == \
        prompt_template("What is 7 + 5? Reply with just the number.")
    assert prompt_template('Ben is the mother of Elif. What is "x"?') == \
        prompt_template('Ana is the mother of Kim. What is "yy"?')
    assert prompt_template("What is 12 + 30?") != prompt_template("How many days are in 30 weeks?")


def kinds_rows(n: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """Answers whose evidence says nothing, to prompts of kinds the cheap model always or never gets right."""
    rng = random.Random(seed)
    topics = [("name the capital city of that european country", True),
              ("compute the exact square root of this large integer", False),
              ("who wrote this famous nineteenth century russian novel", True),
              ("list all prime factors of this big composite number", False)]
    phrasings = ["{} (case {})?", "please: {} #{}.", "task {}, {}!"]
    rows = []
    for i in range(n):
        topic, good = topics[i % len(topics)]
        prompt = phrasings[(i // len(topics)) % len(phrasings)].format(topic, rng.randint(1, 10 ** 6))
        rows.append({"prompt": prompt, "right": good, "category": topic,
                     "evidence": {"span_mean": rng.gauss(-1.0, 0.5), "span_min": rng.gauss(-2.0, 0.5)}})
    return rows


def test_held_out_rows_read_only_the_other_folds_prompts() -> None:
    rows = kinds_rows(40)
    neighbours = neighbours_of(rows, embedder=HashingEmbedder())
    inside, outside = list(range(0, 40, 2)), list(range(1, 40, 2))
    fit, judged = _split(rows, neighbours, inside, outside)
    seen = neighbours.subset(inside)
    assert [r["similar_right"] for r in fit] == pytest.approx(seen.own_rates().tolist())
    assert [r["similar_right"] for r in judged] == pytest.approx(seen.rate(neighbours.vectors[outside]).tolist())


def test_a_model_with_past_prompts_learns_from_them_and_round_trips(tmp_path: Path) -> None:
    rows = kinds_rows()
    features = ["span_mean", "span_min", "similar_right"]
    model = fit_confidence(rows, features=features, embedder=HashingEmbedder())
    held = held_out_probabilities(rows, features=features, embedder=HashingEmbedder())
    right = np.asarray([r["right"] for r in rows])
    # prompts of kinds the cheap model gets right score higher, also for rows the model did not see
    assert np.mean(np.asarray(held)[right]) > np.mean(np.asarray(held)[~right]) + 0.3
    assert model.neighbours is not None and model.neighbours.embedder == "hashing-256"
    assert model.neighbours.vectors.dtype == np.float16 and len(model.neighbours.right) == len(rows)

    path = model.save(tmp_path / "model.json")
    data = json.loads(path.read_text())
    assert data["version"] == 2 and data["neighbours"]["k"] == model.neighbours.k
    back = ConfidenceModel.load(path)
    assert back.neighbours is not None
    assert np.array_equal(back.neighbours.vectors, model.neighbours.vectors)
    assert back.neighbours.right.tolist() == model.neighbours.right.tolist()
    assert back.neighbours.groups.tolist() == model.neighbours.groups.tolist()
    assert back.neighbours.own_rates() == pytest.approx(model.neighbours.own_rates())
    vectors = HashingEmbedder().embed(["name the capital city of that european country", "compute the square root"])
    new = [{"span_mean": -1.0, "span_min": -2.0}] * 2
    assert back.predict(back.with_neighbours(new, vectors)) == pytest.approx(
        model.predict(model.with_neighbours(new, vectors)))

    del data["neighbours"]
    (tmp_path / "no_neighbours.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="needs its 'neighbours'"):
        ConfidenceModel.load(tmp_path / "no_neighbours.json")
    data["neighbours"] = {**model.neighbours.to_dict(), "vectors_float16": "AAAA"}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="neighbours: bad or missing field"):
        ConfidenceModel.load(tmp_path / "bad.json")
    (tmp_path / "future.json").write_text(json.dumps({**data, "version": 3}))
    with pytest.raises(ConfigError, match="newer"):
        ConfidenceModel.load(tmp_path / "future.json")


def test_the_scorer_embeds_the_prompt_and_trusts_answers_to_familiar_kinds() -> None:
    model = fit_confidence(kinds_rows(), features=["span_mean", "span_min", "similar_right"],
                           embedder=HashingEmbedder())
    scorer = ConfidenceScorer(model)
    assert scorer.embedder is not None and scorer.embedder.name == "hashing-256"

    async def no_samples(**params: Any) -> Response:
        raise AssertionError("this model draws no samples")

    def score(prompt: str) -> float:
        request = Request.create([{"role": "user", "content": prompt}], "cheap")
        response = Response(text="42")
        response.logprobs = [{"token": "42", "logprob": -1.0, "top_logprobs": []}]
        value = asyncio.run(scorer.ascore(request, response, no_samples))
        assert value is not None
        return value

    prompt = "name the capital city of that european country (case 77)?"
    good, bad = score(prompt), score("compute the exact square root of this large integer (case 77)?")
    assert good > bad
    row = evidence(prompt, "42", logprobs=[{"token": "42", "logprob": -1.0, "top_logprobs": []}], finish_reason=None)
    assert good == pytest.approx(model.predict_one(model.with_neighbours([row], HashingEmbedder().embed([prompt]))[0]))
    with pytest.raises(ConfigError, match="embedded by 'hashing-256'"):
        ConfidenceScorer(model, embedder=HashingEmbedder(128))
