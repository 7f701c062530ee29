"""Each technique end to end: data → train or compress → manifest → costmw.adapters.load() → a call through a chain.

The served answer must be the one the tool measured: the loader and the tools format prompts and
decode the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import load
from costmw.adapters.make import Example, clean_dataset, distill, prune, quantize, tune_lora
from costmw.adapters.make._evaluate import generate_answers
from costmw.adapters.make._models import load_model

import costmw


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    from costmw.adapters.local import unload_all

    yield
    unload_all()


def _ask(path: Path, prompt: str) -> costmw.Response:
    target = load(path, max_new_tokens=6)
    with costmw.Chain(targets=[target]) as chain:
        return chain.complete([{"role": "user", "content": prompt}], model=target.name, temperature=0.0)


def _expected(model_dir: Path, prompt: str) -> str:
    model, tok = load_model(model_dir)
    ex = Example(messages=[{"role": "user", "content": prompt}], answer="")
    return generate_answers(model, tok, [ex], max_new_tokens=6)[0]


def test_lora_target_serves_what_training_measured(tiny_base: Path, rows: list[dict[str, Any]],
                                                   tmp_path: Path) -> None:
    data = clean_dataset(rows, validation=0.2, out=tmp_path / "data")
    result = tune_lora(tiny_base, tmp_path / "data", tmp_path / "lora", steps=20, lr=1e-2, progress=False,
                       eval_answers=0)
    assert result.metrics["validation_examples"] == len(data.validation)
    prompt = data.validation[0].last_user_text
    response = _ask(tmp_path / "lora", prompt)
    assert response.served_by == f"target:{result.path.name}"
    assert response.text.strip() == _expected(tmp_path / "lora", prompt)


def test_tuned_model_answers_labels_through_a_chain(tuned_tiny: Path, rows: list[dict[str, Any]]) -> None:
    hits = [_ask(tuned_tiny, r["prompt"]).text.strip() == r["response"] for r in rows[:4]]
    assert sum(hits) >= 3


def test_distilled_student_is_a_target(tuned_tiny: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    result = distill(tuned_tiny, rows, tmp_path / "student", steps=20, lr=3e-3, progress=False, eval_answers=2)
    prompt = rows[0]["prompt"]
    assert _ask(result.path, prompt).text.strip() == _expected(result.path, prompt)


def test_pruned_model_is_a_target(tuned_tiny: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    result = prune(tuned_tiny, tmp_path / "pruned", amount=0.3, data=rows, recover_steps=10, recover_lr=3e-4,
                   progress=False, eval_answers=2, speed_prompts=1)
    prompt = rows[1]["prompt"]
    assert _ask(result.path, prompt).text.strip() == _expected(result.path, prompt)


def test_int8_target_is_smaller_and_still_answers(tuned_tiny: Path, rows: list[dict[str, Any]],
                                                  tmp_path: Path) -> None:
    result = quantize(tuned_tiny, tmp_path / "int8", method="int8", data=rows, eval_answers=4, speed_prompts=1)
    fp32, int8 = result.metrics["stages"]
    assert int8["memory_mb"] < fp32["memory_mb"]
    target = load(result.path, max_new_tokens=6)
    assert target.quantize == "int8"  # type: ignore[attr-defined]
    hits = [_ask(result.path, r["prompt"]).text.strip() == r["response"] for r in rows[:4]]
    assert sum(hits) >= 3


def test_gguf_target_runs_in_llama_cpp(llama_cpp: Any, tuned_tiny: Path, rows: list[dict[str, Any]],
                                       tmp_path: Path) -> None:
    result = quantize(tuned_tiny, tmp_path / "gguf", method="gguf", gguf_type="f16", measure=False)
    target = load(result.path, max_new_tokens=6, n_ctx=256)
    assert type(target).__name__ == "LlamaCppTarget"
    prompt = rows[2]["prompt"]
    assert _ask(result.path, prompt).text.strip() == _expected(tuned_tiny, prompt)
