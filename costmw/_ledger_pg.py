"""A ledger in PostgreSQL, shared by every process and host: ``Ledger("postgresql://...")``.

The rows have the SQLite ledger's columns (table ``costmw_calls``); feedback and budget holds
have their tables too (``costmw_feedback``, ``costmw_holds``). The schema is made and migrated
by ``costmw db upgrade`` (:func:`upgrade`), never by opening a ledger: a database without it is
a :class:`ConfigError` that says to run the command.

- Rows are written by a thread of the ledger's own, in batches, through a psycopg connection
  pool; while PostgreSQL cannot be reached they wait in memory (``max_pending_rows``) and are
  written when it is back. Past the bound the oldest are dropped, counted and logged. A batch
  retried after a lost commit is not written twice: ``(request_id, ts)`` is unique.
- A reservation (:meth:`Ledger.reserve`) is one call of the function ``costmw_reserve`` (one
  round trip, one transaction): it takes a transaction-scoped advisory lock for the tenant, then
  reads what the tenant spent and what other calls hold in one statement, and inserts the hold
  when the call fits: every process and host that reserves against the tenant waits for that
  lock, so together they never pass a limit. Writing a row drops its hold in the
  same transaction, so no reader sees a call both held and recorded, or neither.
- With a ``spool`` folder, rows still waiting when the ledger closes (the process exits while
  the database is down) are written to a file there, and the next ledger opened with that spool
  loads and writes them; without one they are counted in ``health.rows_lost`` and logged.
- When PostgreSQL cannot be reached, a reservation is checked against what this process last
  read for the tenant plus its own calls since, and held in this process only (counted in
  ``health.unheld``, logged once); ``on_unavailable="refuse"`` refuses it instead.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ._errors import BudgetUnavailable, ConfigError, StoreUnavailable, missing_extra
from ._ledger import _COLUMNS, _JSON_COLS, HOLD_S, Ledger, LedgerRow, add_to_summary, summarize
from ._ledger_io import LedgerHealth, RowWriter

__all__ = ["SCHEMA_VERSION", "PostgresLedger", "display_url", "schema_version", "upgrade"]

log = logging.getLogger("costmw.ledger")


class _QuietPoolLog(logging.Filter):
    """psycopg_pool warns at every failed reconnection of a pool. For costmw's own pools (named
    ``costmw-...``) the ledger logs an outage once and counts it, so those repeats go to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno == logging.WARNING and args and str(args[0]).startswith("costmw-"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_POOL_LOG_FILTER = _QuietPoolLog()


def _quiet_pool_log() -> None:
    pool_log = logging.getLogger("psycopg.pool")
    if _POOL_LOG_FILTER not in pool_log.filters:
        pool_log.addFilter(_POOL_LOG_FILTER)

_PG_TYPES = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT", "TEXT": "TEXT"}
_CALL_COLUMNS = ", ".join(f"{n} {_PG_TYPES[t]}" for n, t in _COLUMNS)

# A reservation in one statement: take the tenant's lock, then (a new statement, so a new snapshot
# taken after the lock) read spend and holds together, then hold if the call fits. In READ
# COMMITTED each statement of a volatile function sees what was committed before it began.
_RESERVE_FUNCTION = """
CREATE FUNCTION costmw_reserve(p_request TEXT, p_tenant TEXT, p_usd DOUBLE PRECISION, p_limit DOUBLE PRECISION,
                               p_since DOUBLE PRECISION, p_fresh DOUBLE PRECISION, p_skip TEXT[],
                               p_extra DOUBLE PRECISION, p_must_fit BOOLEAN, p_now DOUBLE PRECISION,
                               p_lock BIGINT, p_lock_timeout TEXT)
RETURNS TABLE (recorded DOUBLE PRECISION, held DOUBLE PRECISION, placed BOOLEAN)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r DOUBLE PRECISION;
    h DOUBLE PRECISION;
    spent DOUBLE PRECISION;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM pg_advisory_xact_lock(p_lock);
    IF p_tenant = '' THEN
        SELECT (SELECT COALESCE(SUM(c.cost_usd), 0) FROM costmw_calls c
                WHERE (c.tenant IS NULL OR c.tenant = '') AND c.ts >= p_since),
               (SELECT COALESCE(SUM(o.usd), 0) FROM costmw_holds o
                WHERE o.tenant = p_tenant AND o.since >= p_fresh AND o.request_id <> ALL(p_skip))
        INTO r, h;
    ELSE
        SELECT (SELECT COALESCE(SUM(c.cost_usd), 0) FROM costmw_calls c
                WHERE c.tenant = p_tenant AND c.ts >= p_since),
               (SELECT COALESCE(SUM(o.usd), 0) FROM costmw_holds o
                WHERE o.tenant = p_tenant AND o.since >= p_fresh AND o.request_id <> ALL(p_skip))
        INTO r, h;
    END IF;
    spent := r + h + p_extra;
    IF spent >= p_limit OR (p_must_fit AND spent + p_usd > p_limit * (1 + 1e-9)) THEN
        RETURN QUERY SELECT r, h, false;
        RETURN;
    END IF;
    INSERT INTO costmw_holds AS x VALUES (p_request, p_tenant, p_usd, p_now)
        ON CONFLICT (request_id) DO UPDATE SET tenant = EXCLUDED.tenant, usd = EXCLUDED.usd, since = EXCLUDED.since;
    RETURN QUERY SELECT r, h, true;
END
$$
"""

#: Versioned migrations: (version, what it does, statements). Append, never edit a shipped one.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (1, "calls, feedback and budget holds", (
        f"CREATE TABLE costmw_calls ({_CALL_COLUMNS})",
        # one row per call: a batch written again after a commit whose answer was lost adds nothing
        "CREATE UNIQUE INDEX costmw_calls_request_ts ON costmw_calls (request_id, ts)",
        "CREATE INDEX costmw_calls_tenant_ts ON costmw_calls (tenant, ts)",
        "CREATE TABLE costmw_feedback (ts DOUBLE PRECISION NOT NULL, request_id TEXT NOT NULL, "
        "good BOOLEAN NOT NULL, note TEXT NOT NULL, UNIQUE (request_id, ts))",
        "CREATE TABLE costmw_holds (request_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
        "usd DOUBLE PRECISION NOT NULL, since DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX costmw_holds_tenant ON costmw_holds (tenant, since)",
    )),
    (2, "costmw_reserve: a budget reservation in one round trip", (_RESERVE_FUNCTION,)),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

_MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS costmw_migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
# advisory lock keys: 'cmw' in the high bits, so they stay clear of an application's own keys
_MIGRATE_LOCK = 0x636D77 << 32
_TENANT_LOCK = 0x636D78 << 32
_UNAVAILABLE_S = 1.0  # after a failure, reservations answer at once (degraded) for this long
_PURGE_EVERY_S = 60.0  # expired holds are deleted at most this often per process
_KNOWN_MAX = 10_000


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise missing_extra("psycopg", "postgres", exc) from exc
    return psycopg


def display_url(url: str) -> str:
    """``url`` without its password or query string (which may hold one), for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, "", ""))
    except ValueError:
        return "postgresql://(unparseable URL)"


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: they become U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _row_values(row: LedgerRow) -> list[Any]:
    return [_clean(json.dumps(v) if n in _JSON_COLS and v is not None else v)
            for n, v in ((n, getattr(row, n)) for n, _ in _COLUMNS)]


def _tenant_lock(key: str) -> int:
    return _TENANT_LOCK | zlib.crc32(key.encode("utf-8", "surrogatepass"))


def _tenant_match(key: str) -> str:
    """SQL matching the rows of tenant ``key`` (``""`` is the calls without a tenant)."""
    return "(tenant IS NULL OR tenant = '')" if key == "" else "tenant = %(key)s"


def schema_version(conn: Any) -> int:
    """The newest migration applied to the database ``conn`` reaches (0: none)."""
    psycopg = _psycopg()
    try:
        with conn.transaction():
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM costmw_migrations").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0])


def upgrade(url: str, *, connect_timeout_s: int = 10) -> list[int]:
    """Create or migrate the ledger's schema at ``url`` (the schema of its ``search_path``);
    returns the migrations applied now (none when it was up to date). Safe to run again and from
    several hosts at once: one transaction, under an advisory lock."""
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(url, connect_timeout=connect_timeout_s)
    except psycopg.Error as exc:
        raise ConfigError(f"cannot connect to the PostgreSQL ledger at {display_url(url)}: {exc}") from None
    applied: list[int] = []
    try:
        _migrate(conn, url, applied)
    except psycopg.Error as exc:
        raise ConfigError(f"cannot upgrade the ledger at {display_url(url)}: {type(exc).__name__}: {exc}") from None
    if applied:
        log.info("costmw ledger at %s: applied migrations %s", display_url(url), applied)
    return applied


def _migrate(conn: Any, url: str, applied: list[int]) -> None:
    with conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        conn.execute(_MIGRATIONS_TABLE)
        have = {int(r[0]) for r in conn.execute("SELECT version FROM costmw_migrations").fetchall()}
        if have and max(have) > SCHEMA_VERSION:
            raise ConfigError(f"the ledger at {display_url(url)} has schema version {max(have)}, newer than "
                              f"this costmw knows ({SCHEMA_VERSION}): upgrade costmw")
        for version, name, statements in MIGRATIONS:
            if version in have:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO costmw_migrations VALUES (%s, %s, %s)", (version, name, time.time()))
            applied.append(version)


@dataclass(frozen=True)
class _Feedback:
    ts: float
    request_id: str
    good: bool
    note: str


class PostgresLedger(Ledger):
    """The ledger in PostgreSQL (see the module's notes). Made by ``Ledger("postgresql://...")``.

    ``on_unavailable`` defaults to ``"allow"`` here: a database that cannot be reached never
    fails a call, and budgets are then enforced per process from what it last read.
    ``pool_size`` bounds the connections this process opens. ``spool``: a folder where rows
    still waiting at close are kept for the next ledger opened with it.
    """

    def __init__(self, path: str, *, store_text: bool = False,
                 on_unavailable: Literal["refuse", "allow"] | None = None, max_pending_rows: int = 10_000,
                 busy_timeout_s: float = 2.0, readonly: bool = False, pool_size: int | None = None,
                 spool: str | Path | None = None) -> None:
        super().__init__(None, store_text=store_text, on_unavailable=on_unavailable or "allow",
                         max_pending_rows=max_pending_rows, busy_timeout_s=busy_timeout_s)
        pool_size = 4 if pool_size is None else pool_size
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"Ledger pool_size must be a positive integer, got {pool_size!r}")
        psycopg = _psycopg()
        try:
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise missing_extra("psycopg_pool", "postgres", exc) from exc
        _quiet_pool_log()
        self.spool = Path(spool) if spool else None
        if self.spool is not None:
            try:
                self.spool.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"the ledger's spool {str(self.spool)!r} is not a usable folder: {exc}") from None
        self._psycopg = psycopg
        self.url = str(path)
        self.where = display_url(self.url)
        self.readonly = readonly
        self._known: dict[tuple[str, float], float] = {}  # (tenant, since) -> spend last read from the database
        self._purged = 0.0
        self._pg_pool = ConnectionPool(
            self.url, min_size=1, max_size=pool_size, open=False, name="costmw-ledger",
            timeout=max(0.1, self.busy_timeout_s),
            kwargs={"autocommit": True, "connect_timeout": max(2, int(self.busy_timeout_s + 0.999))},
            check=ConnectionPool.check_connection)
        self._pg_pool.open(wait=False)
        self._check_schema()
        self._pg_writer: RowWriter[LedgerRow | _Feedback] | None = None
        if not readonly:
            self._pg_writer = RowWriter(
                functools.partial(_write, self.health, self.where, self._known), self._lock, self.health,
                max_pending_rows,
                connect=functools.partial(_connection, self._pg_pool, self.busy_timeout_s, self.health))
        if self._pg_writer is not None and self.spool is not None:
            for item in _load_spool(self.spool, self.health):
                self._pg_writer.add(item)
        self._pg_finalizer = weakref.finalize(self, _shut_pg, self._pg_writer, self._pg_pool,
                                              None if readonly else self.spool)

    def __repr__(self) -> str:
        return f"<costmw Ledger {self.where}>"

    def _check_schema(self) -> None:
        """A clear error when the database is reachable but has no (or an older) ledger schema; a
        warning, and rows kept until it is back, when it cannot be reached now."""
        try:
            with self._pg_pool.connection(timeout=max(self.busy_timeout_s, 5.0)) as conn:
                version = schema_version(conn)
        except self._psycopg.Error as exc:
            if self.readonly:
                self._pg_pool.close()
                raise ConfigError(f"cannot read the PostgreSQL ledger at {self.where}: {exc}") from None
            self.health.failed(exc)
            log.warning("costmw ledger: PostgreSQL at %s cannot be reached now; rows are kept in memory and "
                        "written when it is back", self.where)
            return
        if version < SCHEMA_VERSION:
            self._pg_pool.close()
            what = "has no costmw ledger schema" if version == 0 else f"has ledger schema version {version}"
            raise ConfigError(f"the PostgreSQL database at {self.where} {what} (this costmw needs version "
                              f"{SCHEMA_VERSION}): run `costmw db upgrade --url <the ledger URL>` first")

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """A connection, then the ledger's lock (never the other way round: a database that does
        not answer never holds the lock)."""
        with self._pg_pool.connection(timeout=max(0.1, self.busy_timeout_s)) as conn, self._lock:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """:meth:`_conn` for reports: a database that cannot be read is :class:`StoreUnavailable`."""
        try:
            with self._conn() as conn:
                yield conn
        except self._psycopg.Error as exc:
            raise StoreUnavailable(f"the PostgreSQL ledger at {self.where} cannot be read now: {exc}") from None

    def _down(self, exc: BaseException) -> None:
        self.health.failed(exc)
        self.health.unavailable_until = time.monotonic() + _UNAVAILABLE_S

    # -- writing -------------------------------------------------------------------------
    def record(self, row: LedgerRow) -> None:
        """Queue ``row`` for the writer thread (never waits on the database); reads see it at once."""
        try:
            if self._pg_writer is None:
                raise ConfigError("this ledger was opened read-only")
            self._pg_writer.add(row)
            self._held.pop(row.request_id, None)
        except Exception as exc:  # never fail the user's call over bookkeeping
            self.health.failed(exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every recorded row is in the database (up to ``timeout`` seconds)."""
        return True if self._pg_writer is None else self._pg_writer.flush(timeout)

    def add_feedback(self, request_id: str, good: bool, note: str = "") -> None:
        if self._pg_writer is not None:
            self._pg_writer.add(_Feedback(time.time(), request_id, bool(good), note))

    async def arun(self, fn: Callable[..., Any], *args: Any) -> Any:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._executor(), functools.partial(fn, *args))

    def _pending(self) -> list[LedgerRow]:
        return [] if self._pg_writer is None else [r for r in self._pg_writer.pending() if isinstance(r, LedgerRow)]

    # -- budgets -------------------------------------------------------------------------
    def _hold(self, request_id: str, tenant: str | None, usd: float, limit: float | None,
              since: float, must_fit: bool = False) -> float | None:
        key, now, usd = tenant or "", time.time(), max(0.0, float(usd))
        if self.readonly:
            raise ConfigError("this ledger was opened read-only")
        if time.monotonic() < self.health.unavailable_until:
            return self._degraded(request_id, key, usd, now, limit, since, must_fit, None)
        failure: BaseException | None = None
        try:
            with self._conn() as conn:
                if now - self._purged > _PURGE_EVERY_S:
                    conn.execute("DELETE FROM costmw_holds WHERE since < %s", (now - HOLD_S,))
                    self._purged = now
                if limit is None:
                    conn.execute("INSERT INTO costmw_holds VALUES (%s, %s, %s, %s) ON CONFLICT (request_id) "
                                 "DO UPDATE SET tenant = EXCLUDED.tenant, usd = EXCLUDED.usd, since = EXCLUDED.since",
                                 (_clean(request_id), _clean(key), usd, now))
                else:
                    # other reservations of the tenant hold its lock for a moment each: a long wait means
                    # one is stuck, and only then is the database treated as unavailable
                    extra = self._local(key, since, request_id)
                    skip = [_clean(s) for s in (request_id, *(r.request_id for r in self._pending()))]
                    recorded, held, placed = conn.execute(
                        "SELECT recorded, held, placed FROM costmw_reserve(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s, %s)", (_clean(request_id), _clean(key), usd, float(limit), since, now - HOLD_S, skip,
                                    extra, must_fit, now, _tenant_lock(key),
                                    f"{int(max(10.0, 5 * self.busy_timeout_s) * 1000)}ms")).fetchone()
                    self._remember(key, since, float(recorded))
                    if not placed:
                        return float(recorded) + float(held) + extra
                self._held.pop(request_id, None)
            return None
        except Exception as exc:
            self._down(exc)
            failure = exc
        return self._degraded(request_id, key, usd, now, limit, since, must_fit, failure)

    def _read_spend(self, conn: Any, key: str, since: float, now: float, besides: str = "",
                    remember: bool = True) -> tuple[float, float]:
        """(spent in the database since ``since``, held in the database by other calls), in one
        statement (one snapshot: a row written meanwhile is counted once, as its row or its hold).
        Holds of rows that wait in this process are left out: those rows count as spent."""
        skip = [besides, *(r.request_id for r in self._pending())]
        row = conn.execute(
            f"SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM costmw_calls WHERE {_tenant_match(key)} "
            "AND ts >= %(since)s), (SELECT COALESCE(SUM(usd), 0) FROM costmw_holds WHERE tenant = %(key)s "
            "AND since >= %(fresh)s AND request_id <> ALL(%(skip)s))",
            {"key": _clean(key), "since": since, "fresh": now - HOLD_S, "skip": [_clean(s) for s in skip]},
        ).fetchone()
        recorded = float(row[0])
        if remember:
            self._remember(key, since, recorded)
        return recorded, float(row[1])

    def _remember(self, key: str, since: float, recorded: float) -> None:
        """Keep what the database said tenant ``key`` spent since ``since`` (call under the lock)."""
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()
        self._known[(key, since)] = recorded

    def _local(self, key: str, since: float, besides: str = "") -> float:
        """What this process adds to the database's numbers: rows waiting to be written, and holds
        it keeps itself (made while the database could not be reached). Call under the lock."""
        now = time.time()
        for rid in [r for r, (_, _, t) in list(self._held.items()) if now - t > HOLD_S]:
            self._held.pop(rid, None)
        own = sum(usd for rid, (who, usd, _) in list(self._held.items()) if who == key and rid != besides)
        return self._waiting(key, since) + own

    def _degraded(self, request_id: str, key: str, usd: float, now: float, limit: float | None, since: float,
                  must_fit: bool, exc: BaseException | None) -> float | None:
        """A hold the database could not take: refused (``on_unavailable="refuse"``), or checked
        against what this process knows and kept in this process."""
        if limit is not None and self.on_unavailable == "refuse":
            self.health.refused += 1
            why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
            raise BudgetUnavailable(
                f"the PostgreSQL ledger at {self.where} could not be reached to hold this call against tenant "
                f"{key!r}'s budget{why}; the call is refused because the ledger was built with "
                "on_unavailable='refuse'")
        with self._lock:
            if limit is not None:
                spent = self._known.get((key, since), 0.0) + self._local(key, since, request_id)
                if spent >= limit or (must_fit and spent + usd > limit * (1 + 1e-9)):
                    return spent
                self.health.unheld += 1
                self.health.once("unheld", "costmw ledger: PostgreSQL at %s cannot be reached; budgets are "
                                 "checked and held in this process only until it is back", self.where)
            self._held[request_id] = (key, usd, now)
        return None

    def held(self, tenant: str | None) -> float:
        """USD held for ``tenant``'s calls in flight, by every process sharing the database (this
        process's own only, while the database cannot be reached)."""
        key, now = tenant or "", time.time()
        if time.monotonic() >= self.health.unavailable_until:
            try:
                with self._conn() as conn:
                    _, held = self._read_spend(conn, key, now + 1.0, now, remember=False)
                    return held + self._local(key, now + 1.0)  # no waiting row is that new: holds only
            except Exception as exc:
                self._down(exc)
        with self._lock:
            return self._local(key, now + 1.0)

    def spend(self, tenant: str | None, since: float = 0.0) -> float:
        """What ``tenant`` spent since ``since``; while the database cannot be reached, what this
        process last read from it plus its rows since."""
        key = tenant or ""
        if time.monotonic() >= self.health.unavailable_until:
            try:
                with self._conn() as conn:
                    recorded, _ = self._read_spend(conn, key, since, time.time())
                    return recorded + self._waiting(key, since)
            except Exception as exc:
                self._down(exc)
        with self._lock:
            return self._known.get((key, since), 0.0) + self._waiting(key, since)

    def _waiting(self, key: str, since: float) -> float:
        return sum(r.cost_usd for r in self._pending() if (r.tenant or "") == key and r.ts >= since)

    # -- reading -------------------------------------------------------------------------
    def rows(self) -> list[LedgerRow]:
        """Every row, oldest first: those in the database and those waiting to be written.
        Raises :class:`StoreUnavailable` when the database cannot be reached."""
        names = [n for n, _ in _COLUMNS]
        with self._reading() as conn:
            found = conn.execute(f"SELECT {', '.join(names)} FROM costmw_calls ORDER BY ts").fetchall()
            pending = self._pending()
        out = []
        for values in found:
            data: dict[str, Any] = {n: (json.loads(v) if n in _JSON_COLS and v is not None else v)
                                    for n, v in zip(names, values)}
            data["savings"] = data["savings"] or {}
            data["info"] = data["info"] or {}
            data["tags"] = data["tags"] or []
            data["status"] = data["status"] or ("error" if data["error"] else "ok")
            out.append(LedgerRow(**data))
        return out + pending

    def __len__(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM costmw_calls").fetchone()[0]) + len(self._pending())

    def feedback(self) -> list[dict[str, Any]]:
        with self._reading() as conn:
            found = conn.execute("SELECT ts, request_id, good, note FROM costmw_feedback ORDER BY ts").fetchall()
            waiting = [] if self._pg_writer is None else [
                f for f in self._pg_writer.pending() if isinstance(f, _Feedback)]
        return ([{"ts": t, "request_id": r, "good": bool(g), "note": n} for t, r, g, n in found]
                + [{"ts": f.ts, "request_id": f.request_id, "good": f.good, "note": f.note} for f in waiting])

    def summary(self) -> dict[str, Any]:
        """Totals and breakdowns, added up in the database (no row is read into memory)."""
        with self._reading() as conn:
            targets = conn.execute(
                "SELECT served_by, COUNT(*), SUM(cost_usd), SUM(baseline_cost_usd), SUM(prompt_tokens), "
                "SUM(completion_tokens), SUM(cached_tokens), COUNT(*) FILTER (WHERE status = 'error' OR "
                "(status IS NULL AND error IS NOT NULL)), COUNT(*) FILTER (WHERE status = 'cancelled') "
                "FROM costmw_calls GROUP BY served_by").fetchall()
            savings = conn.execute(
                "SELECT savings FROM costmw_calls WHERE savings IS NOT NULL AND savings <> '{}'").fetchall()
            pending = self._pending()
        by_plugin: dict[str, float] = {}
        by_target: dict[str, dict[str, float]] = {}
        calls = errors = cancelled = cached = 0
        for served, n, cost, base, prompt, completion, cached_t, err, cancel in targets:
            by_target[served] = {"calls": float(n), "cost_usd": float(cost or 0), "baseline_cost_usd": float(base or 0),
                                 "prompt_tokens": float(prompt or 0), "completion_tokens": float(completion or 0),
                                 "cached_tokens": float(cached_t or 0)}
            calls, errors, cancelled, cached = calls + n, errors + err, cancelled + cancel, cached + int(cached_t or 0)
        for (text,) in savings:
            for plugin, usd in json.loads(text).items():
                by_plugin[plugin] = by_plugin.get(plugin, 0.0) + float(usd)
        more_errors, more_cancelled, more_cached = add_to_summary(pending, by_plugin, by_target)
        return summarize(calls + len(pending), errors + more_errors, cancelled + more_cancelled,
                         cached + more_cached, by_plugin, by_target)

    def close(self) -> None:
        """Write the rows that wait (trying for a few seconds), then close the pool and threads."""
        self._pg_finalizer()
        self._finalizer()


@contextmanager
def _connection(pool: Any, timeout: float, health: LedgerHealth) -> Iterator[Any]:
    """The writer's connection; when none can be had, reservations answer at once for a while
    rather than wait on the database."""
    import psycopg

    try:
        with pool.connection(timeout=max(0.1, timeout)) as conn:
            yield conn
    except psycopg.OperationalError:
        health.unavailable_until = time.monotonic() + _UNAVAILABLE_S
        raise


def _write(health: LedgerHealth, where: str, known: dict[tuple[str, float], float],
           items: Sequence[LedgerRow | _Feedback], conn: Any) -> None:
    """Write a batch in one transaction: rows (dropping their holds) and feedback. Raises when the
    database cannot take it (the batch waits and is tried again); a row the database refuses as
    invalid is dropped alone, counted and logged, so it never holds up the rows behind it. What
    this process last read of each tenant's spend (``known``) gains the rows written."""
    import psycopg

    try:
        _write_batch(conn, items)
        _add_known(known, items)
        return
    except psycopg.OperationalError:
        health.unavailable_until = time.monotonic() + _UNAVAILABLE_S
        raise
    except psycopg.errors.UndefinedTable as exc:
        health.once("schema", "costmw ledger: the database at %s has no ledger schema; rows wait until "
                    "`costmw db upgrade` is run (%s)", where, exc)
        raise
    except psycopg.DataError as exc:
        log.warning("costmw ledger: PostgreSQL refused a batch (%s); writing its rows one by one", exc)
    for item in items:
        try:
            _write_batch(conn, [item])
            _add_known(known, [item])
        except psycopg.DataError as exc:
            health.rows_rejected += 1
            log.warning("costmw ledger: PostgreSQL refused a row of request %s, which is dropped: %s",
                        getattr(item, "request_id", "?"), exc)


def _add_known(known: dict[tuple[str, float], float], items: Sequence[LedgerRow | _Feedback]) -> None:
    """Count rows just written in the spend this process last read (called holding the lock)."""
    by_tenant: dict[str, list[LedgerRow]] = {}
    for item in items:
        if isinstance(item, LedgerRow) and item.cost_usd:
            by_tenant.setdefault(item.tenant or "", []).append(item)
    if not by_tenant:
        return
    for (key, since), spent in list(known.items()):
        rows = by_tenant.get(key)
        if rows:
            known[(key, since)] = spent + sum(r.cost_usd for r in rows if r.ts >= since)


def _write_batch(conn: Any, items: Sequence[LedgerRow | _Feedback]) -> None:
    rows = [i for i in items if isinstance(i, LedgerRow)]
    notes = [i for i in items if isinstance(i, _Feedback)]
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            cur.execute("DELETE FROM costmw_holds WHERE request_id = ANY(%s)",
                        ([_clean(r.request_id) for r in rows],))
            cur.executemany(f"INSERT INTO costmw_calls ({', '.join(n for n, _ in _COLUMNS)}) VALUES "
                            f"({', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT (request_id, ts) DO NOTHING",
                            [_row_values(r) for r in rows])
        if notes:
            cur.executemany("INSERT INTO costmw_feedback VALUES (%s, %s, %s, %s) "
                            "ON CONFLICT (request_id, ts) DO NOTHING",
                            [(n.ts, _clean(n.request_id), n.good, _clean(n.note)) for n in notes])


def _spill(spool: Path, items: list[LedgerRow | _Feedback]) -> None:
    """Keep ``items`` in a new file of ``spool``, made whole under a temporary name first."""
    name = spool / f"ledger-{os.getpid()}-{uuid.uuid4().hex}.jsonl"
    part = name.with_suffix(".part")
    with part.open("w", encoding="utf-8") as f:
        for item in items:
            kind = "row" if isinstance(item, LedgerRow) else "feedback"
            f.write(json.dumps({kind: asdict(item)}, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, name)


def _load_spool(spool: Path, health: LedgerHealth) -> list[LedgerRow | _Feedback]:
    """The rows other ledgers left in ``spool``; each file is taken by one ledger only (renamed
    first), and removed once its rows are queued (writing one twice adds nothing)."""
    out: list[LedgerRow | _Feedback] = []
    for found in sorted(spool.glob("ledger-*.jsonl")):
        taken = found.with_name(f"{found.name}.{uuid.uuid4().hex}.taken")
        try:
            os.rename(found, taken)
        except OSError:  # another ledger took it
            continue
        try:
            lines = taken.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            log.warning("costmw ledger: cannot read the spooled rows in %s: %s", taken, exc)
            continue
        for line in lines:
            try:
                data = json.loads(line)
                out.append(LedgerRow(**data["row"]) if "row" in data else _Feedback(**data["feedback"]))
            except (ValueError, TypeError, KeyError) as exc:
                health.rows_rejected += 1
                log.warning("costmw ledger: a spooled row in %s cannot be read and is skipped: %s", found, exc)
        taken.unlink()
    if out:
        log.info("costmw ledger: %d spooled rows loaded from %s", len(out), spool)
    return out


def _shut_pg(writer: RowWriter[Any] | None, pool: Any, spool: Path | None = None) -> None:
    if writer is not None:
        writer.close(keep=None if spool is None else functools.partial(_spill, spool))
    try:
        pool.close(timeout=2.0)
    except Exception as exc:  # closing is best effort
        log.debug("costmw ledger: closing the pool: %s", exc)
