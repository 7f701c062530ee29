"""Pruning and quantization: smaller models that still load, with size, speed and quality reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters.make import prune, quantize
from costmw.adapters.make._evaluate import generate_answers
from costmw.adapters.make._examples import Example
from costmw.adapters.make._models import load_model

import costmw


def test_structured_pruning_makes_a_smaller_model_that_reloads(tuned_tiny: Path, rows: list[dict[str, Any]],
                                                               tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    result = prune(tuned_tiny, tmp_path / "pruned", amount=0.3, target="both", data=rows, recover_steps=15,
                   recover_lr=1e-3, progress=False, validation=0.2, eval_answers=8, speed_prompts=1)
    before, pruned, recovered = result.metrics["stages"]
    assert pruned["params"] < 0.85 * before["params"]
    assert pruned["disk_mb"] < before["disk_mb"]
    assert result.training is not None  # the recovery fine-tune ran and learned
    assert result.training.last_loss < result.training.first_loss  # type: ignore[operator]
    assert recovered["params"] == pruned["params"]
    assert result.metrics["intermediate_size"] == [96, 67] and result.metrics["attention_heads"] == [4, 2]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned" / "model")
    assert model.config.intermediate_size == 67 and model.config.num_attention_heads == 2
    assert model.config.num_key_value_heads == 2 and model.model.layers[0].self_attn.o_proj.in_features == 24
    assert model(input_ids=torch.tensor([[1, 4, 7]])).logits.shape[-1] == model.config.vocab_size
    manifest = json.loads((tmp_path / "pruned" / "costmw-target.json").read_text())
    assert manifest["base"] == "model" and manifest["metrics"]["technique"] == "prune-structured"


def test_pruning_mlp_only_without_data_uses_weight_norms(tuned_tiny: Path, tmp_path: Path) -> None:
    result = prune(tuned_tiny, tmp_path / "mlp", amount=0.5, target="mlp", progress=False)
    assert result.metrics["importance"] == "weight norms"
    assert result.metrics["intermediate_size"] == [96, 48] and result.metrics["attention_heads"] == [4, 4]


def test_magnitude_pruning_zeroes_the_smallest_weights(tuned_tiny: Path, rows: list[dict[str, Any]],
                                                       tmp_path: Path) -> None:
    result = prune(tuned_tiny, tmp_path / "sparse", method="magnitude", amount=0.5, data=rows, recover_steps=5,
                   recover_lr=1e-3, progress=False, validation=0.2, eval_answers=4, speed_prompts=1)
    before, pruned, recovered = result.metrics["stages"]
    assert pruned["params"] == before["params"]
    linear = sum(p.numel() for n, p in load_model(tuned_tiny)[0].named_parameters()
                 if n.startswith("model.layers.") and p.dim() == 2)
    assert before["nonzero_params"] - pruned["nonzero_params"] == pytest.approx(linear / 2, rel=0.01)
    assert recovered["nonzero_params"] == pruned["nonzero_params"]  # recovery keeps the pruned weights at zero


def test_prune_checks_its_inputs(tuned_tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(costmw.ConfigError, match="fraction"):
        prune(tuned_tiny, tmp_path / "x", amount=1.5)
    with pytest.raises(costmw.ConfigError, match="needs data"):
        prune(tuned_tiny, tmp_path / "x", recover_steps=5)
    with pytest.raises(costmw.ConfigError, match="target"):
        prune(tuned_tiny, tmp_path / "x", target="layers")


def test_int8_quantization_is_smaller_and_keeps_answers(tuned_tiny: Path, rows: list[dict[str, Any]],
                                                        tmp_path: Path) -> None:
    result = quantize(tuned_tiny, tmp_path / "int8", method="int8", data=rows, validation=0.2, eval_answers=8,
                      speed_prompts=1)
    fp32, int8 = result.metrics["stages"]
    assert int8["memory_mb"] < 0.6 * fp32["memory_mb"]
    assert int8["agreement_exact"] >= fp32["agreement_exact"] - 0.125
    manifest = json.loads((tmp_path / "int8" / "costmw-target.json").read_text())
    assert manifest["quantize"] == "int8"
    assert (tmp_path / "int8" / manifest["base"]).resolve() == (tuned_tiny / "model").resolve()


def test_gguf_export_runs_in_llama_cpp_with_the_same_answers(llama_cpp: Any, tuned_tiny: Path,
                                                             rows: list[dict[str, Any]], tmp_path: Path) -> None:
    result = quantize(tuned_tiny, tmp_path / "gguf", method="gguf", gguf_type="f32", measure=False)
    manifest = json.loads((tmp_path / "gguf" / "costmw-target.json").read_text())
    assert manifest["kind"] == "llamacpp" and manifest["gguf_file"] == "model-f32.gguf"
    model, tok = load_model(tuned_tiny)
    examples = [Example(messages=[{"role": "user", "content": r["prompt"]}], answer=r["response"]) for r in rows[:6]]
    expected = generate_answers(model, tok, examples, max_new_tokens=6)
    llm = llama_cpp.Llama(model_path=str(result.path / "model-f32.gguf"), n_ctx=256, verbose=False)
    got = [llm.create_chat_completion(messages=ex.messages, max_tokens=6, temperature=0.0)
           ["choices"][0]["message"]["content"].strip() for ex in examples]
    assert got == expected
    assert (result.path / "model-f32.gguf").stat().st_size < 1.2 * sum(p.numel() * 4 for p in model.parameters())


def test_bnb_writes_a_cuda_config(tuned_tiny: Path, tmp_path: Path) -> None:
    result = quantize(tuned_tiny, tmp_path / "nf4", method="bnb-4bit")
    manifest = json.loads((tmp_path / "nf4" / "costmw-target.json").read_text())
    assert manifest["quantize"] == "bnb-4bit" and manifest["metrics"]["config"]["bnb_4bit_quant_type"] == "nf4"
    assert result.metrics["runnable_here"] in (True, False)
    with pytest.raises(costmw.ConfigError, match="method"):
        quantize(tuned_tiny, tmp_path / "x", method="int4")


def test_gguf_export_of_a_head_pruned_model(llama_cpp: Any, tuned_tiny: Path, rows: list[dict[str, Any]],
                                            tmp_path: Path) -> None:
    """Fewer heads than hidden_size / head_dim: llama.cpp must read the head size from the file."""
    pruned = prune(tuned_tiny, tmp_path / "pruned", amount=0.5, target="heads", progress=False)
    assert pruned.metrics["attention_heads"] == [4, 2]
    quantize(pruned.path, tmp_path / "gguf", method="gguf", gguf_type="f32", measure=False)
    model, tok = load_model(pruned.path)
    examples = [Example(messages=[{"role": "user", "content": r["prompt"]}], answer=r["response"]) for r in rows[:4]]
    llm = llama_cpp.Llama(model_path=str(tmp_path / "gguf" / "model-f32.gguf"), n_ctx=256, verbose=False)
    got = [llm.create_chat_completion(messages=ex.messages, max_tokens=6, temperature=0.0)
           ["choices"][0]["message"]["content"].strip() for ex in examples]
    assert got == generate_answers(model, tok, examples, max_new_tokens=6)
