"""A ledger whose file is locked or unavailable never stalls the event loop, never loses a row
it can keep, and never lets a budgeted call through unheld unless told to."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter

from costmw import BudgetUnavailable, Chain, Ledger
from costmw._ledger_io import SpendLog

_HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def lock_file(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds ``path``'s write lock for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE_LOCK, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


class LoopWatch:
    """The longest the event loop went without running a 5 ms ticker."""

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

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.db"
    Ledger(path).close()  # the tables exist before another process locks the file
    yield path


async def test_a_locked_ledger_never_stalls_the_loop_nor_loses_rows(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path)
    chain = Chain(targets=[MockTarget(name="m")], ledger=ledger)
    locker = lock_file(ledger_path, 2.0)
    with LoopWatch() as watch:
        answers = await asyncio.gather(*(chain.acomplete([{"role": "user", "content": f"q{i}"}], "m")
                                         for i in range(200)))
        assert locker.poll() is None and ledger.pending_rows() > 0  # rows wait while the file is locked
        assert len(ledger) == 200  # ... and reads see them
    assert [a.text for a in answers] == [f"q{i}" for i in range(200)]
    assert watch.worst < 0.25, f"the event loop stalled {watch.worst:.3f} s"
    locker.wait(10)
    assert ledger.flush(10)
    assert len(Ledger(ledger_path)) == 200  # every row reached the file once it was free
    assert ledger.health.rows_dropped == 0


async def test_a_locked_ledger_refuses_budgeted_calls_with_a_clear_error(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path, busy_timeout_s=0.2)
    router = ModelRouter([MockTarget(name="m", price=(1.0, 1.0))], budget={"limit_usd": 5.0, "action": "refuse"})
    chain = Chain([router], ledger=ledger)
    await chain.acomplete([{"role": "user", "content": "warm"}], "m", options={"tenant": "warm"})
    locker = lock_file(ledger_path, 1.5)
    with LoopWatch() as watch:
        with pytest.raises(BudgetUnavailable, match="could not be written to hold this call"):
            await chain.acomplete([{"role": "user", "content": "hi"}], "m", options={"tenant": "acme"})
        # every budgeted call is refused while the file is locked: none passes unheld
        results = await asyncio.gather(*(chain.acomplete([{"role": "user", "content": "hi"}], "m",
                                                         options={"tenant": "acme"}) for _ in range(20)),
                                       return_exceptions=True)
    assert all(isinstance(r, BudgetUnavailable) for r in results)
    assert watch.worst < 0.25
    locker.wait(10)
    reply = await chain.acomplete([{"role": "user", "content": "hi"}], "m", options={"tenant": "acme"})
    assert reply.text == "hi"  # the file is free again: budgeted calls go on
    assert ledger.flush(10) and len(Ledger(ledger_path)) == 23  # refused calls have their rows too


async def test_a_ledger_set_to_allow_lets_budgeted_calls_through_and_counts_them(ledger_path: Path) -> None:
    ledger = Ledger(ledger_path, busy_timeout_s=0.2, on_unavailable="allow")
    router = ModelRouter([MockTarget(name="m", price=(1.0, 1.0))], budget={"limit_usd": 5.0, "action": "refuse"})
    chain = Chain([router], ledger=ledger)
    await chain.acomplete([{"role": "user", "content": "warm"}], "m", options={"tenant": "warm"})
    locker = lock_file(ledger_path, 1.5)
    replies = await asyncio.gather(*(chain.acomplete([{"role": "user", "content": "hi"}], "m",
                                                     options={"tenant": "acme"}) for _ in range(5)))
    assert [r.text for r in replies] == ["hi"] * 5 and ledger.health.unheld == 5
    locker.wait(10)
    assert ledger.flush(10) and len(Ledger(ledger_path)) == 6


def test_rows_past_the_bound_are_dropped_counted_and_logged(ledger_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger(ledger_path, max_pending_rows=5)
    chain = Chain(targets=[MockTarget(name="m")], ledger=ledger)
    locker = lock_file(ledger_path, 1.5)
    with caplog.at_level(logging.WARNING, logger="costmw.ledger"):
        for i in range(8):
            chain.complete([{"role": "user", "content": f"q{i}"}], "m")
    assert ledger.health.rows_dropped == 3
    assert any("dropped" in r.getMessage() for r in caplog.records)
    locker.wait(10)
    assert ledger.flush(10) and len(ledger) == 5
    chain.close()


def test_the_spend_kept_in_memory_stays_bounded_and_exact_on_hours() -> None:
    log = SpendLog(keep_s=7 * 86400.0)
    now = time.time()
    start = now - 30 * 86400.0
    for i in range(30 * 24 * 20):  # 20 calls an hour for 30 days
        log.add(start + i * 180.0, 0.01)
    assert len(log) <= 8 * 24 + 25  # hours kept apart for a week, and the last hour one by one
    assert log.since(0.0) == pytest.approx(30 * 24 * 20 * 0.01)
    day = (now // 3600.0 - 24) * 3600.0  # an hour boundary a day ago
    expected = sum(0.01 for i in range(30 * 24 * 20) if start + i * 180.0 >= day)
    assert log.since(day) == pytest.approx(expected)


def test_a_memory_ledgers_spend_does_not_grow_with_free_calls() -> None:
    ledger = Ledger()
    chain = Chain(targets=[MockTarget(name="m")], ledger=ledger)
    for _ in range(50):
        chain.complete([{"role": "user", "content": "q"}], "m", options={"tenant": "acme"})
    assert sum(len(v) for v in ledger._spend.values()) == 0  # calls that cost nothing add nothing
    chain.close()


def test_a_dropped_ledger_writes_its_rows_and_stops_its_thread(ledger_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    ledger = Ledger(ledger_path)
    Chain(targets=[MockTarget(name="m")], ledger=ledger).complete([{"role": "user", "content": "x"}], "m")
    del ledger
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            t.name == "costmw-ledger-writer" and t.ident not in before for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "costmw-ledger-writer" and t.ident not in before]
    assert len(Ledger(ledger_path)) == 1


_OPEN_AND_RECORD = """
import sys, time
from costmw import Ledger
from costmw._types import Request, Response
start = float(sys.argv[2])
while time.time() < start:
    pass
ledger = Ledger(sys.argv[1])
request = Request.create([{"role": "user", "content": "hi"}], "m", options={"tenant": sys.argv[3]})
ledger.record(ledger.make_row(request, Response(text="ok")))
ledger.close()
print("ok", flush=True)
"""


def _open_together(path: Path, count: int) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 3.0  # every process is started and spinning before this moment
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AND_RECORD, str(path), str(start), f"t{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(count)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_processes_that_open_a_new_ledger_file_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    # gateway replicas that start together: switching a new file to WAL answers "database is
    # locked" at once to all but one of them, so opening tries again instead of failing
    path = tmp_path / "new.db"
    results = _open_together(path, 6)
    assert [(r.returncode, r.stdout.strip()) for r in results] == [(0, "ok")] * 6, [r.stderr[-800:] for r in results]
    reader = Ledger(path, readonly=True)
    assert sorted(row.tenant or "" for row in reader.rows()) == [f"t{i}" for i in range(6)]


def test_processes_that_upgrade_an_old_ledger_file_together_add_each_column_once(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a ledger from before the token-cache columns
        db.execute("CREATE TABLE calls (ts REAL, request_id TEXT, tenant TEXT, cost_usd REAL)")
        db.execute("INSERT INTO calls VALUES (1.0, 'r-old', 'old', 0.5)")
    results = _open_together(path, 4)
    assert [r.returncode for r in results] == [0] * 4, [r.stderr[-800:] for r in results]
    reader = Ledger(path, readonly=True)
    assert sorted(row.tenant or "" for row in reader.rows()) == ["old", "t0", "t1", "t2", "t3"]


def test_opening_a_ledger_whose_schema_is_complete_takes_no_write_lock(ledger_path: Path) -> None:
    import sqlite3

    from costmw._ledger import _has_schema
    from costmw._ledger_io import open_sqlite

    with contextlib.closing(sqlite3.connect(ledger_path)) as made:
        assert _has_schema(made)  # what a ledger makes is what it later finds complete
        made.execute("DROP INDEX calls_request")
        assert not _has_schema(made)
    Ledger(ledger_path).close()  # ... and it puts back what is missing
    with contextlib.closing(sqlite3.connect(ledger_path)) as again:
        assert _has_schema(again)
    locker = lock_file(ledger_path, 3.0)  # another process is writing
    try:
        # a complete schema: opened at once, without waiting for the other process
        db = open_sqlite(ledger_path, busy_timeout_s=0.0, setup=lambda db: None, ready=lambda db: True, wait_s=0.0)
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (0,)
        db.close()
        # a schema to change needs the write lock: with no time to wait for it, a clear error
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            open_sqlite(ledger_path, busy_timeout_s=0.0, setup=lambda db: None, ready=lambda db: False, wait_s=0.0)
    finally:
        locker.wait(10)
    assert len(Ledger(ledger_path)) == 0
