"""A cascade over a local model: the answer's token log-probabilities reach the confidence scorer, the
default cascade judges a local cheap target with it, and ``costmw cascade-data`` fits a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import HFTarget, MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Cascade, ConfidenceModel, ConfidenceScorer
from costmw.plugins.router._confidence_data import answer_prompts, fit_confidence
from typer.testing import CliRunner

from costmw import Chain, ConfigError, Request
from costmw.cli import app

PROMPTS = ["the cat sat on the mat", "what is the capital of france?", "translate to french: good morning",
           "the dog ran in the park", "positive negative neutral review", "SELECT name FROM users",
           "numbers 0 1 2 3", "the food was great", "paris is the capital", "the service was slow",
           "bonjour", "what is the capital", "the cat", "the dog", "good morning", "review: the food"]


async def graded_rows(target: HFTarget) -> list[dict[str, Any]]:
    """Rows whose reference is the model's own greedy answer for half of them and nonsense for the rest."""
    own = await target.abatch([Request.create([{"role": "user", "content": p}], "tiny", params={"max_tokens": 8})
                               for p in PROMPTS])
    return [{"prompt": p, "answer": r.text.strip() if i % 2 == 0 else "zzzz", "check": "contains"}  # type: ignore[union-attr]
            for i, (p, r) in enumerate(zip(PROMPTS, own, strict=True))]


async def test_answers_are_graded_and_a_model_fits(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, name="tiny", max_new_tokens=8)
    rows = await graded_rows(target)
    answered = await answer_prompts(target, rows, max_tokens=8)
    assert [r["right"] for r in answered] == [i % 2 == 0 for i in range(len(rows))]
    assert all(r["evidence"]["has_logprobs"] == 1.0 for r in answered)
    model = fit_confidence(answered)
    assert model.fitted and len(model.calibration) == len(rows)  # every row, predicted by a model without it
    with pytest.raises(ConfigError, match="need a judge"):
        await answer_prompts(target, [{"prompt": "the cat"}])


async def test_the_default_cascade_judges_a_local_answer_by_its_confidence(tiny_lm: Path) -> None:
    cheap = HFTarget(tiny_lm, name="tiny", max_new_tokens=6, price=(0.0, 0.0))
    strong = MockTarget(lambda r: "strong answer", name="strong", price=(5.0, 15.0))
    chain = Chain(plugins=[ModelRouter([cheap, strong], strategy=Cascade())], targets=[cheap, strong])
    try:
        response = chain.complete([{"role": "user", "content": "the cat sat"}], model="strong")
    finally:
        chain.close()
    cascade = response.info["route"]["cascade"]
    assert cascade["scorer"] == "confidence" and cascade["score"] is not None and 0.0 <= cascade["score"] <= 1.0
    assert cascade["escalated"] == (cascade["score"] < cascade["threshold"])


def test_cascade_data_command_writes_a_model_a_cascade_can_use(tiny_lm: Path, tmp_path: Path) -> None:
    import asyncio

    rows = asyncio.run(graded_rows(HFTarget(tiny_lm, max_new_tokens=8)))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, answers = tmp_path / "model.json", tmp_path / "answers.jsonl"
    result = CliRunner().invoke(app, ["cascade-data", str(prompts), "--model", str(tiny_lm), "--out", str(out),
                                      "--answers", str(answers), "--max-tokens", "8"])
    assert result.exit_code == 0, result.output
    assert "8 of 16 cheap answers right" in result.output
    model = ConfidenceModel.load(out)
    assert len(answers.read_text().splitlines()) == 16
    Cascade(scorer=ConfidenceScorer(model), quality=0.9)  # a calibrated scorer: quality= works with it
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "x"}\n')
    result = CliRunner().invoke(app, ["cascade-data", str(bad), "--model", str(tiny_lm)])
    assert result.exit_code != 0 and "needs a non-empty 'prompt'" in str(result.exception)
