"""int8 on CPU (smoothed, per-token activations), and bitsandbytes' clear refusal without CUDA."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from costmw.adapters import HFTarget
from costmw.adapters.local._int8 import quantize_int8, weight_bytes

from costmw import ConfigError, MissingDependencyError, Request


def _logits(model: object, ids: object) -> object:
    import torch

    with torch.inference_mode():
        return model(ids).logits  # type: ignore[operator]


def test_int8_keeps_the_logits_and_shrinks_the_weights(tiny_lm: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    fp32 = AutoModelForCausalLM.from_pretrained(tiny_lm)
    int8 = AutoModelForCausalLM.from_pretrained(tiny_lm)
    info = quantize_int8(int8, tokenizer)
    assert info["layers"] == 2 * 7 + 1 and info["smoothed"]
    assert weight_bytes(int8) < 0.45 * weight_bytes(fp32)
    ids = tokenizer("the cat sat on the mat and the dog ran in the park", return_tensors="pt").input_ids
    a, b = _logits(fp32, ids), _logits(int8, ids)
    error = (a - b).norm() / a.norm()  # type: ignore[operator]
    assert float(error) < 0.15  # a random model with large weights; a wrong scale gives ~1
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean()  # type: ignore[attr-defined]
    assert float(agree) >= 0.8
    assert not any(type(m) is torch.nn.Linear for m in int8.modules())


def test_smoothing_alone_changes_nothing(tiny_lm: Path) -> None:
    from costmw.adapters.local._int8 import _smooth
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    ids = tokenizer("what is the capital of france?", return_tensors="pt").input_ids
    before = _logits(model, ids)
    assert _smooth(model, tokenizer, 0.5)
    after = _logits(model, ids)
    assert math.isclose(float((before - after).abs().max()), 0.0, abs_tol=1e-3)  # type: ignore[operator]


async def test_int8_target_generates(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, quantize="int8")
    response = await target.acomplete(Request.create([{"role": "user", "content": "the cat"}], "t",
                                                     params={"max_tokens": 5}))
    assert response.text and 1 <= response.usage.completion_tokens <= 5
    assert target.loaded_model is not HFTarget(tiny_lm).loaded_model


@pytest.mark.parametrize("kind", ["bnb-8bit", "bnb-4bit"])
def test_bitsandbytes_needs_cuda_and_says_so(tiny_lm: Path, kind: str) -> None:
    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None:
        HFTarget(tiny_lm, quantize=kind)  # accepted where it can run
        return
    with pytest.raises((ConfigError, MissingDependencyError), match="CUDA|bitsandbytes"):
        HFTarget(tiny_lm, quantize=kind)


def test_unknown_quantization_and_int8_on_gpu_placement_are_rejected(tiny_lm: Path) -> None:
    with pytest.raises(ConfigError, match="quantize must be one of"):
        HFTarget(tiny_lm, quantize="int4")
    with pytest.raises(ConfigError, match="CPU"):
        HFTarget(tiny_lm, quantize="int8", device_map="auto")


async def test_device_map_and_max_memory_load_the_same_model(tiny_lm: Path) -> None:
    ask = Request.create([{"role": "user", "content": "the cat"}], "t", params={"max_tokens": 6})
    placed = HFTarget(tiny_lm, device_map="auto", max_memory={"cpu": "1GiB"})
    assert placed.loaded_model is not HFTarget(tiny_lm).loaded_model  # placement is part of the shared key
    assert (await placed.acomplete(ask)).text == (await HFTarget(tiny_lm).acomplete(ask)).text
    with pytest.raises(ConfigError, match="max_memory= needs device_map="):
        HFTarget(tiny_lm, max_memory={"cpu": "1GiB"}, name="x").load()
