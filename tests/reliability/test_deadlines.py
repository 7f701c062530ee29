"""Every target call has a deadline: a hang becomes a TargetTimeout the router falls back from,
and hung calls give the batcher's slots back."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from costmw.adapters import CallableTarget, MockTarget
from costmw.plugins import Batcher, ModelRouter

from costmw import Chain, ConfigError, TargetTimeout
from costmw.plugin_api import DEFAULT_TIMEOUT_S, Request, deadline_for

MSG = [{"role": "user", "content": "hello"}]


async def test_a_hung_async_target_times_out() -> None:
    async def hang(messages: list[dict[str, str]]) -> str:
        await asyncio.Event().wait()
        return "never"

    chain = Chain(targets=[CallableTarget(hang, name="hang", timeout_s=0.2)])
    started = time.perf_counter()
    with pytest.raises(TargetTimeout, match="deadline of 0.2 s"):
        await chain.acomplete(MSG, "hang")
    assert time.perf_counter() - started < 2.0
    assert chain.ledger.rows()[-1].error is not None  # the failed call still has its row


def test_a_hung_sync_target_times_out_and_the_router_falls_back() -> None:
    release = threading.Event()

    def hang(messages: list[dict[str, str]]) -> str:
        release.wait(10)
        return "late"

    slow = CallableTarget(hang, name="slow", timeout_s=0.2)
    spare = MockTarget(lambda r: "from the spare", name="spare")
    chain = Chain(plugins=[ModelRouter([slow, spare])], targets=[slow, spare])
    try:
        response = chain.complete(MSG, "slow")
        assert response.text == "from the spare"
        assert response.served_by == "target:spare"
    finally:
        release.set()
        chain.close()


async def test_eight_hung_calls_give_the_batchers_slots_back() -> None:
    hung = 0

    async def answer(request: Request) -> str:
        nonlocal hung
        if request.last_user_text == "hang":
            hung += 1
            await asyncio.Event().wait()
        return "ok " + request.last_user_text

    target = MockTarget(answer, name="t", capabilities=None, timeout_s=0.3)
    target.capabilities = target.capabilities.__class__(batching=False)
    chain = Chain(plugins=[Batcher(per_target_concurrency=8, max_wait_ms=1)], targets=[target])
    hangs = [asyncio.ensure_future(chain.acomplete([{"role": "user", "content": "hang"}], "t")) for _ in range(8)]
    await asyncio.sleep(0.05)
    assert hung == 8  # every slot is taken by a hung call
    later = await asyncio.wait_for(chain.acomplete([{"role": "user", "content": "after"}], "t"), 5)
    assert later.text == "ok after"
    results = await asyncio.gather(*hangs, return_exceptions=True)
    assert all(isinstance(r, TargetTimeout) for r in results)


async def test_a_stream_that_stops_midway_times_out() -> None:
    from costmw.plugin_api import Chunk, Target

    class Stalls(Target):
        async def astream(self, request: Request):  # type: ignore[no-untyped-def,override]
            yield Chunk(text="first ")
            await asyncio.Event().wait()
            yield Chunk(text="never")

    chain = Chain(targets=[Stalls("stalls", timeout_s=0.2)])
    seen = []
    with pytest.raises(TargetTimeout):
        async for chunk in chain.astream(MSG, "stalls"):
            seen.append(chunk.text)
    assert seen == ["first "]


def test_a_target_has_the_default_deadline_unless_given_one() -> None:
    request = Request.create(MSG, "m")
    assert deadline_for(MockTarget(), request) == DEFAULT_TIMEOUT_S
    assert deadline_for(MockTarget(timeout_s=3), request) == 3.0
    assert deadline_for(MockTarget(timeout_s=None), request) is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_a_bad_deadline_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="timeout_s"):
        MockTarget(timeout_s=bad)  # type: ignore[arg-type]


def test_a_litellm_target_deadline_covers_its_retries_and_fallbacks() -> None:
    from costmw.adapters import LiteLLMTarget

    t = LiteLLMTarget("gpt-4o-mini", timeout=10, retries=2, max_backoff=4,
                      fallbacks=[LiteLLMTarget("gpt-4o", timeout=5, retries=0)])
    assert t.timeout_s == pytest.approx(10 * 3 + 4 * 2 + 5 + 60)  # and a minute for LiteLLM's first import
    assert LiteLLMTarget("gpt-4o-mini", timeout_s=7).timeout_s == 7.0


async def test_a_calls_own_deadline_overrides_the_targets() -> None:
    async def slow(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(0.5)
        return "done"

    chain = Chain(targets=[CallableTarget(slow, name="slow", timeout_s=0.1)])
    reply = await chain.acomplete(MSG, "slow", options={"timeout_s": 2.0})
    assert reply.text == "done"
    with pytest.raises(TargetTimeout, match="deadline of 0.1 s"):
        await chain.acomplete(MSG, "slow")
