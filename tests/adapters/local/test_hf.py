"""HFTarget on a tiny random llama: generation, usage, stop text, streaming, batching, sharing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import HFTarget
from costmw.adapters.local import loaded_models

from costmw import Chain, ContextWindowError, InvalidRequestError, Request


def ask(text: str, **params: Any) -> Request:
    return Request.create([{"role": "user", "content": text}], "tiny", params=params)


def prompt_tokens(target: HFTarget, text: str) -> int:
    rendered = target.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                    add_generation_prompt=True)
    return len(target.tokenizer(rendered, add_special_tokens=False)["input_ids"])


async def test_answer_counts_real_tokens_and_is_priced(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, name="tiny", price=(100.0, 200.0))
    response = await target.acomplete(ask("the cat sat on the mat", max_tokens=7))
    assert response.text
    assert response.usage.prompt_tokens == prompt_tokens(target, "the cat sat on the mat")
    assert 1 <= response.usage.completion_tokens <= 7
    assert response.finish_reason in ("stop", "length")
    expected = (response.usage.prompt_tokens * 100 + response.usage.completion_tokens * 200) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    assert response.served_by == "target:tiny"
    assert response.model == Path(tiny_lm).name
    assert target.capabilities.batching and target.capabilities.streaming
    assert not target.capabilities.tools


async def test_greedy_is_deterministic_and_max_tokens_gives_length(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    first = await target.acomplete(ask("the dog ran in the park", max_tokens=12))
    second = await target.acomplete(ask("the dog ran in the park", max_tokens=12))
    assert first.text == second.text
    short = await target.acomplete(ask("the dog ran in the park", max_tokens=3))
    if short.usage.completion_tokens == 3 and len(first.text) > len(short.text):
        assert short.finish_reason == "length"
        assert first.text.startswith(short.text)


async def test_stop_sequence_cuts_the_answer(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    full = await target.acomplete(ask("what is the capital of france?", max_tokens=16))
    assert len(full.text) >= 6, full.text
    stop = full.text[3:6]
    cut = await target.acomplete(ask("what is the capital of france?", max_tokens=16, stop=[stop]))
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens


async def test_streaming_is_token_by_token_and_matches_the_answer(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    whole = await target.acomplete(ask("translate to french: good morning", max_tokens=10))
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:  # the loop stays free while the model generates
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())
    chunks = [c async for c in target.astream(ask("translate to french: good morning", max_tokens=10))]
    done.set()
    await tick_task
    pieces = [c.text for c in chunks if c.text]
    final = chunks[-1].response
    assert final is not None and final.text == whole.text == "".join(pieces)
    assert len(pieces) >= min(3, final.usage.completion_tokens - 1)
    assert final.usage == whole.usage
    assert any(c.finish_reason for c in chunks[:-1])
    assert ticks > len(pieces)


async def test_streaming_holds_back_stop_text(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    full = await target.acomplete(ask("the cat sat", max_tokens=16))
    stop = full.text[4:7]
    chunks = [c async for c in target.astream(ask("the cat sat", max_tokens=16, stop=stop))]
    streamed = "".join(c.text for c in chunks)
    assert stop not in streamed
    assert streamed == full.text[: full.text.index(stop)] == chunks[-1].response.text  # type: ignore[union-attr]


async def test_batch_of_mixed_lengths_is_one_generate_call_and_matches_single_answers(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm).load()
    prompts = ["the cat", "what is the capital of france? paris is", "SELECT name FROM users WHERE age > 30"]
    singles = [await target.acomplete(ask(p, max_tokens=8)) for p in prompts]
    calls: list[int] = []
    model = target.loaded_model
    original = model.generate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    model.generate = counting
    try:
        batched = await target.abatch([ask(p, max_tokens=8) for p in prompts])
    finally:
        del model.generate
    assert calls == [3]
    for one, many in zip(singles, batched, strict=True):
        assert not isinstance(many, BaseException)
        assert many.text == one.text
        assert many.usage == one.usage
        assert many.info["batch_size"] == 3


async def test_batch_rows_keep_their_own_max_tokens(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    long, short = await target.abatch([ask("the cat sat", max_tokens=10), ask("the cat sat", max_tokens=2)])
    assert not isinstance(long, BaseException) and not isinstance(short, BaseException)
    assert short.usage.completion_tokens <= 2
    assert long.text.startswith(short.text)


async def test_a_bad_request_in_a_batch_fails_alone(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    tool = {"type": "function", "function": {"name": "f"}}
    good, bad = await target.abatch([ask("the cat", max_tokens=3), ask("the cat", tools=[tool])])
    assert not isinstance(good, BaseException)
    assert isinstance(bad, InvalidRequestError) and "tools" in str(bad)


async def test_targets_over_one_base_share_its_weights(tiny_lm: Path, fresh_models: None) -> None:
    a, b = HFTarget(tiny_lm, name="a"), HFTarget(tiny_lm, name="b", price=(1.0, 1.0))
    assert a.loaded_model is b.loaded_model
    assert len(loaded_models()) == 1


def test_concurrent_generations_on_one_model_are_serialised(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm).load()
    model = target.loaded_model
    original = model.generate
    active, overlaps = [0], [0]
    guard = threading.Lock()

    def watched(*args: Any, **kwargs: Any) -> Any:
        with guard:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
        time.sleep(0.02)
        try:
            return original(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    model.generate = watched
    try:
        async def many() -> list[Any]:
            other = HFTarget(tiny_lm, name="other")
            return await asyncio.gather(*(t.acomplete(ask("the cat", max_tokens=3))
                                          for t in (target, other, target, other)))
        results = asyncio.run(many())
    finally:
        del model.generate
    assert len(results) == 4 and overlaps[0] == 1


async def test_prompt_longer_than_the_context_window_is_a_context_error(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, context_window=16)
    with pytest.raises(ContextWindowError):
        await target.acomplete(ask("the cat sat on the mat and the dog ran in the park " * 4, max_tokens=3))


async def test_invalid_parameters_fail_fast(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        await target.acomplete(ask("hi", max_tokens=0))
    with pytest.raises(InvalidRequestError, match="response_format"):
        await target.acomplete(ask("hi", response_format={"type": "json_object"}))
    with pytest.raises(InvalidRequestError, match="n must be an integer from 1"):
        await target.acomplete(ask("hi", n=17))


async def test_sampling_with_a_seed_is_reproducible(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    one = await target.acomplete(ask("the cat", max_tokens=8, temperature=1.5, seed=7))
    two = await target.acomplete(ask("the cat", max_tokens=8, temperature=1.5, seed=7))
    assert one.text == two.text


def test_works_as_a_chain_target_through_the_sync_api(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, name="local", price=(0.0, 0.0))
    with Chain(targets=[target]) as chain:
        response = chain.complete([{"role": "user", "content": "the cat"}], model="local", max_tokens=4)
        pieces = list(chain.stream([{"role": "user", "content": "the cat"}], model="local", max_tokens=4))
    assert response.served_by == "target:local" and response.usage.completion_tokens >= 1
    assert pieces[-1].response is not None and pieces[-1].response.text == response.text


def test_cancelled_stream_stops_generation(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    model = target.loaded_model
    original = model.generate
    made: list[int] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        kwargs["min_new_tokens"] = 200  # no early end of text: only cancelling can stop it
        out = original(*args, **kwargs)
        made.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    async def first_piece_only() -> None:
        stream = target.astream(ask("the cat sat", max_tokens=200, stop=["<never>"]))
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()
        for _ in range(200):
            if made:
                return
            await asyncio.sleep(0.01)

    model.generate = recording
    try:
        asyncio.run(first_piece_only())
    finally:
        del model.generate
    assert made and made[0] < 200
