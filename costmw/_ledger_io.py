"""How a ledger's rows reach its file without ever holding up a call.

A SQLite ledger hands each row to a :class:`RowWriter`: a thread of its own that writes rows in
batches. While the file cannot be written (another process holds its write lock, the disk is
full, the file is gone) rows wait in a bounded buffer and the writer tries again with backoff;
readers of the ledger see buffered rows as if written. Past the bound the oldest rows are
dropped, counted and logged. :func:`open_sqlite` opens such a file (or a key store's) when other
processes may be opening it at the same moment. :class:`SpendLog` keeps an in-memory ledger's spend per tenant in
a size that does not grow with the number of calls.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["LedgerHealth", "RowWriter", "SpendLog", "has_schema", "open_sqlite"]

log = logging.getLogger("costmw.ledger")
R = TypeVar("R")

_BATCH = 512
_OPEN_WAIT_S = 10.0
_FIRST_RETRY_S = 0.05
_LAST_RETRY_S = 2.0


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_sqlite(path: str | Path, *, busy_timeout_s: float,
                setup: Callable[[sqlite3.Connection], object] | None = None,
                ready: Callable[[sqlite3.Connection], bool] | None = None,
                wait_s: float = _OPEN_WAIT_S) -> sqlite3.Connection:
    """Open the SQLite file at ``path`` in WAL mode and, unless ``ready`` finds the schema complete,
    run ``setup`` (the schema) in one write transaction.

    Processes that start together (two gateway replicas sharing a ledger) open the same file at
    the same moment. SQLite answers "database is locked" at once, without waiting out its busy
    timeout, to a connection that tries to switch the file to WAL while another does, so the
    switch and the schema are tried again with backoff for up to ``wait_s`` seconds before the
    error is raised. The schema runs under ``BEGIN IMMEDIATE``: one process at a time looks at
    the tables and adds what is missing, so two never both add the same column. A file already in
    WAL mode whose schema ``ready`` accepts is opened without taking the write lock, as a file
    that is read-only to this process is.
    """
    deadline = time.monotonic() + max(wait_s, busy_timeout_s)
    delay = 0.02
    while True:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            if setup is not None and (ready is None or not ready(db)):
                db.execute("BEGIN IMMEDIATE")
                try:
                    setup(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if not _locked(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except BaseException:
            db.close()
            raise


def has_schema(db: sqlite3.Connection, tables: Mapping[str, Sequence[str]], others: Sequence[str] = ()) -> bool:
    """Whether ``db`` has each of ``tables`` with at least the columns named, and the indexes and
    triggers named in ``others``."""
    found = {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')")}
    if not set(tables) <= found or not set(others) <= found:
        return False
    for table, columns in tables.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not set(columns) <= have:
            return False
    return True


@dataclass
class LedgerHealth:
    """Counts of what went wrong with a ledger's file, and whether it was logged yet."""

    write_errors: int = 0  #: failed attempts to write rows, holds or feedback
    rows_dropped: int = 0  #: rows dropped because the buffer was full while the file was unavailable
    rows_lost: int = 0  #: rows still unwritten when the ledger was closed
    rows_rejected: int = 0  #: rows a database refused as invalid (each logged)
    rows_spooled: int = 0  #: rows kept on disk at close, for the next ledger opened on the spool
    unheld: int = 0  #: budget reservations let through without a hold in the file (``on_unavailable="allow"``)
    refused: int = 0  #: budget reservations refused because the file was unavailable
    unavailable_until: float = 0.0  #: (monotonic clock) until then holds fail at once, without trying the file
    _logged: frozenset[str] = frozenset()

    def once(self, kind: str, message: str, *args: Any) -> None:
        """Log ``message`` the first time something of ``kind`` happens; count-only afterwards."""
        if kind not in self._logged:
            self._logged = self._logged | {kind}
            log.warning(message, *args)

    def failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        self.once("write", "costmw ledger could not write (rows are kept and written later; further "
                  "errors counted only): %s", exc)


class RowWriter(Generic[R]):
    """Writes rows with ``write(batch)`` (called holding ``lock``) from a thread of its own.

    With ``connect`` (a database's connections), each batch first takes a connection, without the
    lock, so a database that does not answer never holds the lock while the writer waits for it;
    then ``write(batch, connection)`` is called holding the lock.

    The writer holds no reference to the ledger, so a ledger that is dropped without ``close()``
    is collected and its finalizer can stop the writer.
    """

    def __init__(self, write: Callable[..., None], lock: threading.Lock, health: LedgerHealth,
                 max_pending: int = 10_000,
                 connect: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> None:
        self._write = write
        self._connect = connect
        self._lock = lock
        self._health = health
        self._max = max_pending
        self._pending: deque[R] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failures = 0

    def add(self, row: R) -> None:
        """Queue ``row`` (never blocks on the file)."""
        with self._cond:
            if len(self._pending) >= self._max:
                self._pending.popleft()
                self._health.rows_dropped += 1
                self._health.once("dropped", "costmw ledger: %d rows wait for an unavailable file; the oldest "
                                  "are dropped (counted in rows_dropped)", self._max)
            self._pending.append(row)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="costmw-ledger-writer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> list[R]:
        """Rows not yet in the file (call holding the ledger's lock for a consistent view)."""
        with self._cond:
            return list(self._pending)

    def write_some(self) -> bool:
        """Write one batch now; True when it was written (or nothing waited)."""
        if self._connect is None:
            return self._write_some()
        with self._cond:
            if not self._pending:
                return True
        try:
            with self._connect() as connection:
                return self._write_some(connection)
        except Exception as exc:  # no connection to be had
            self._health.failed(exc)
            return False

    def _write_some(self, *connection: Any) -> bool:
        with self._lock:  # taken first: two writers never take the same batch
            with self._cond:
                batch = [self._pending[i] for i in range(min(_BATCH, len(self._pending)))]
            if not batch:
                return True
            try:
                self._write(batch, *connection)
            except Exception as exc:
                self._health.failed(exc)
                return False
            self._health.unavailable_until = 0.0
            with self._cond:
                for _ in batch:  # rows added meanwhile sit behind the batch; drops only take from the front
                    if self._pending:
                        self._pending.popleft()
                self._cond.notify_all()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
            if self.write_some():
                self._failures = 0
                continue
            self._failures += 1
            pause = min(_LAST_RETRY_S, _FIRST_RETRY_S * 2 ** min(self._failures, 10))
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(pause)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is written (or ``timeout`` passes); True when none waits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 0.1))
            return True

    def close(self, timeout: float = 5.0, keep: Callable[[list[R]], None] | None = None) -> None:
        """Write what waits (trying for up to ``timeout`` seconds), then stop. Rows left are handed
        to ``keep`` (a spool on disk), or lost (counted and logged) without one or when it fails."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            with self._cond:
                if not self._pending:
                    break
            if not self.write_some():
                time.sleep(_FIRST_RETRY_S)
        with self._cond:
            left = list(self._pending)
            self._pending.clear()
        if left and keep is not None:
            try:
                keep(left)
                self._health.rows_spooled += len(left)
                log.warning("costmw ledger closed with %d rows it could not write; they are kept in its spool "
                            "and written by the next ledger that opens it", len(left))
                return
            except Exception as exc:
                log.warning("costmw ledger could not spool %d rows: %s", len(left), exc)
        lost = len(left)
        if lost:
            self._health.rows_lost += lost
            log.warning("costmw ledger closed with %d rows it could not write", lost)


_HOUR = 3600.0


class SpendLog:
    """What one tenant spent, for budget checks, in bounded memory.

    Calls of the last hour are kept one by one; older ones are summed per clock hour (every
    budget period starts on an hour, so those sums are exact for budgets); past ``keep_s`` they
    are folded into one total. A ``since`` inside an hour that was summed counts that whole hour
    (the cautious side for a budget).
    """

    __slots__ = ("_folded", "_folded_until", "_hours", "_recent", "keep_s")

    def __init__(self, keep_s: float = 40 * 86400.0) -> None:
        self.keep_s = keep_s
        self._recent: deque[tuple[float, float]] = deque()
        self._hours: dict[int, float] = {}
        self._folded = 0.0
        self._folded_until = -math.inf  # every folded call happened before this time

    def add(self, ts: float, usd: float) -> None:
        if usd:
            self._recent.append((ts, usd))
        self._compact(time.time())

    def since(self, since: float) -> float:
        self._compact(time.time())
        total = sum(usd for ts, usd in self._recent if ts >= since)
        total += sum(usd for hour, usd in self._hours.items() if (hour + 1) * _HOUR > since)
        if since < self._folded_until:
            total += self._folded
        return total

    def __len__(self) -> int:
        return len(self._recent) + len(self._hours)

    def _compact(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - _HOUR:
            ts, usd = self._recent.popleft()
            hour = int(ts // _HOUR)
            self._hours[hour] = self._hours.get(hour, 0.0) + usd
        if len(self._hours) <= self.keep_s / _HOUR + 2:
            return
        cutoff = int((now - self.keep_s) // _HOUR)
        for hour in [h for h in self._hours if h < cutoff]:
            self._folded += self._hours.pop(hour)
            self._folded_until = max(self._folded_until, (hour + 1) * _HOUR)
