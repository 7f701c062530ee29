"""The ledger: one row per call with tokens, cost, baseline cost and savings per plugin.

In memory by default; pass a path for SQLite, or a ``postgresql://`` URL for a ledger shared by
every process and host (``costmw._ledger_pg``). Rows never hold API keys: parameters are not
stored, and prompt/answer text (kept only with ``store_text=True``, e.g. for distillation) has
anything that looks like a secret redacted first.

Nothing here waits on the file while a call waits: a SQLite ledger's rows are written by a
thread of its own (buffered while the file is locked or unavailable, see ``costmw._ledger_io``),
and budget reservations have async twins that run in worker threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import re
import sqlite3
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from ._errors import BudgetUnavailable, ConfigError
from ._ledger_io import LedgerHealth, RowWriter, SpendLog, has_schema, open_sqlite
from ._redact import redact_secrets
from ._types import Request, Response

__all__ = ["Ledger", "LedgerRow", "redact_secrets"]

log = logging.getLogger("costmw.ledger")
T = TypeVar("T")

@dataclass(slots=True)
class LedgerRow:
    ts: float
    request_id: str
    tenant: str | None
    requested_model: str
    served_by: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    baseline_cost_usd: float
    latency_s: float
    savings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    prompt: list[dict[str, Any]] | None = None
    answer: str | None = None
    status: str = "ok"
    tags: list[str] = field(default_factory=list)
    #: Prompt tokens the provider read from its prompt cache, and wrote to it (part of prompt_tokens).
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def saved_usd(self) -> float:
        """Baseline less cost, which is the sum of ``savings`` (negative when costmw cost more)."""
        return self.baseline_cost_usd - self.cost_usd


_COLUMNS = [
    ("ts", "REAL"), ("request_id", "TEXT"), ("tenant", "TEXT"), ("requested_model", "TEXT"),
    ("served_by", "TEXT"), ("model", "TEXT"), ("prompt_tokens", "INTEGER"),
    ("completion_tokens", "INTEGER"), ("cost_usd", "REAL"), ("baseline_cost_usd", "REAL"),
    ("latency_s", "REAL"), ("savings", "TEXT"), ("info", "TEXT"), ("error", "TEXT"),
    ("prompt", "TEXT"), ("answer", "TEXT"), ("status", "TEXT"), ("tags", "TEXT"),
    ("cached_tokens", "INTEGER"), ("cache_write_tokens", "INTEGER"),
]
_JSON_COLS = {"savings", "info", "prompt", "tags"}
_MISSING = {"REAL": 0.0, "INTEGER": 0}  # what a column an older ledger lacks reads as


def request_tags(request: Request) -> list[str]:
    """The request's tags (``options.tags``; ``metadata={"tags": [...]}`` is read into it), sorted."""
    return sorted(request.options.tags)


def _make_schema(db: sqlite3.Connection) -> None:
    """The ledger's tables and indexes; a ledger written by an older costmw gains the new columns."""
    cols = ", ".join(f"{n} {t}" for n, t in _COLUMNS)
    db.execute(f"CREATE TABLE IF NOT EXISTS calls ({cols})")
    have = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
    for name, kind in _COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE calls ADD COLUMN {name} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS calls_tenant_ts ON calls (tenant, ts)")
    db.execute("CREATE INDEX IF NOT EXISTS calls_request ON calls (request_id)")
    db.execute("CREATE TABLE IF NOT EXISTS feedback (ts REAL, request_id TEXT, good INTEGER, note TEXT)")
    # holds live in the file too, so processes sharing one ledger see each other's calls in flight
    db.execute("CREATE TABLE IF NOT EXISTS holds (request_id TEXT PRIMARY KEY, tenant TEXT, usd REAL, since REAL)")


def _has_schema(db: sqlite3.Connection) -> bool:
    return has_schema(db, {"calls": [n for n, _ in _COLUMNS], "feedback": ["note"], "holds": ["since"]},
                      ["calls_tenant_ts", "calls_request"])


def _open_readonly(path: Path) -> sqlite3.Connection:
    """The ledger file opened read-only (no tables added, journal mode untouched)."""
    if not path.is_file():
        raise ConfigError(f"ledger file {str(path)!r} does not exist")
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigError(f"{str(path)!r} cannot be opened as a costmw ledger: {exc}") from exc


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _ledger_columns(db: sqlite3.Connection, path: Path) -> list[str]:
    """The ledger columns the file has; a clear error when it is not a costmw ledger."""
    try:
        have = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConfigError(f"{str(path)!r} is not a costmw ledger (not an SQLite database: {exc})") from exc
    needed = {"request_id", "served_by", "cost_usd", "baseline_cost_usd", "savings"}
    if not needed <= have:
        db.close()
        raise ConfigError(f"{str(path)!r} is not a costmw ledger (no 'calls' table with costmw's columns)")
    return [n for n, _ in _COLUMNS if n in have]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def _caller(request: Request) -> dict[str, Any]:
    """What a row keeps of who called and why: the user (the tenant has its own column) and the
    caller's free-form ``metadata`` labels, secrets redacted."""
    out: dict[str, Any] = {}
    if request.options.user is not None:
        out["user"] = request.options.user
    if request.metadata:
        labels = {str(k): v for k, v in request.metadata.items()}
        out["metadata"] = json.loads(redact_secrets(json.dumps(labels, default=str)))
    return out


#: Seconds a hold on a tenant's budget lasts when its call is never recorded.
HOLD_S = 600.0

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def ledger_kind(where: str | Path | None) -> Literal["memory", "sqlite", "postgresql"]:
    """Which store ``where`` names: nothing (memory), a file path (SQLite) or a ``postgresql://``
    URL; any other URL is a :class:`ConfigError`."""
    if where is None or where == "":
        return "memory"
    if isinstance(where, Path):
        return "sqlite"
    if not isinstance(where, str):
        raise ConfigError(f"a ledger is a file path or a postgresql:// URL, got {type(where).__name__}")
    found = _URL.match(where)
    if found is None:
        return "sqlite"
    if found.group(1).lower() in ("postgresql", "postgres"):
        return "postgresql"
    raise ConfigError(f"unknown ledger URL scheme {found.group(1)!r}: give the path of a SQLite file "
                      "or a postgresql://user:password@host:port/database URL")


def summarize(calls: int, errors: int, cancelled: int, cached_tokens: int, by_plugin: dict[str, float],
              by_target: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The dict :meth:`Ledger.summary` returns, from counts and the per-target breakdown."""
    cost = sum(t["cost_usd"] for t in by_target.values())
    baseline = sum(t["baseline_cost_usd"] for t in by_target.values())
    return {
        "calls": calls,
        "errors": errors,
        "cancelled": cancelled,
        "cost_usd": cost,
        "baseline_cost_usd": baseline,
        "saved_usd": baseline - cost,
        "saved_pct": (100.0 * (baseline - cost) / baseline) if baseline else 0.0,
        "cached_tokens": cached_tokens,
        "by_plugin": dict(by_plugin),
        "by_target": {k: dict(v) for k, v in by_target.items()},
    }


def add_to_summary(rows: Sequence[LedgerRow], by_plugin: dict[str, float],
                   by_target: dict[str, dict[str, float]]) -> tuple[int, int, int]:
    """Add ``rows`` to the breakdowns; returns their (errors, cancelled, cached tokens)."""
    errors = cancelled = cached = 0
    for r in rows:
        for plugin, usd in r.savings.items():
            by_plugin[plugin] = by_plugin.get(plugin, 0.0) + usd
        t = by_target.setdefault(r.served_by, defaultdict(float))
        t["calls"] += 1
        t["cost_usd"] += r.cost_usd
        t["baseline_cost_usd"] += r.baseline_cost_usd
        t["prompt_tokens"] += r.prompt_tokens
        t["completion_tokens"] += r.completion_tokens
        t["cached_tokens"] += r.cached_tokens
        errors += r.status == "error"
        cancelled += r.status == "cancelled"
        cached += r.cached_tokens
    return errors, cancelled, cached


class Ledger:
    """Where every call is written down. Thread-safe; a failure to write never fails a call.

    With a SQLite ``path``, rows are written from a thread of the ledger's own; while the file
    cannot be written, up to ``max_pending_rows`` rows wait in memory (reads see them) and the
    oldest beyond that are dropped and counted. A budget reservation waits at most
    ``busy_timeout_s`` for the file; when it cannot be made, ``on_unavailable="refuse"`` (the
    default) refuses the call with :class:`BudgetUnavailable`, ``"allow"`` lets it through with
    a hold kept in this process only (counted in ``health.unheld``).

    With a ``postgresql://`` URL the ledger is a :class:`costmw._ledger_pg.PostgresLedger`:
    shared by every process and host, ``on_unavailable="allow"`` by default, ``pool_size``
    connections at most (4), and an optional ``spool`` folder for rows left at close.
    """

    def __new__(cls, path: str | Path | None = None, *args: Any, **kwargs: Any) -> Ledger:
        if cls is Ledger and ledger_kind(path) == "postgresql":
            from ._ledger_pg import PostgresLedger

            return object.__new__(PostgresLedger)
        return object.__new__(cls)

    def __init__(self, path: str | Path | None = None, *, store_text: bool = False,
                 on_unavailable: Literal["refuse", "allow"] | None = None, max_pending_rows: int = 10_000,
                 busy_timeout_s: float = 2.0, readonly: bool = False, pool_size: int | None = None,
                 spool: str | Path | None = None) -> None:
        if pool_size is not None or spool is not None:
            raise ConfigError("Ledger pool_size and spool are for a postgresql:// ledger")
        if on_unavailable not in ("refuse", "allow", None):
            raise ConfigError(f"Ledger on_unavailable must be 'refuse' or 'allow', got {on_unavailable!r}")
        if isinstance(max_pending_rows, bool) or not isinstance(max_pending_rows, int) or max_pending_rows < 1:
            raise ConfigError(f"Ledger max_pending_rows must be a positive integer, got {max_pending_rows!r}")
        if isinstance(busy_timeout_s, bool) or not isinstance(busy_timeout_s, (int, float)) or not (
                0 <= busy_timeout_s < 3600):
            raise ConfigError(f"Ledger busy_timeout_s must be a number of seconds >= 0, got {busy_timeout_s!r}")
        if ledger_kind(path) == "postgresql":  # only a subclass of Ledger gets here with a URL
            raise ConfigError("a postgresql:// ledger is opened by Ledger(url) itself, not by a subclass")
        self.path = Path(path) if path else None
        self.store_text = store_text
        self.on_unavailable: Literal["refuse", "allow"] = on_unavailable or "refuse"
        self.busy_timeout_s = float(busy_timeout_s)
        self.health = LedgerHealth()
        self._lock = threading.Lock()
        self._rows: list[LedgerRow] = []
        self._db: sqlite3.Connection | None = None
        self._writer: RowWriter[LedgerRow] | None = None
        self._pool_box: list[concurrent.futures.ThreadPoolExecutor] = []  # made on first use
        self._spend: dict[str, SpendLog] = {}
        self._feedback: list[dict[str, Any]] = []
        self._held: dict[str, tuple[str, float, float]] = {}  # request id -> (tenant, usd, since)
        self.readonly = readonly
        self._columns = [n for n, _ in _COLUMNS]
        if self.path is not None and readonly:  # for reports: nothing is created, altered or written
            self._db = _open_readonly(self.path)
            self._columns = _ledger_columns(self._db, self.path)
        elif self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = open_sqlite(self.path, busy_timeout_s=self.busy_timeout_s, setup=_make_schema,
                                   ready=_has_schema)
            # in WAL mode a commit is durable across a process crash without an fsync per row
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._writer = RowWriter(functools.partial(_write_rows, self._db), self._lock, self.health,
                                     max_pending_rows)
        # a ledger dropped without close() still writes what waits and lets go of its file and threads
        self._finalizer = weakref.finalize(self, _shut, self._writer, self._db, self._lock, self._pool_box)

    @property
    def write_errors(self) -> int:
        """Failed attempts to write to the file (rows wait and are written later)."""
        return self.health.write_errors

    # -- writing -------------------------------------------------------------------------
    def make_row(self, original: Request, response: Response | None, *, error: BaseException | None = None,
                 latency_s: float = 0.0, status: str | None = None, info: dict[str, Any] | None = None) -> LedgerRow:
        """The row of one call; ``response`` carries the priced outcome (see ``costmw/_accounting.py``)."""
        r = response or Response()
        savings: dict[str, float] = {}
        for s in r.savings:
            savings[s.plugin] = savings.get(s.plugin, 0.0) + s.usd
        row = LedgerRow(
            ts=time.time(), request_id=original.id, tenant=original.tenant,
            requested_model=original.model, served_by=r.served_by or ("error" if error is not None else ""),
            model=r.model, prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens,
            cost_usd=r.cost_usd, baseline_cost_usd=r.baseline_cost_usd, latency_s=latency_s or r.latency_s,
            savings=savings, info=_jsonable({**(r.info if info is None else info), **_caller(original)}),
            error=None if error is None else redact_secrets(f"{type(error).__name__}: {error}")[:500],
            status=status or ("error" if error is not None else "ok"), tags=request_tags(original),
            cached_tokens=r.usage.cached_tokens, cache_write_tokens=r.usage.cache_write_tokens,
        )
        if self.store_text and response is not None and row.status == "ok":
            row.prompt = json.loads(redact_secrets(json.dumps(list(original.messages), default=str)))
            row.answer = redact_secrets(r.text)
        return row

    def record(self, row: LedgerRow) -> None:
        """Write ``row`` down; with a SQLite ledger it is queued for the writer thread (never waits
        on the file), and reads see it at once."""
        try:
            if self._writer is not None:
                self._writer.add(row)  # queued first: a reader counts the row before its hold goes
                self._held.pop(row.request_id, None)
                return
            with self._lock:
                self._held.pop(row.request_id, None)  # the row replaces what was held for it, in one step
                if row.tenant is not None or row.cost_usd:
                    self._spend.setdefault(row.tenant or "", SpendLog()).add(row.ts, row.cost_usd)
                self._rows.append(row)
        except Exception as exc:  # never fail the user's call over bookkeeping
            self.health.failed(exc)

    def pending_rows(self) -> int:
        """Rows recorded but not yet in the file or database (waiting for the writer)."""
        return len(self._pending())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every recorded row is in the file (up to ``timeout`` seconds); True when none waits."""
        return True if self._writer is None else self._writer.flush(timeout)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the file, taken at once so other processes wait (call under the lock)."""
        assert self._db is not None
        self._db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def hold(self, request_id: str, tenant: str | None, usd: float) -> None:
        """Count ``usd`` as spent by ``tenant`` while the call ``request_id`` is in flight: until its
        row is recorded or ``HOLD_S`` seconds pass. Budgets add what is held to what was spent, so
        concurrent calls cannot all pass a limit that only one fits. With a SQLite ledger the hold is
        kept in the file, where every process sharing the ledger sees it (in this process only while
        the file cannot be written)."""
        self._hold(request_id, tenant, usd, None, 0.0)

    def reserve(self, request_id: str, tenant: str | None, usd: float, limit_usd: float,
                since: float = 0.0, *, must_fit: bool = False) -> float | None:
        """Hold ``usd`` for the call ``request_id`` unless ``tenant`` has already reached
        ``limit_usd``: what it spent since ``since`` plus what other calls hold (with ``must_fit``,
        unless that sum plus ``usd`` would pass the limit). Returns None when the hold was placed,
        else that sum (and holds nothing). The check and the hold are one step, across threads and,
        with a SQLite ledger, across processes. When a SQLite file cannot be written, raises
        :class:`BudgetUnavailable` (``on_unavailable="refuse"``) or holds in this process only
        (``"allow"``). A blocking call: from async code await :meth:`areserve`."""
        return self._hold(request_id, tenant, usd, float(limit_usd), since, must_fit)

    async def areserve(self, request_id: str, tenant: str | None, usd: float, limit_usd: float,
                       since: float = 0.0, *, must_fit: bool = False) -> float | None:
        """:meth:`reserve`, run off the event loop when it may wait on the file."""
        return await self.arun(functools.partial(self.reserve, must_fit=must_fit), request_id, tenant, usd,
                               limit_usd, since)

    async def ahold(self, request_id: str, tenant: str | None, usd: float) -> None:
        """:meth:`hold`, run off the event loop when it may wait on the file."""
        await self.arun(self.hold, request_id, tenant, usd)

    async def arun(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)``, a call that reads or writes this ledger, where it cannot stall the
        event loop: inline for an in-memory ledger, else in the ledger's worker threads."""
        if self._db is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor(), functools.partial(fn, *args))

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with _POOL_LOCK:
            if not self._pool_box:
                self._pool_box.append(concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="costmw-ledger"))
            return self._pool_box[0]

    def _hold(self, request_id: str, tenant: str | None, usd: float, limit: float | None,
              since: float, must_fit: bool = False) -> float | None:
        key, now, usd = tenant or "", time.time(), max(0.0, float(usd))
        if self._db is not None and time.monotonic() < self.health.unavailable_until:
            self._unavailable(request_id, key, usd, now, limit, None)  # failing fast while it lasts
            return None
        with self._lock:
            try:
                with self._transaction() if self._db is not None else contextlib.nullcontext():
                    if limit is not None:
                        spent = self._spent(key, since) + self._held_by(key, now, besides=request_id)
                        if spent >= limit or (must_fit and spent + usd > limit * (1 + 1e-9)):
                            return spent
                    if self._db is None:
                        self._held[request_id] = (key, usd, now)
                    else:
                        self._db.execute("DELETE FROM holds WHERE since < ?", (now - HOLD_S,))
                        self._db.execute("INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?)",
                                         (request_id, key, usd, now))
            except Exception as exc:
                self.health.failed(exc)
                self.health.unavailable_until = time.monotonic() + _UNAVAILABLE_S
                self._unavailable(request_id, key, usd, now, limit, exc)
                return None
            return None

    def _unavailable(self, request_id: str, key: str, usd: float, now: float, limit: float | None,
                     exc: BaseException | None) -> None:
        """A hold the file could not take: kept in this process, or (a reservation against a limit,
        with ``on_unavailable="refuse"``) refused."""
        if limit is not None and self.on_unavailable == "refuse":
            self.health.refused += 1
            why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
            raise BudgetUnavailable(
                f"the ledger {str(self.path)!r} could not be written to hold this call against tenant "
                f"{key!r}'s budget{why}; the call is refused because the ledger was built with "
                "on_unavailable='refuse' (use 'allow' to let calls through while the file is unavailable)")
        if limit is not None:
            self.health.unheld += 1
            self.health.once("unheld", "costmw ledger: budget reservations are held in this process only "
                             "while %r cannot be written (on_unavailable='allow')", str(self.path))
        self._held[request_id] = (key, usd, now)

    def _spent(self, key: str, since: float) -> float:
        """What tenant ``key`` spent since ``since`` (call under the lock)."""
        if self._db is None:
            log_ = self._spend.get(key)
            return 0.0 if log_ is None else log_.since(since)
        waiting = sum(r.cost_usd for r in self._pending() if (r.tenant or "") == key and r.ts >= since)
        return waiting + float(self._db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE COALESCE(tenant, '') = ? AND ts >= ?",
            (key, since)).fetchone()[0])

    def _pending(self) -> list[LedgerRow]:
        return [] if self._writer is None else self._writer.pending()

    def _held_by(self, key: str, now: float, besides: str = "") -> float:
        """What tenant ``key``'s calls in flight hold, but for the call ``besides`` (call under the lock)."""
        for rid in [r for r, (_, _, since) in list(self._held.items()) if now - since > HOLD_S]:
            self._held.pop(rid, None)  # a call that was never recorded (its process gave up on it)
        own = sum(usd for rid, (who, usd, _) in list(self._held.items()) if who == key and rid != besides)
        if self._db is None:
            return own
        recorded = {r.request_id for r in self._pending()}  # rows waiting for the file: counted as spent
        in_file = self._db.execute("SELECT request_id, usd FROM holds WHERE tenant = ? AND since >= ? "
                                   "AND request_id != ?", (key, now - HOLD_S, besides)).fetchall()
        return own + sum(float(usd) for rid, usd in in_file if rid not in recorded and rid not in self._held)

    def held(self, tenant: str | None) -> float:
        """USD held for ``tenant``'s calls in flight (see :meth:`hold`), by every process sharing
        a SQLite ledger."""
        with self._lock:
            try:
                return self._held_by(tenant or "", time.time())
            except sqlite3.Error as exc:  # holds that cannot be read: this process's own
                self.health.failed(exc)
                key = tenant or ""
                return sum(usd for who, usd, _ in list(self._held.values()) if who == key)

    def add_feedback(self, request_id: str, good: bool, note: str = "") -> None:
        item = {"ts": time.time(), "request_id": request_id, "good": bool(good), "note": note}
        with self._lock:
            if self._db is None:
                self._feedback.append(item)
            else:
                self._db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?)",
                                 (item["ts"], request_id, int(good), note))

    # -- reading -------------------------------------------------------------------------
    def rows(self) -> list[LedgerRow]:
        """Every row, oldest first (with a SQLite ledger: those in the file and those waiting for it)."""
        with self._lock:
            if self._db is None:
                return list(self._rows)
            cur = self._db.execute(f"SELECT {', '.join(self._columns)} FROM calls ORDER BY ts")
            out = []
            for values in cur.fetchall():
                data: dict[str, Any] = {n: _MISSING.get(t) for n, t in _COLUMNS}
                data.update({n: (json.loads(v) if n in _JSON_COLS and v is not None else v)
                             for n, v in zip(self._columns, values)})
                data["savings"] = data["savings"] or {}
                data["info"] = data["info"] or {}
                data["tags"] = data["tags"] or []
                data["status"] = data["status"] or ("error" if data["error"] else "ok")
                out.append(LedgerRow(**data))
            return out + self._pending()

    def __iter__(self) -> Iterator[LedgerRow]:
        return iter(self.rows())

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._rows)
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]) + len(self._pending())

    def feedback(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._db is None or (self.readonly and not _has_table(self._db, "feedback")):
                return list(self._feedback)
            cur = self._db.execute("SELECT ts, request_id, good, note FROM feedback ORDER BY ts")
            return [{"ts": t, "request_id": r, "good": bool(g), "note": n} for t, r, g, n in cur.fetchall()]

    def spend(self, tenant: str | None, since: float = 0.0) -> float:
        """What ``tenant`` spent (USD) on calls since the unix time ``since``."""
        with self._lock:
            return self._spent(tenant or "", since)

    def summary(self) -> dict[str, Any]:
        """Totals, and breakdowns per plugin and per serving target."""
        rows = self.rows()
        by_plugin: dict[str, float] = {}
        by_target: dict[str, dict[str, float]] = {}
        errors, cancelled, cached = add_to_summary(rows, by_plugin, by_target)
        return summarize(len(rows), errors, cancelled, cached, by_plugin, by_target)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows()]

    def close(self) -> None:
        """Write the rows that wait (trying for a few seconds), then let go of the file and threads."""
        self._finalizer()
        self._db = None


#: Seconds a ledger whose file could not be written answers holds at once, without trying it.
_UNAVAILABLE_S = 1.0
_POOL_LOCK = threading.Lock()
_WRITER_BUSY_MS = 200  # the writer thread tries the file briefly and comes back later


def _write_rows(db: sqlite3.Connection, rows: Sequence[LedgerRow]) -> None:
    """Insert ``rows`` and drop their holds, in one transaction (called holding the ledger's lock)."""
    values = [[json.dumps(v) if k in _JSON_COLS and v is not None else v
               for k, v in ((n, getattr(row, n)) for n, _ in _COLUMNS)] for row in rows]
    db.execute(f"PRAGMA busy_timeout = {_WRITER_BUSY_MS}")
    db.execute("BEGIN IMMEDIATE")
    try:
        try:
            db.executemany("DELETE FROM holds WHERE request_id = ?", [(row.request_id,) for row in rows])
        except sqlite3.DatabaseError as exc:  # the rows are what matter; holds left behind expire
            log.debug("costmw ledger could not drop holds: %s", exc)
        db.executemany(f"INSERT INTO calls ({', '.join(n for n, _ in _COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _shut(writer: RowWriter[LedgerRow] | None, db: sqlite3.Connection | None, lock: threading.Lock,
          pools: list[concurrent.futures.ThreadPoolExecutor]) -> None:
    """Close a ledger (also when it is collected without ``close()``): rows, threads, file."""
    if writer is not None:
        writer.close()
    for pool in pools:
        pool.shutdown(wait=False)
    if db is not None:
        with lock:
            db.close()
