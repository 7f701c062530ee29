"""Distillation: student initialised from the teacher, logit and sequence-level training, the gate, the flywheel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.adapters.make import distill, distill_from_ledger, every_other_layer, init_student
from costmw.adapters.make._models import load_model

import costmw


def test_every_other_layer_keeps_the_last() -> None:
    assert every_other_layer(30) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 29]
    assert every_other_layer(4) == [0, 3]
    assert every_other_layer(1) == [0]


def test_student_from_teacher_has_half_the_layers_and_reloads(tuned_tiny: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    path = init_student(tuned_tiny, tmp_path / "student")
    student = AutoModelForCausalLM.from_pretrained(path)
    teacher, _ = load_model(tuned_tiny)
    assert student.config.num_hidden_layers == 2
    assert torch.equal(student.model.layers[1].mlp.up_proj.weight, teacher.model.layers[3].mlp.up_proj.weight)
    assert [layer.self_attn.layer_idx for layer in student.model.layers] == [0, 1]
    ids = torch.tensor([[1, 5, 9, 2]])
    assert student(input_ids=ids).logits.shape == (1, 4, teacher.config.vocab_size)


def test_logit_distillation_trains_a_smaller_student(tuned_tiny: Path, rows: list[dict[str, Any]],
                                                     tmp_path: Path) -> None:
    result = distill(tuned_tiny, rows, tmp_path / "kd", method="logits", steps=40, lr=3e-3, progress=False,
                     validation=0.2, eval_answers=8)
    m = result.metrics
    assert result.manifest is not None and result.passed
    assert result.training is not None and result.training.last_loss < result.training.first_loss  # type: ignore[operator]
    assert m["student_params"] < m["teacher_params"] and m["student_bytes"] < m["teacher_bytes"]
    assert 0.0 <= m["agreement"] <= 1.0
    manifest = json.loads(result.manifest.read_text())
    assert manifest["base"] == "model" and manifest["kind"] == "hf"


def test_gate_refuses_a_bad_student(tuned_tiny: Path, tiny_base: Path, rows: list[dict[str, Any]],
                                    tmp_path: Path) -> None:
    # one step from a random student cannot agree with a teacher that labels every ticket right
    result = distill(tuned_tiny, rows, tmp_path / "bad", student=tiny_base, method="sequence", steps=1,
                     progress=False, validation=0.2, eval_answers=8, bar=0.9)
    assert not result.passed and result.manifest is None
    assert not (tmp_path / "bad" / "costmw-target.json").exists()
    assert "below the bar of 90%" in result.message and result.metrics["agreement"] < 0.9


def test_sequence_distillation_from_api_answers_needs_a_student(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    with pytest.raises(costmw.ConfigError, match="local teacher"):
        distill(None, rows, tmp_path / "x", method="logits")
    with pytest.raises(costmw.ConfigError, match="student"):
        distill(None, rows, tmp_path / "x", method="sequence")


def _ledger(path: Path, rows: list[dict[str, Any]]) -> Path:
    labels = {r["prompt"]: r["response"] for r in rows}
    teacher = MockTarget(lambda r: labels.get(r.last_user_text, "I'm sorry, but I can't help with that."),
                         name="gpt-big")
    chain = costmw.Chain(targets=[teacher], ledger=costmw.Ledger(path, store_text=True))
    for r in rows:
        chain.complete([{"role": "user", "content": r["prompt"]}], model="gpt-big")
    chain.complete([{"role": "user", "content": "tell me a secret"}], model="gpt-big")
    chain.close()
    return path


def test_flywheel_registers_only_above_the_bar(tiny_base: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "ledger.db", rows)
    refused = distill_from_ledger(ledger, tiny_base, tmp_path / "student", teacher_model="gpt-big", bar=0.9,
                                  steps=3, progress=False, eval_answers=8)
    assert not refused.passed and refused.manifest is None
    assert refused.metrics["data"]["removed"]["refused"] == 1
    assert (tmp_path / "student" / "data" / "train.jsonl").exists()
    assert "nothing registered" in refused.message
    accepted = distill_from_ledger(ledger, tiny_base, tmp_path / "student", bar=0.0, steps=3, progress=False,
                                   eval_answers=8, price=(0.01, 0.01))
    assert accepted.passed and accepted.manifest is not None
    manifest = json.loads(accepted.manifest.read_text())
    assert manifest["adapter"] == "adapter" and manifest["price"] == {"input": 0.01, "output": 0.01}
    assert manifest["metrics"]["held_out_prompts"] > 0
