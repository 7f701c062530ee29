"""LlamaCppTarget on SmolLM2-135M-Instruct (Q4_1 GGUF): one real generation, streaming, usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import LlamaCppTarget

from costmw import ContextWindowError, Request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(llama_cpp: Any, smollm2_gguf: Path) -> LlamaCppTarget:
    return LlamaCppTarget(smollm2_gguf, n_ctx=512, price=(0.02, 0.04)).load()


def ask(text: str, **params: object) -> Request:
    return Request.create([{"role": "user", "content": text}], "gpt-4o-mini", params={"max_tokens": 16, **params})


async def test_real_answer_with_usage_and_cost(smol: LlamaCppTarget) -> None:
    response = await smol.acomplete(ask("What is 2+2?"))
    assert "4" in response.text
    assert response.usage.prompt_tokens > 10 and 1 <= response.usage.completion_tokens <= 16
    assert response.finish_reason in ("stop", "length")
    assert response.cost_usd == pytest.approx((response.usage.prompt_tokens * 0.02
                                               + response.usage.completion_tokens * 0.04) / 1e6)
    assert response.served_by == f"target:{smol.name}" and response.model == "SmolLM2-135M-Instruct.Q4_1"


async def test_streaming_matches_and_stop_text_is_honoured(smol: LlamaCppTarget) -> None:
    whole = await smol.acomplete(ask("What is 2+2?"))
    chunks = [c async for c in smol.astream(ask("What is 2+2?"))]
    pieces = [c.text for c in chunks if c.text]
    final = chunks[-1].response
    assert final is not None and "".join(pieces) == final.text == whole.text
    assert len(pieces) >= 3 and final.usage.prompt_tokens == whole.usage.prompt_tokens
    words = whole.text.split()
    stop = " " + words[2]
    cut = await smol.acomplete(ask("What is 2+2?", stop=[stop]))
    assert cut.text == whole.text[: whole.text.index(stop)] and cut.finish_reason == "stop"


async def test_prompt_beyond_the_context_window(llama_cpp: Any, smollm2_gguf: Path) -> None:
    small = LlamaCppTarget(smollm2_gguf, n_ctx=32, name="small")
    with pytest.raises(ContextWindowError):
        await small.acomplete(ask("Tell me everything about the history of the Roman empire, " * 4))


def test_hourly_price_from_measured_throughput(smol: LlamaCppTarget, smollm2_gguf: Path) -> None:
    hourly = LlamaCppTarget(smollm2_gguf, n_ctx=512, hourly_usd=0.36, name="hourly")
    price = hourly.price
    assert price is not None and hourly.measured_tokens_per_s
    assert price.output_per_1m == pytest.approx(0.36 / 3600 / hourly.measured_tokens_per_s * 1e6)


async def test_logprobs_in_openai_format_alone_and_at_the_end_of_a_stream(smol: LlamaCppTarget) -> None:
    response = await smol.acomplete(ask("What is 2+2?", logprobs=True, top_logprobs=3))
    content = response.logprobs
    assert content and "".join(t["token"] for t in content) == response.text
    for token in content:
        assert token["logprob"] <= 0.0 and token["bytes"] == list(token["token"].encode("utf-8"))
        assert len(token["top_logprobs"]) == 3
        assert token["logprob"] == pytest.approx(token["top_logprobs"][0]["logprob"], abs=1e-4)  # greedy
    assert (await smol.acomplete(ask("What is 2+2?"))).logprobs is None
    final = [c async for c in smol.astream(ask("What is 2+2?", logprobs=True))][-1].response
    assert final is not None and final.text == response.text
    assert [t["logprob"] for t in final.logprobs or []] == pytest.approx([t["logprob"] for t in content], abs=1e-4)


async def test_n_answers_to_one_prompt(smol: LlamaCppTarget) -> None:
    response = await smol.acomplete(ask("Name a colour.", n=3, temperature=1.0, seed=5))
    choices = response.info["choices"]
    assert len(choices) == 3 and choices[0]["text"] == response.text
