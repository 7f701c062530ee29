"""Faults, load and their cost: each fault with user calls failed, wrong answers, ledger rows
lost, recovery time and the longest event-loop stall.

Every scenario runs real code paths: SQLite files locked by another process, damaged, deleted;
targets that hang or raise provider SDK exceptions; a fake OpenAI server answering 429/5xx;
a Redis server of our own (on a free port) killed and paused; 1,000 concurrent async callers
and 16 threads of sync callers. "failed" counts user calls that raised although a working target
was configured; "wrong" counts answers that were not the caller's own; "rows lost" counts
ledger rows missing once the fault is over; "recovery" is the time from the end of the fault
until the component works again (the cache hits, the ledger's file holds every row).
``--quick`` shortens the faults (the ledger lock lasts 4 s instead of 16 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks._common import print_table, write_result

_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


class LoopWatch:
    """The longest the running event loop went without running a 5 ms ticker."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.worst


def _row(fault: str, calls: int, failed: int, wrong: int, rows_lost: int | str, recovery_s: float | str,
         stall_s: float, note: str = "") -> dict[str, Any]:
    return {"fault": fault, "calls": calls, "failed": failed, "wrong": wrong, "rows_lost": rows_lost,
            "recovery_s": recovery_s if isinstance(recovery_s, str) else round(recovery_s, 2),
            "loop_stall_s": round(stall_s, 3), "note": note}


def _lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


async def _paced(n: int, seconds: float, call: Callable[[int], Awaitable[str]],
                 question: Callable[[int], int] = lambda i: i) -> tuple[int, int]:
    """``n`` calls spread over ``seconds``; call ``i`` asks ``question(i)``; (failed, wrong)."""
    failed = wrong = 0

    async def one(i: int) -> None:
        nonlocal failed, wrong
        await asyncio.sleep(seconds * i / n)
        try:
            if await call(i) != f"answer {question(i)}":
                wrong += 1
        except Exception:
            failed += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return failed, wrong


def _answer(request: Any) -> str:
    return "answer " + request.last_user_text


# -- the ledger ----------------------------------------------------------------------------
async def ledger_locked(tmp: Path, lock_s: float) -> dict[str, Any]:
    from costmw.adapters import MockTarget

    from costmw import Chain, Ledger

    path = tmp / "ledger.db"
    Ledger(path).close()
    ledger = Ledger(path)
    chain = Chain(targets=[MockTarget(_answer, name="m")], ledger=ledger)
    watch = LoopWatch()
    watch.start()
    locker = _lock(path, lock_s)
    n = int(lock_s * 50)
    failed, wrong = await _paced(n, lock_s, lambda i: _text(chain.acomplete([{"role": "user", "content": str(i)}],
                                                                            "m")))
    await asyncio.to_thread(locker.wait)
    released = time.perf_counter()
    await asyncio.to_thread(ledger.flush, 30)
    recovery = time.perf_counter() - released
    stall = watch.stop()
    written = len(Ledger(path))
    return _row(f"SQLite ledger write-locked by another process {lock_s:.0f} s", n, failed, wrong, n - written,
                recovery, stall, f"write errors {ledger.write_errors}, rows buffered then written")


async def ledger_locked_budget(tmp: Path, lock_s: float) -> dict[str, Any]:
    from costmw.adapters import MockTarget
    from costmw.plugins import ModelRouter

    from costmw import BudgetUnavailable, Chain, Ledger

    path = tmp / "ledger-budget.db"
    Ledger(path).close()
    ledger = Ledger(path, busy_timeout_s=0.5)
    router = ModelRouter([MockTarget(_answer, name="m", price=(1.0, 1.0))], budget={"limit_usd": 100.0,
                                                                                   "action": "refuse"})
    chain = Chain([router], ledger=ledger)
    await chain.acomplete([{"role": "user", "content": "warm"}], "m", options={"tenant": "t"})
    watch = LoopWatch()
    watch.start()
    locker = _lock(path, lock_s)
    refused = served = 0

    async def one(i: int) -> None:
        nonlocal refused, served
        await asyncio.sleep(lock_s * 0.8 * i / 40)
        try:
            await chain.acomplete([{"role": "user", "content": str(i)}], "m", options={"tenant": "t"})
            served += 1
        except BudgetUnavailable:
            refused += 1

    await asyncio.gather(*(one(i) for i in range(40)))
    await asyncio.to_thread(locker.wait)
    released = time.perf_counter()
    while True:  # a budgeted call goes through again
        try:
            await chain.acomplete([{"role": "user", "content": "after"}], "m", options={"tenant": "t"})
            break
        except BudgetUnavailable:
            await asyncio.sleep(0.05)
    recovery = time.perf_counter() - released
    await asyncio.to_thread(ledger.flush, 30)
    stall = watch.stop()
    lost = 40 + 2 - len(Ledger(path))
    return _row("SQLite ledger locked, budgeted calls (on_unavailable='refuse')", 40, 0, 0, lost, recovery, stall,
                f"{refused} refused with BudgetUnavailable (by design), {served} served, "
                f"{ledger.health.unheld} let through unheld")


# -- targets -----------------------------------------------------------------------------------
async def hung_target() -> dict[str, Any]:
    from costmw.adapters import CallableTarget, MockTarget
    from costmw.plugins import Batcher, ModelRouter

    from costmw import Chain

    async def hang(messages: list[dict[str, Any]]) -> str:
        await asyncio.Event().wait()
        return ""

    slow = CallableTarget(hang, name="slow", timeout_s=1.0)
    spare = MockTarget(_answer, name="spare")
    chain = Chain([ModelRouter([slow, spare]), Batcher(per_target_concurrency=8)], targets=[slow, spare])
    watch = LoopWatch()
    watch.start()
    started = time.perf_counter()
    failed, wrong = await _paced(40, 0.5, lambda i: _text(chain.acomplete([{"role": "user", "content": str(i)}],
                                                                          "slow")))
    took = time.perf_counter() - started
    return _row("target hangs (deadline 1 s, 8 batcher slots, router fallback)", 40, failed, wrong, 0, took,
                watch.stop(), "every call timed out on the hung target and was served by the spare")


async def sdk_exceptions() -> dict[str, Any]:
    import httpx
    import openai
    from costmw.adapters import CallableTarget, MockTarget
    from costmw.plugins import ModelRouter

    from costmw import Chain

    request = httpx.Request("POST", "https://api.example.com/v1/chat/completions")
    makers = [lambda: openai.RateLimitError("slow down", response=httpx.Response(429, request=request), body=None),
              lambda: openai.InternalServerError("boom", response=httpx.Response(500, request=request), body=None),
              lambda: openai.APIConnectionError(request=request), lambda: httpx.ReadTimeout("t", request=request),
              lambda: TimeoutError("t")]

    def failing(messages: list[dict[str, Any]]) -> str:
        raise makers[int(messages[-1]["content"]) % len(makers)]()

    primary = CallableTarget(failing, name="primary")
    chain = Chain([ModelRouter([primary, MockTarget(_answer, name="spare")], cooldown_after=10_000)],
                  targets=[primary])
    watch = LoopWatch()
    watch.start()
    failed, wrong = await _paced(100, 0.5, lambda i: _text(chain.acomplete([{"role": "user", "content": str(i)}],
                                                                           "primary")))
    return _row("provider SDK exceptions from a CallableTarget (429, 500, connection, read timeout)", 100, failed,
                wrong, 0, 0.0, watch.stop(), "mapped to retryable errors; the router fell back")


async def fake_server_faults() -> dict[str, Any]:
    from costmw.adapters import LiteLLMTarget

    from costmw import Chain
    from costmw.testing import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        spare = LiteLLMTarget("openai/spare", api_base=server.url, api_key="sk-test", retries=0)
        target = LiteLLMTarget("openai/main", api_base=server.url, api_key="sk-test", retries=1, backoff=0.01,
                               fallbacks=[spare])
        chain = Chain(targets=[target])
        server.fail_next(429, times=10)
        server.fail_next(503, times=10)
        watch = LoopWatch()
        watch.start()
        n = 60

        async def call(i: int) -> str:
            reply = await chain.acomplete([{"role": "user", "content": str(i)}], "openai/main")
            return "answer " + reply.text.removeprefix("echo: ")

        failed, wrong = await _paced(n, 1.0, call)
        return _row("fake OpenAI server answers 429 x10 then 503 x10 (LiteLLMTarget, retries + fallback)", n,
                    failed, wrong, 0, 0.0, watch.stop())


async def fake_server_burst() -> dict[str, Any]:
    from costmw.adapters import LiteLLMTarget

    from costmw import Chain
    from costmw.testing import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        chain = Chain(targets=[LiteLLMTarget("openai/m", api_base=server.url, api_key="sk-test", retries=0)])
        watch = LoopWatch()
        watch.start()

        async def call(i: int) -> str:
            reply = await chain.acomplete([{"role": "user", "content": str(i)}], "openai/m")
            return "answer " + reply.text.removeprefix("echo: ")

        failed, wrong = await _paced(100, 0.0, call)
        return _row("100 concurrent calls to the fake OpenAI server, no fault", 100, failed, wrong, 0, 0.0,
                    watch.stop())


# -- the cache ---------------------------------------------------------------------------------
async def _cache_scenario(tmp: Path, name: str, damage: Callable[[Path], Any]) -> dict[str, Any]:
    from costmw.adapters import MockTarget
    from costmw.plugins import SemanticCache
    from costmw.plugins.cache import SQLiteStore

    from costmw import Chain

    path = tmp / f"{name}.db"
    target = MockTarget(_answer, name="m")
    chain = Chain([SemanticCache(store=SQLiteStore(path), embedder=None, retry_after=0.2)], targets=[target])
    for i in range(20):
        await chain.acomplete([{"role": "user", "content": str(i)}], "m")
    watch = LoopWatch()
    watch.start()
    damage(path)
    done = time.perf_counter()
    failed, wrong = await _paced(40, 0.4, lambda i: _text(chain.acomplete([{"role": "user", "content": str(i % 20)}],
                                                                          "m")), lambda i: i % 20)
    recovery = await _until_cached(chain, done)
    return _row(f"SQLite cache file {name}", 40, failed, wrong, 0, recovery, watch.stop())


async def _until_cached(chain: Any, since: float) -> float | str:
    """Seconds from ``since`` until a question asked twice is answered from the cache."""
    for k in range(200):
        question = [{"role": "user", "content": f"probe {k}"}]
        await chain.acomplete(question, "m")
        if (await chain.acomplete(question, "m")).served_by.startswith("cache"):
            return time.perf_counter() - since
        await asyncio.sleep(0.05)
    return "never"


def _delete(path: Path) -> None:
    for part in path.parent.glob(path.name + "*"):
        part.unlink()


def _damage_wal(path: Path) -> None:
    wal = Path(f"{path}-wal")
    with open(wal, "r+b") as f:
        f.seek(32)
        f.write(os.urandom(max(0, wal.stat().st_size - 32)))


def _corrupt(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(os.urandom(min(size, 4096)))


# -- Redis ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


async def redis_faults(tmp: Path) -> list[dict[str, Any]]:
    if shutil.which("redis-server") is None:
        return [_row("Redis (redis-server not installed)", 0, 0, 0, 0, "n/a", 0.0)]
    from costmw.adapters import MockTarget
    from costmw.plugins import SemanticCache
    from costmw.plugins.cache import RedisStore

    from costmw import Chain

    port = _free_port()
    server = _redis(port, tmp)
    rows = []
    try:
        target = MockTarget(_answer, name="m")
        store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        chain = Chain([SemanticCache(store=store, embedder=None, retry_after=0.2)], targets=[target])
        for what in ("killed and restarted", "paused (SIGSTOP) 2 s"):
            for i in range(10):
                await chain.acomplete([{"role": "user", "content": str(i)}], "m")
            watch = LoopWatch()
            watch.start()
            if what.startswith("killed"):
                server.kill()
                server.wait()
            else:
                server.send_signal(19)
            failed, wrong = await _paced(30, 1.0, lambda i: _text(chain.acomplete(
                [{"role": "user", "content": str(i % 10)}], "m")), lambda i: i % 10)
            if what.startswith("killed"):
                server = _redis(port, tmp)
            else:
                await asyncio.sleep(1.0)
                server.send_signal(18)
            recovery = await _until_cached(chain, time.perf_counter())
            rows.append(_row(f"Redis cache {what}", 30, failed, wrong, 0, recovery, watch.stop()))
    finally:
        server.kill()
        server.wait()
    return rows


# -- load ----------------------------------------------------------------------------------------
async def load_async(n: int) -> dict[str, Any]:
    from costmw.adapters import MockTarget
    from costmw.plugins import Batcher, SemanticCache

    from costmw import Chain

    async def answer(request: Any) -> str:
        await asyncio.sleep(0.01)
        return _answer(request)

    chain = Chain([SemanticCache(store="memory", embedder=None), Batcher()], targets=[MockTarget(answer, name="m")])
    watch = LoopWatch()
    watch.start()
    failed, wrong = await _paced(n, 0.0, lambda i: _text(chain.acomplete([{"role": "user", "content": str(i)}], "m")))
    rows = len(chain.ledger)
    return _row(f"{n} concurrent async calls (cache + batcher)", n, failed, wrong, n - rows, 0.0, watch.stop())


def load_threads(threads: int, per_thread: int) -> dict[str, Any]:
    from costmw.adapters import MockTarget
    from costmw.plugins import Batcher

    from costmw import Chain

    chain = Chain([Batcher()], targets=[MockTarget(_answer, name="m")])
    failed = wrong = 0
    lock = threading.Lock()

    def worker(t: int) -> None:
        nonlocal failed, wrong
        for i in range(per_thread):
            text = f"{t}-{i}"
            try:
                ok = chain.complete([{"role": "user", "content": text}], "m").text == f"answer {text}"
            except Exception:
                with lock:
                    failed += 1
                continue
            if not ok:
                with lock:
                    wrong += 1

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    n = threads * per_thread
    lost = n - len(chain.ledger)
    chain.close()
    return _row(f"{threads} threads of sync calls ({per_thread} each, batcher)", n, failed, wrong, lost, 0.0, 0.0)


async def huge_prompt(mb: int) -> dict[str, Any]:
    from costmw.adapters import CallableTarget
    from costmw.plugins import SemanticCache

    from costmw import Chain

    def answer(messages: list[dict[str, Any]]) -> str:
        return "ok"

    target = CallableTarget(answer, name="gpt-4o-mini", price=(0.15, 0.6))  # usage counted with the tokenizer
    chain = Chain([SemanticCache(store="memory", embedder=None)], targets=[target])
    text = ("lorem ipsum dolor sit amet " * (mb * 1024 * 1024 // 27 + 1))[: mb * 1024 * 1024]
    await chain.acomplete([{"role": "user", "content": "warm up"}], "gpt-4o-mini")  # loads the tokenizer once
    watch = LoopWatch()
    watch.start()
    failed = 0
    try:
        await chain.acomplete([{"role": "user", "content": text}], "gpt-4o-mini")
    except Exception:
        failed = 1
    return _row(f"a {mb} MB prompt (cache, token counts, secret screen, ledger)", 1, failed, 0, 0, 0.0,
                watch.stop(), "after one short call has loaded the tokenizer")


async def _text(call: Awaitable[Any]) -> str:
    return str((await call).text)


async def _all(quick: bool, tmp: Path) -> list[dict[str, Any]]:
    lock_s = 4.0 if quick else 16.0
    rows = [await ledger_locked(tmp, lock_s), await ledger_locked_budget(tmp, min(lock_s, 4.0)),
            await hung_target(), await sdk_exceptions(), await fake_server_faults(), await fake_server_burst()]
    for name, damage in (("deleted while in use", _delete), ("WAL damaged", _damage_wal),
                         ("overwritten with garbage", _corrupt)):
        rows.append(await _cache_scenario(tmp, name, damage))
    rows += await redis_faults(tmp)
    rows.append(await load_async(1000))
    rows.append(await asyncio.to_thread(load_threads, 16, 20 if quick else 100))
    rows.append(await huge_prompt(10))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter faults")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="costmw-bench-reliability-"))
    try:
        rows = asyncio.run(_all(args.quick, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table("Faults and load: what the user sees",
                ["fault", "calls", "failed", "wrong", "rows lost", "recovery s", "loop stall s"],
                [[r["fault"], r["calls"], r["failed"], r["wrong"], r["rows_lost"], r["recovery_s"], r["loop_stall_s"]]
                 for r in rows])
    for r in rows:
        if r["note"]:
            print(f"  - {r['fault']}: {r['note']}")
    path = write_result("reliability", {"quick": args.quick, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
