"""How the batcher forms batches: by window, by size, by parameters, and per target."""

from __future__ import annotations

import asyncio
import threading

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import Batcher, PassThrough

from costmw import Chain, ConfigError, Request


async def test_requests_within_the_window_share_one_batch(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_batch_size=16, max_wait_ms=200)], [target])

    async def late(text: str, after: float) -> str:
        await asyncio.sleep(after)
        return (await chain.acomplete(msg(text), model="local")).text

    texts = await asyncio.gather(late("a", 0), late("b", 0.02), late("c", 0.05))
    assert texts == ["answer to a", "answer to b", "answer to c"]
    assert [sorted(b) for b in target.batches] == [["a", "b", "c"]]


async def test_requests_after_the_window_form_a_new_batch(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_wait_ms=30, adaptive=False)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("a"), model="local"))
    await asyncio.sleep(0.3)
    second = await chain.acomplete(msg("b"), model="local")
    assert (await first).text == "answer to a" and second.text == "answer to b"
    assert target.batches == [["a"], ["b"]]


async def test_batches_are_capped_at_max_batch_size(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_batch_size=4, max_wait_ms=50, max_concurrent_batches=4)], [target])
    texts = [f"q{i}" for i in range(10)]
    out = await asyncio.gather(*(chain.acomplete(msg(t), model="local") for t in texts))
    assert [r.text for r in out] == [f"answer to {t}" for t in texts]
    assert sorted(len(b) for b in target.batches) == [2, 4, 4]
    assert sorted(t for b in target.batches for t in b) == sorted(texts)


async def test_a_full_batch_does_not_wait_for_the_window(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_batch_size=3, max_wait_ms=60_000)], [target])
    out = await asyncio.wait_for(
        asyncio.gather(*(chain.acomplete(msg(t), model="local") for t in "xyz")), timeout=10)
    assert [r.text for r in out] == ["answer to x", "answer to y", "answer to z"]
    assert target.batches == [["x", "y", "z"]]


async def test_different_generation_parameters_are_batched_apart(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_wait_ms=50, max_concurrent_batches=8)], [target])
    calls = [
        chain.acomplete(msg("cold-1"), model="local", temperature=0.0, max_tokens=5),
        chain.acomplete(msg("cold-2"), model="local", temperature=0.0, max_tokens=50),
        chain.acomplete(msg("warm"), model="local", temperature=0.7),
        chain.acomplete(msg("stop"), model="local", temperature=0.0, stop=["\n"]),
        chain.acomplete(msg("lora-a"), model="local", temperature=0.0, options={"adapter": "a"}),
        chain.acomplete(msg("lora-b"), model="local", temperature=0.0, options={"adapter": "b"}),
    ]
    out = await asyncio.gather(*calls)
    # max_tokens may differ inside a batch, and each request keeps its own limit
    assert out[0].text == "answer to cold-1 [max 5]" and out[1].text == "answer to cold-2 [max 50]"
    assert sorted(sorted(b) for b in target.batches) == [
        ["cold-1", "cold-2"], ["lora-a"], ["lora-b"], ["stop"], ["warm"]]


async def test_each_target_is_batched_on_its_own(make_target, msg) -> None:
    small, big = make_target("small"), make_target("big")
    chain = Chain([Batcher(max_wait_ms=50)], [small, big])
    out = await asyncio.gather(
        chain.acomplete(msg("s1"), model="small"), chain.acomplete(msg("b1"), model="big"),
        chain.acomplete(msg("s2"), model="small"), chain.acomplete(msg("b2"), model="big"))
    assert [r.served_by for r in out] == ["target:small", "target:big", "target:small", "target:big"]
    assert [sorted(b) for b in small.batches] == [["s1", "s2"]]
    assert [sorted(b) for b in big.batches] == [["b1", "b2"]]


async def test_batch_metrics_reach_the_response_and_the_ledger(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_wait_ms=40)], [target])
    out = await asyncio.gather(*(chain.acomplete(msg(t), model="local") for t in "abc"))
    for r in out:
        assert r.info["batch"]["batch_size"] == 3
        assert r.info["batch"]["queued_ms"] >= 0
    rows = chain.ledger.rows()
    assert len(rows) == 3 and all(row.info["batch"]["batch_size"] == 3 for row in rows)
    assert all(row.served_by == "target:local" and row.cost_usd > 0 for row in rows)
    stats = chain.plugins[0].stats()  # type: ignore[attr-defined]
    assert stats["batches"] == 1 and stats["requests"] == 3 and stats["mean_batch_size"] == 3


async def test_a_lone_caller_does_not_wait_out_a_long_window(make_target, msg) -> None:
    target = make_target()
    chain = Chain([Batcher(max_wait_ms=1_500)], [target])
    first = await chain.acomplete(msg("warm-up"), model="local")
    assert first.info["batch"]["queued_ms"] >= 1_400  # a new group waits for company once
    for i in range(3):
        r = await chain.acomplete(msg(f"q{i}"), model="local")
        assert r.info["batch"]["queued_ms"] < 750  # then traffic shows it is alone
    assert all(len(b) == 1 for b in target.batches)


async def test_targets_that_do_not_batch_get_a_limited_fan_out(make_target, msg) -> None:
    remote = make_target("remote", batching=False, delay=0.05)
    chain = Chain([Batcher(per_target_concurrency=3)], [remote])
    out = await asyncio.gather(*(chain.acomplete(msg(f"q{i}"), model="remote") for i in range(9)))
    assert [r.text for r in out] == [f"answer to q{i}" for i in range(9)]
    assert remote.peak_running == 3
    assert all(len(b) == 1 for b in remote.batches) and len(remote.batches) == 9
    assert all(r.info["batch"]["batch_size"] == 1 for r in out)


def test_sync_callers_on_32_threads_are_batched_together(msg) -> None:
    target = MockTarget(lambda r: f"echo {r.last_user_text}", latency=0.05, name="local")
    batcher = Batcher(max_batch_size=32, max_wait_ms=20)
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(32)

    def call(i: int) -> None:
        start.wait()
        try:
            for round_ in range(3):
                text = f"thread {i} round {round_}"
                results[i * 10 + round_] = chain.complete(msg(text), model="local").text
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with Chain([batcher], [target]) as chain:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    assert results == {i * 10 + r: f"echo thread {i} round {r}" for i in range(32) for r in range(3)}
    assert sum(target.batches) == 96
    assert batcher.stats()["mean_batch_size"] > 4 and max(target.batches) > 8


async def test_streaming_requests_bypass_the_batcher(make_target, msg) -> None:
    target = make_target()
    batcher = Batcher(max_wait_ms=60_000)
    chain = Chain([batcher], [target])
    chunks = [c async for c in chain.astream(msg("hi"), model="local")]
    assert chunks[-1].response is not None and chunks[-1].response.text == "answer to hi"
    assert target.batches == [["hi"]] and "batch" not in chunks[-1].response.info
    out = await chain.acomplete(msg("skip"), model="local", options={"batch": False})
    assert out.text == "answer to skip" and batcher.stats()["bypassed"] == 1


async def test_a_router_choice_is_honoured(make_target, msg) -> None:
    small, big = make_target("small"), make_target("big")

    class PickBig(PassThrough):
        async def handle(self, request: Request, call_next):  # type: ignore[no-untyped-def]
            request.context.target = big
            return await call_next(request)

    chain = Chain([PickBig(), Batcher(max_wait_ms=1)], [small, big])
    out = await chain.acomplete(msg("x"), model="small")
    assert out.served_by == "target:big" and small.batches == []


def test_the_batcher_must_be_last(make_target, msg) -> None:
    chain = Chain([Batcher(), PassThrough()], [make_target()])
    with pytest.raises(ConfigError, match="last plugin"):
        chain.complete(msg("x"), model="local")
    chain.close()


@pytest.mark.parametrize("options, field", [
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"max_wait_ms": -1}, "max_wait_ms"),
    ({"max_queue": 0}, "max_queue"),
    ({"per_target_concurrency": 0}, "per_target_concurrency"),
    ({"on_full": "drop"}, "on_full"),
    ({"queue_timeout_s": 0}, "queue_timeout_s"),
])
def test_bad_options_fail_fast_naming_the_option(options, field) -> None:
    with pytest.raises(ConfigError, match=field):
        Batcher(**options)


def test_built_from_configuration() -> None:
    chain = Chain.from_config({
        "plugins": [{"batcher": {"max_batch_size": 8, "max_wait_ms": 5}}],
        "targets": [{"kind": "mock", "name": "local"}],
    })
    batcher = chain.plugins[0]
    assert isinstance(batcher, Batcher) and batcher.max_batch_size == 8 and batcher.max_wait_ms == 5
    with pytest.raises(ConfigError, match="max_batch_sise"):
        Chain.from_config({"plugins": [{"batcher": {"max_batch_sise": 8}}]})
