"""LoRA adapters on HFTarget: per-request switching, one base for many adapters, merging, mismatches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import HFTarget
from costmw.adapters.local import loaded_models

from costmw import ConfigError, InvalidRequestError, Request


def ask(text: str, adapter: str | None = None, **params: Any) -> Request:
    params.setdefault("max_tokens", 10)
    options = {} if adapter is None else {"adapter": adapter}
    return Request.create([{"role": "user", "content": text}], "tiny", params=params, options=options)


async def test_an_adapter_changes_the_answers(tiny_lm: Path, lora_a: Path) -> None:
    base = await HFTarget(tiny_lm).acomplete(ask("the cat sat on the mat"))
    tuned = await HFTarget(tiny_lm, lora=lora_a).acomplete(ask("the cat sat on the mat"))
    assert tuned.text != base.text
    assert tuned.info["adapter"] == lora_a.name and tuned.model.endswith("+" + lora_a.name)


async def test_adapters_are_chosen_per_request_on_one_base(tiny_lm: Path, lora_a: Path, lora_b: Path,
                                                           fresh_models: None) -> None:
    only_a = await HFTarget(tiny_lm, lora=lora_a).acomplete(ask("the dog ran"))
    only_b = await HFTarget(tiny_lm, lora=lora_b).acomplete(ask("the dog ran"))
    plain = await HFTarget(tiny_lm).acomplete(ask("the dog ran"))
    both = HFTarget(tiny_lm, lora={"sql": lora_a, "chat": lora_b})
    assert (await both.acomplete(ask("the dog ran"))).text == only_a.text  # the first is the default
    assert (await both.acomplete(ask("the dog ran", "chat"))).text == only_b.text
    assert (await both.acomplete(ask("the dog ran", "sql"))).text == only_a.text
    assert (await both.acomplete(ask("the dog ran", "base"))).text == plain.text
    assert (await HFTarget(tiny_lm).acomplete(ask("the dog ran"))).text == plain.text  # adapters stay off
    assert len(loaded_models()) == 1  # every target above ran on one loaded base


async def test_a_batch_with_mixed_adapters_is_one_pass(tiny_lm: Path, lora_a: Path, lora_b: Path) -> None:
    target = HFTarget(tiny_lm, lora={"a": lora_a, "b": lora_b})
    singles = [await target.acomplete(ask("the cat", name)) for name in ("a", "b", "base")]
    calls: list[Any] = []
    model = target.loaded_model
    original = model.generate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("adapter_names"))
        return original(*args, **kwargs)

    model.generate = counting
    try:
        batch = await target.abatch([ask("the cat", name) for name in ("a", "b", "base")])
    finally:
        del model.generate
    assert len(calls) == 1
    assert [r.text for r in batch] == [r.text for r in singles]  # type: ignore[union-attr]


async def test_merged_adapter_answers_like_the_unmerged_one(tiny_lm: Path, lora_a: Path) -> None:
    unmerged = await HFTarget(tiny_lm, lora=lora_a).acomplete(ask("what is the capital of france?"))
    merged_target = HFTarget(tiny_lm, lora=lora_a, merge=True)
    merged = await merged_target.acomplete(ask("what is the capital of france?"))
    assert merged.text == unmerged.text
    assert merged_target.loaded_model is not HFTarget(tiny_lm).loaded_model  # merging never touches the shared base


async def test_unknown_adapter_names_are_rejected(tiny_lm: Path, lora_a: Path) -> None:
    target = HFTarget(tiny_lm, lora={"sql": lora_a})
    with pytest.raises(InvalidRequestError, match="no LoRA adapter 'poetry'.*sql"):
        await target.acomplete(ask("hi", "poetry"))


def test_an_adapter_for_another_base_is_a_clear_error(tiny_lm: Path, lora_other: Path) -> None:
    target = HFTarget(tiny_lm, lora=lora_other)
    with pytest.raises(ConfigError, match="different base model.*hidden_size"):
        target.load()


def test_an_adapter_for_an_unknown_base_that_does_not_fit(tiny_lm: Path, lora_other: Path, tmp_path: Path) -> None:
    import json
    import shutil

    moved = tmp_path / "adapter"
    shutil.copytree(lora_other, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "somebody/unknown-model"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="does not fit base model"):
        HFTarget(tiny_lm, lora=moved).load()


def test_option_mistakes_fail_at_construction(tiny_lm: Path, lora_a: Path, lora_b: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        HFTarget(tiny_lm, lora=[lora_a, lora_b], merge=True)
    with pytest.raises(ConfigError, match="merge=True"):
        HFTarget(tiny_lm, lora=lora_a, quantize="int8")
    with pytest.raises(ConfigError, match="reserved"):
        HFTarget(tiny_lm, lora={"base": lora_a})
    with pytest.raises(ConfigError, match="LoRA adapter, not a model"):
        HFTarget(lora_a)
    with pytest.raises(ConfigError, match="not a LoRA adapter"):
        HFTarget(tiny_lm, lora=tiny_lm).load()


async def test_int8_with_a_merged_adapter(tiny_lm: Path, lora_a: Path) -> None:
    target = HFTarget(tiny_lm, lora=lora_a, merge=True, quantize="int8")
    response = await target.acomplete(ask("the cat"))
    assert response.text and response.usage.completion_tokens >= 1
