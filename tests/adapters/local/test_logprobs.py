"""Token log-probabilities from HFTarget: OpenAI's format, the same alone as in a padded batch, in
streams, and n answers to one prompt from one generate call."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import HFTarget

from costmw import InvalidRequestError, Request, Response


def ask(text: str, **params: Any) -> Request:
    return Request.create([{"role": "user", "content": text}], "tiny", params=params)


def values(response: Response) -> list[float]:
    assert response.logprobs is not None
    return [t["logprob"] for t in response.logprobs]


async def test_logprobs_come_in_openai_format_and_cover_the_answer(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    response = await target.acomplete(ask("the cat sat on the mat", max_tokens=8, logprobs=True, top_logprobs=3))
    content = response.logprobs
    assert content is not None and len(content) == response.usage.completion_tokens - (
        1 if response.finish_reason == "stop" and len(content) < response.usage.completion_tokens else 0)
    assert "".join(t["token"] for t in content) == response.text
    for token in content:
        assert set(token) == {"token", "logprob", "bytes", "top_logprobs"}
        assert token["logprob"] <= 0.0
        assert token["bytes"] == list(token["token"].encode("utf-8"))
        assert len(token["top_logprobs"]) == 3
        best = token["top_logprobs"][0]["logprob"]
        assert [t["logprob"] for t in token["top_logprobs"]] == sorted((t["logprob"] for t in token["top_logprobs"]),
                                                                      reverse=True)
        assert token["logprob"] <= best + 1e-6
        assert token["logprob"] == pytest.approx(best, abs=1e-5)  # greedy: the chosen token is the likeliest
    assert sum(math.exp(t["logprob"]) for t in content[0]["top_logprobs"]) <= 1.0 + 1e-6


async def test_no_logprobs_unless_asked(tiny_lm: Path) -> None:
    response = await HFTarget(tiny_lm).acomplete(ask("the cat sat on the mat", max_tokens=4))
    assert response.logprobs is None


async def test_padding_does_not_leak_into_a_batched_answers_logprobs(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    short = ask("the cat", max_tokens=6, logprobs=True)
    long = ask("what is the capital of france? paris is the capital of france and the dog ran", max_tokens=6,
               logprobs=True)
    alone = await target.acomplete(short)
    batched = await target.abatch([long, short])
    assert isinstance(batched[1], Response)
    assert batched[1].text == alone.text
    assert values(batched[1]) == pytest.approx(values(alone), abs=1e-4)


async def test_stop_text_cuts_the_logprobs_with_the_answer(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    full = await target.acomplete(ask("what is the capital of france?", max_tokens=16, logprobs=True))
    assert len(full.text) >= 6, full.text
    stop = full.text[3:6]
    cut = await target.acomplete(ask("what is the capital of france?", max_tokens=16, stop=[stop], logprobs=True))
    assert cut.logprobs is not None
    assert "".join(t["token"] for t in cut.logprobs).startswith(cut.text)
    assert values(cut) == pytest.approx(values(full)[: len(cut.logprobs)], abs=1e-5)


async def test_a_stream_ends_with_the_answers_logprobs(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    request = ask("the dog ran in the park", max_tokens=6, logprobs=True)
    plain = await target.acomplete(request)
    chunks = [c async for c in target.astream(request)]
    final = chunks[-1].response
    assert final is not None and final.text == plain.text
    assert values(final) == pytest.approx(values(plain), abs=1e-5)


async def test_n_answers_come_from_one_generate_call(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm)
    calls = 0
    model = target.loaded_model
    original = model.generate

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    model.generate = counting
    try:
        response = await target.acomplete(ask("the cat sat", max_tokens=6, n=4, temperature=1.5, seed=3,
                                              logprobs=True))
    finally:
        del model.generate
    assert calls == 1
    choices = response.info["choices"]
    assert len(choices) == 4 and choices[0]["text"] == response.text
    assert all(c["logprobs"] is not None for c in choices)
    assert response.usage.completion_tokens >= 4


@pytest.mark.parametrize("params", [{"top_logprobs": 2}, {"logprobs": "yes"}, {"logprobs": True, "top_logprobs": 99},
                                    {"n": 0}, {"n": 100}])
async def test_bad_logprob_and_n_params_are_refused(tiny_lm: Path, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        await HFTarget(tiny_lm).acomplete(ask("the cat", max_tokens=2, **params))


async def test_a_stream_of_several_answers_is_refused(tiny_lm: Path) -> None:
    with pytest.raises(InvalidRequestError, match="n must be 1"):
        async for _ in HFTarget(tiny_lm).astream(ask("the cat", max_tokens=2, n=2)):
            pass
