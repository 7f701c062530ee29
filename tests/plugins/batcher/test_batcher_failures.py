"""Every caller gets its own result or its own error: failures, cancellation, shutdown, backpressure."""

from __future__ import annotations

import asyncio
import threading

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import Batcher
from costmw.plugins.batcher import BatcherClosedError, QueueFullError

from costmw import Chain, TargetError


async def _settle() -> None:
    await asyncio.sleep(0.05)


async def test_one_bad_request_does_not_fail_its_batchmates(make_target, msg) -> None:
    target = make_target(fail=["bad"])
    chain = Chain([Batcher(max_wait_ms=40)], [target])
    out = await asyncio.gather(*(chain.acomplete(msg(t), model="local") for t in ("a", "bad", "c")),
                               return_exceptions=True)
    assert [getattr(r, "text", None) for r in out] == ["answer to a", None, "answer to c"]
    assert isinstance(out[1], TargetError) and isinstance(out[1].__cause__, ValueError)
    assert "cannot answer 'bad'" in str(out[1])
    assert [sorted(b) for b in target.batches] == [["a", "bad", "c"]]
    assert [row.error is not None for row in chain.ledger.rows()].count(True) == 1


async def test_a_batch_that_crashes_as_a_whole_is_served_one_by_one(make_target, msg) -> None:
    target = make_target(poison=["bad"])
    batcher = Batcher(max_wait_ms=40)
    chain = Chain([batcher], [target])
    out = await asyncio.gather(*(chain.acomplete(msg(t), model="local") for t in ("a", "bad", "c")),
                               return_exceptions=True)
    assert [getattr(r, "text", None) for r in out] == ["answer to a", None, "answer to c"]
    assert isinstance(out[1], TargetError) and "forward pass crashed" in str(out[1])
    assert sorted(target.batches[0]) == ["a", "bad", "c"]
    assert sorted(target.batches[1:]) == [["a"], ["bad"], ["c"]]
    assert batcher.stats()["split_batches"] == 1


async def test_a_caller_cancelled_while_queued_leaves_the_batch(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=1)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()  # r1 is running; the next three wait for the target
    rest = {t: asyncio.ensure_future(chain.acomplete(msg(t), model="local")) for t in ("r2", "r3", "r4")}
    await _settle()
    rest["r3"].cancel()
    await _settle()
    target.gate.set()
    assert (await first).text == "answer to r1"
    assert (await rest["r2"]).text == "answer to r2" and (await rest["r4"]).text == "answer to r4"
    with pytest.raises(asyncio.CancelledError):
        await rest["r3"]
    assert target.batches == [["r1"], ["r2", "r4"]]
    assert (await rest["r2"]).info["batch"]["batch_size"] == 2


async def test_a_caller_cancelled_in_flight_does_not_disturb_the_batch(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=10)], [target])
    calls = {t: asyncio.ensure_future(chain.acomplete(msg(t), model="local")) for t in ("a", "b", "c")}
    await _settle()
    assert target.started == 1
    calls["b"].cancel()
    await _settle()
    target.gate.set()
    assert (await calls["a"]).text == "answer to a" and (await calls["c"]).text == "answer to c"
    with pytest.raises(asyncio.CancelledError):
        await calls["b"]
    assert [sorted(b) for b in target.batches] == [["a", "b", "c"]]


async def test_shutdown_flushes_a_full_queue(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=1, max_queue=3)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    queued = [asyncio.ensure_future(chain.acomplete(msg(f"q{i}"), model="local")) for i in range(3)]
    waiting = asyncio.ensure_future(chain.acomplete(msg("no room"), model="local"))
    await _settle()
    closing = asyncio.ensure_future(chain.aclose())
    await _settle()
    target.gate.set()
    await asyncio.wait_for(closing, timeout=10)
    assert (await first).text == "answer to r1"
    assert [(await q).text for q in queued] == ["answer to q0", "answer to q1", "answer to q2"]
    with pytest.raises(BatcherClosedError, match="waited for room"):
        await waiting
    with pytest.raises(BatcherClosedError, match="closed"):
        await chain.acomplete(msg("late"), model="local")


async def test_shutdown_without_flush_fails_queued_requests_clearly(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=1, flush_on_close=False)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    queued = [asyncio.ensure_future(chain.acomplete(msg(f"q{i}"), model="local")) for i in range(3)]
    await _settle()
    closing = asyncio.ensure_future(chain.aclose())
    await _settle()
    for q in queued:
        assert q.done()
        with pytest.raises(BatcherClosedError, match="before this request was sent to target 'local'"):
            q.result()
    target.gate.set()
    await asyncio.wait_for(closing, timeout=10)
    assert (await first).text == "answer to r1"  # what was already sent still gets its answer
    assert target.batches == [["r1"]]


async def test_shutdown_gives_up_on_a_stuck_batch_after_close_timeout(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()  # never set
    chain = Chain([Batcher(max_wait_ms=1, close_timeout_s=0.1)], [target])
    stuck = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    await asyncio.wait_for(chain.aclose(), timeout=10)
    with pytest.raises(BatcherClosedError, match="while this request's batch was running"):
        await stuck


def test_closing_a_sync_chain_flushes_callers_on_other_threads(msg) -> None:
    target = MockTarget(lambda r: r.last_user_text.upper(), latency=0.05, name="local")
    chain = Chain([Batcher(max_wait_ms=200, max_batch_size=64)], [target])
    answers: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(
        i, chain.complete(msg(f"t{i}"), model="local").text)) for i in range(8)]
    for t in threads:
        t.start()
    while sum(len(g.pending) for st in list(chain.plugins[0]._states.values())  # type: ignore[attr-defined]
              for lane in st.lanes.values() for g in lane.groups.values()) < 8:
        threading.Event().wait(0.01)
    chain.close()  # the window has not ended: close sends the queued requests now
    for t in threads:
        t.join(timeout=10)
    assert answers == {i: f"T{i}" for i in range(8)}
    assert target.batches == [8]


async def test_a_full_queue_refuses_when_configured_to(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    batcher = Batcher(max_wait_ms=1, max_queue=2, on_full="error")
    chain = Chain([batcher], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    queued = [asyncio.ensure_future(chain.acomplete(msg(f"q{i}"), model="local")) for i in range(2)]
    await _settle()
    with pytest.raises(QueueFullError, match="queue is full"):
        await chain.acomplete(msg("one too many"), model="local")
    target.gate.set()
    assert [(await q).text for q in [first, *queued]] == ["answer to r1", "answer to q0", "answer to q1"]
    assert batcher.stats()["queue_full"] == 1


async def test_a_full_queue_makes_callers_wait_their_turn(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=1, max_queue=2)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    calls = [asyncio.ensure_future(chain.acomplete(msg(f"q{i}"), model="local")) for i in range(5)]
    await _settle()
    assert not any(c.done() for c in calls)
    waiting = sum(len(g.pending) for st in chain.plugins[0]._states.values()  # type: ignore[attr-defined]
                  for lane in st.lanes.values() for g in lane.groups.values())
    assert waiting == 2  # the other three wait for room outside the queue
    target.gate.set()
    out = await asyncio.wait_for(asyncio.gather(first, *calls), timeout=10)
    assert [r.text for r in out] == ["answer to r1"] + [f"answer to q{i}" for i in range(5)]
    assert sum(len(b) for b in target.batches) == 6


async def test_waiting_for_room_can_time_out(make_target, msg) -> None:
    target = make_target()
    target.gate = asyncio.Event()
    chain = Chain([Batcher(max_wait_ms=1, max_queue=1, queue_timeout_s=0.1)], [target])
    first = asyncio.ensure_future(chain.acomplete(msg("r1"), model="local"))
    await _settle()
    second = asyncio.ensure_future(chain.acomplete(msg("r2"), model="local"))
    await _settle()
    with pytest.raises(QueueFullError, match="queue_timeout_s=0.1"):
        await chain.acomplete(msg("r3"), model="local")
    target.gate.set()
    assert (await first).text == "answer to r1" and (await second).text == "answer to r2"
