"""The shipped confidence model is what its committed training answers give: generated questions
only (none from the validation set), refit here from ``benchmarks/data/cascade_train.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from costmw.plugins.router import check_reply, default_confidence_model, evidence, synthetic_questions
from costmw.plugins.router._confidence_data import DEFAULT_CONFIDENCE, fit_confidence

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "benchmarks" / "data" / "cascade_train.jsonl"
DEV = ROOT.parent / "shared" / "data" / "devsets" / "route_questions_dev.jsonl"


def training_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_training_answers_are_to_generated_questions_only() -> None:
    model = default_confidence_model()
    rows = training_rows()
    # the first batch, then the second batch's questions that are not in the first
    questions = synthetic_questions(per_kind=model.info["per_kind"], seed=model.info["seed"])
    seen = {q["prompt"] for q in questions}
    for q in synthetic_questions(per_kind=model.info["more_per_kind"], seed=model.info["more_seed"]):
        if q["prompt"] not in seen:
            seen.add(q["prompt"])
            questions.append(q)
    assert [r["prompt"] for r in rows] == [q["prompt"] for q in questions]
    assert [(r["answer"], r["check"], r["category"]) for r in rows] == [(q["answer"], q["check"], q["category"])
                                                                        for q in questions]
    assert len(rows) >= 1200 and len({r["category"] for r in rows}) >= 15
    assert all(r["logprobs"] for r in rows if r["reply"].strip())
    assert sum(1 for r in rows if r.get("samples")) >= 50
    if DEV.exists():  # the validation questions are never trained on
        dev = {json.loads(line)["prompt"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()}
        assert not dev & {r["prompt"] for r in rows}


def test_the_shipped_model_refits_from_the_committed_answers() -> None:
    shipped = default_confidence_model()
    rows = [{**r, "right": check_reply(r["reply"], r["answer"], r["check"]),
             "evidence": evidence(r["prompt"], r["reply"], logprobs=r["logprobs"], finish_reason=r["finish_reason"])}
            for r in training_rows()]
    assert shipped.info["right"] == pytest.approx(sum(r["right"] for r in rows) / len(rows))
    assert shipped.neighbours is not None and shipped.neighbours.right.tolist() == [r["right"] for r in rows]
    refit = fit_confidence(rows, features=shipped.features, l2=shipped.l2, by_category=True,
                           embeddings=shipped.neighbours.vectors, embedder=shipped.neighbours.embedder)
    assert refit.neighbours is not None
    assert refit.neighbours.groups.tolist() == shipped.neighbours.groups.tolist()
    assert refit.coef == pytest.approx(shipped.coef, abs=1e-6)
    assert refit.intercept == pytest.approx(shipped.intercept, abs=1e-6)
    assert [p for p, _ in refit.calibration] == pytest.approx([p for p, _ in shipped.calibration], abs=1e-6)
    assert shipped.confidence == DEFAULT_CONFIDENCE and shipped.info["folds_by_category"] is True
    # a stricter target keeps less, and the bound keeps less than the raw count would
    assert shipped.threshold_for(0.9) <= shipped.threshold_for(0.95) <= shipped.threshold_for(0.98)
    assert shipped.threshold_for(0.95) >= shipped.threshold_for(0.95, confidence=0.0)


def test_the_shipped_past_prompts_are_the_training_prompts_embedded() -> None:
    from costmw.embeddings import resolve_embedder

    shipped = default_confidence_model()
    assert shipped.neighbours is not None
    rows = training_rows()
    picked = list(range(0, len(rows), 37))
    fresh = resolve_embedder(shipped.neighbours.embedder).embed([rows[i]["prompt"] for i in picked])
    stored = shipped.neighbours.vectors[picked].astype("float32")
    cosine = (fresh * stored).sum(axis=1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1))
    assert cosine.min() > 0.99  # one embedding space, whichever MiniLM runtime is installed
