"""LoRA and selected-layer fine-tuning: answer-only loss, loss goes down, checkpoints resume, inputs checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters.make import Example, TrainConfig, tune_full, tune_lora
from costmw.adapters.make._arch import parse_layers
from costmw.adapters.make._lora import default_lora_targets
from costmw.adapters.make._models import load_model
from costmw.adapters.make._tokenize import IGNORE, encode_example, format_prompt
from costmw.adapters.make._trainer import latest_checkpoint, train

import costmw


def test_loss_only_on_answer_tokens(tiny_base: Path) -> None:
    _, tok = load_model(tiny_base)
    ex = Example(messages=[{"role": "user", "content": "where is my parcel"}], answer="shipping")
    enc = encode_example(tok, ex, max_length=64)
    assert enc is not None
    prompt_len = len(tok(format_prompt(tok, ex.messages), add_special_tokens=False)["input_ids"])
    assert enc.labels[:prompt_len] == [IGNORE] * prompt_len
    answer_ids = [t for t in enc.labels if t != IGNORE]
    assert tok.decode(answer_ids) == "shipping<|im_end|>"
    short = encode_example(tok, Example(messages=[{"role": "user", "content": "word " * 80}], answer="billing"), 16)
    assert short is not None and len(short.input_ids) == 16 and short.labels[-1] == tok.eos_token_id


def test_lora_trains_a_small_adapter_and_writes_a_manifest(tiny_base: Path, rows: list[dict[str, Any]],
                                                           tmp_path: Path) -> None:
    result = tune_lora(tiny_base, rows, tmp_path / "lora", steps=30, lr=1e-2, rank=4, progress=False,
                       validation=0.2, eval_answers=4)
    assert result.training is not None
    assert result.training.last_loss < result.training.first_loss  # type: ignore[operator]
    assert result.metrics["val_loss_after"] < result.metrics["val_loss_before"]
    assert result.metrics["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert 0 < result.training.trainable_params < result.training.total_params / 5
    manifest = json.loads((tmp_path / "lora" / "costmw-target.json").read_text())
    assert manifest["kind"] == "hf" and manifest["adapter"] == "adapter"
    assert (tmp_path / "lora" / manifest["base"]).resolve() == tiny_base.resolve()
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "lora" / "checkpoints").exists()  # dropped once the adapter is safe


def _encoded(tiny_base: Path, rows: list[dict[str, Any]]) -> tuple[Any, Any, list[Any]]:
    import torch
    from costmw.adapters.make._lora import lora_model
    from costmw.adapters.make._tokenize import encode_examples

    model, tok = load_model(tiny_base)
    torch.manual_seed(0)
    model = lora_model(model, rank=4, alpha=None, dropout=0.0, target_modules=None)
    examples = [Example(messages=[{"role": "user", "content": r["prompt"]}], answer=r["response"]) for r in rows]
    return model, tok, encode_examples(tok, examples, 64)


def test_resume_continues_where_an_interrupted_run_stopped(tiny_base: Path, rows: list[dict[str, Any]],
                                                           tmp_path: Path) -> None:
    import torch

    fp = {"technique": "test"}
    model, tok, enc = _encoded(tiny_base, rows)
    straight = train(model, enc, [], TrainConfig(steps=6, batch_size=4, save_every=2, progress=False), tmp_path / "a",
                     pad_id=tok.pad_token_id, fingerprint=fp)
    calls = {"n": 0}

    def stop_at_step_5(m: Any, batch: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return m(**batch).loss

    model, tok, enc = _encoded(tiny_base, rows)
    with pytest.raises(KeyboardInterrupt, match="resume"):
        train(model, enc, [], TrainConfig(steps=6, batch_size=4, save_every=2, progress=False), tmp_path / "b",
              pad_id=tok.pad_token_id, fingerprint=fp, loss_fn=stop_at_step_5)
    last = latest_checkpoint(tmp_path / "b")
    assert last is not None and last.name == "step-0000004"
    assert not [p for p in (tmp_path / "b" / "checkpoints").iterdir() if p.name.startswith(".")]
    model, tok, enc = _encoded(tiny_base, rows)
    resumed = train(model, enc, [], TrainConfig(steps=6, batch_size=4, save_every=2, progress=False, resume=True),
                    tmp_path / "b", pad_id=tok.pad_token_id, fingerprint=fp)
    assert resumed.resumed_from == 4
    assert torch.allclose(torch.tensor(resumed.losses), torch.tensor(straight.losses), atol=1e-5)
    with pytest.raises(costmw.ConfigError, match="technique"):
        train(model, enc, [], TrainConfig(steps=8, batch_size=4, progress=False, resume=True), tmp_path / "b",
              pad_id=tok.pad_token_id, fingerprint={"technique": "other"})


def test_full_tuning_changes_only_the_chosen_layers(tiny_base: Path, rows: list[dict[str, Any]],
                                                    tmp_path: Path) -> None:
    import torch

    result = tune_full(tiny_base, rows, tmp_path / "full", layers="last:1", steps=10, lr=1e-3, progress=False,
                       validation=0.2, eval_answers=2, train_norm=False)
    before, _ = load_model(tiny_base)
    after, _ = load_model(tmp_path / "full")
    changed = {n.split(".")[2] for n, p in after.named_parameters()
               if n.startswith("model.layers.") and not torch.equal(p, before.get_parameter(n))}
    assert changed == {"3"}
    assert result.metrics["layers"] == [3]
    assert torch.equal(after.model.embed_tokens.weight, before.model.embed_tokens.weight)


def test_layer_specs() -> None:
    assert parse_layers("last:2", 6) == [4, 5]
    assert parse_layers("first:2,5", 6) == [0, 1, 5]
    assert parse_layers("1-3,-1", 6) == [1, 2, 3, 5]
    assert parse_layers("all", 3) == [0, 1, 2]
    with pytest.raises(costmw.ConfigError, match="0..5"):
        parse_layers("7", 6)
    with pytest.raises(costmw.ConfigError, match="cannot read"):
        parse_layers("top", 6)


def test_default_lora_targets_per_architecture() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    assert default_lora_targets(gpt2) == ["c_attn"]
    neox = GPTNeoXForCausalLM(GPTNeoXConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                            intermediate_size=64, vocab_size=64))
    neox.config.model_type = "unknown-arch"  # type: ignore[misc]  # falls back to every linear layer but the head
    fallback = default_lora_targets(neox)
    assert "query_key_value" in fallback and "embed_out" not in fallback


def test_inputs_are_checked_before_training(tiny_base: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    with pytest.raises(costmw.ConfigError, match="does not exist"):
        tune_lora(tmp_path / "nope", rows, tmp_path / "o")
    with pytest.raises(costmw.ConfigError, match="not in this model"):
        tune_lora(tiny_base, rows, tmp_path / "o", target_modules=["c_attn"], progress=False)
    with pytest.raises(costmw.ConfigError, match="empty"):
        tune_lora(tiny_base, [], tmp_path / "o", progress=False)
    with pytest.raises(costmw.ConfigError, match="rank"):
        tune_lora(tiny_base, rows, tmp_path / "o", rank=0, progress=False)
    assert not (tmp_path / "o" / "costmw-target.json").exists()


def test_adapter_that_does_not_fit_the_base_is_refused(tiny_base: Path, rows: list[dict[str, Any]],
                                                       tmp_path: Path) -> None:
    from costmw.adapters.local._manifest import write_manifest
    from costmw.adapters.make import tiny_llama

    tune_lora(tiny_base, rows, tmp_path / "lora", steps=2, progress=False, eval_answers=0)
    other = tiny_llama(tmp_path / "other", ["some other words"], hidden_size=64, heads=4)
    write_manifest(tmp_path / "mismatch", kind="hf", base=other, adapter=tmp_path / "lora" / "adapter")
    with pytest.raises(costmw.ConfigError, match="does not match base model"):
        load_model(tmp_path / "mismatch")
