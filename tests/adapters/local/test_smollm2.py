"""Real generations on SmolLM2-135M-Instruct with transformers: fp32, int8, and fp32 + LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest
from costmw.adapters import HFTarget

from costmw import Request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_dir(smollm2_dir: Path) -> Path:
    return smollm2_dir


def ask(text: str, adapter: str | None = None) -> Request:
    return Request.create([{"role": "user", "content": text}], "gpt-4o", params={"max_tokens": 10},
                          options={} if adapter is None else {"adapter": adapter})


async def test_fp32_int8_and_lora_answer_a_fact(smol_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    fp32 = HFTarget(smol_dir, name="smol")
    base = await fp32.acomplete(ask("What is the capital of France?"))
    assert "Paris" in base.text and base.usage.completion_tokens <= 10

    int8 = HFTarget(smol_dir, name="smol-int8", quantize="int8")
    quantized = await int8.acomplete(ask("What is 2+2?"))
    assert "4" in quantized.text

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path_factory.mktemp("smol-lora")
    untrained = get_peft_model(AutoModelForCausalLM.from_pretrained(smol_dir),
                               LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    untrained.save_pretrained(adapter)  # a fresh LoRA adds zero: answers must not change
    del untrained
    tuned = HFTarget(smol_dir, name="smol-lora", lora={"fresh": adapter})
    assert tuned.loaded_model is fp32.loaded_model  # the adapter rides on the already loaded base
    answer = await tuned.acomplete(ask("What is the capital of France?"))
    assert answer.text == base.text and answer.info["adapter"] == "fresh"
    again = await fp32.acomplete(ask("What is the capital of France?", "base"))
    assert again.text == base.text


async def test_fp32_batch_and_stream(smol_dir: Path) -> None:
    target = HFTarget(smol_dir, name="smol")
    questions = ["What is the capital of France?", "Name a primary colour."]
    batch = await target.abatch([ask(q) for q in questions])
    single = await target.acomplete(ask(questions[0]))
    assert not isinstance(batch[0], BaseException) and batch[0].text == single.text
    chunks = [c async for c in target.astream(ask(questions[1]))]
    assert chunks[-1].response is not None and not isinstance(batch[1], BaseException)
    assert "".join(c.text for c in chunks[:-1]) == chunks[-1].response.text == batch[1].text
