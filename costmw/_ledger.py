"""The ledger: one row per call with tokens, cost, baseline cost and savings per plugin.

In memory by default; pass a path for SQLite. Rows never hold API keys: parameters are not
stored, and prompt/answer text (kept only with ``store_text=True``, e.g. for distillation) has
anything that looks like a secret redacted first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._redact import redact_secrets
from ._types import Request, Response

__all__ = ["Ledger", "LedgerRow", "redact_secrets"]

log = logging.getLogger("costmw.ledger")

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

    @property
    def saved_usd(self) -> float:
        return max(0.0, self.baseline_cost_usd - self.cost_usd)


_COLUMNS = [
    ("ts", "REAL"), ("request_id", "TEXT"), ("tenant", "TEXT"), ("requested_model", "TEXT"),
    ("served_by", "TEXT"), ("model", "TEXT"), ("prompt_tokens", "INTEGER"),
    ("completion_tokens", "INTEGER"), ("cost_usd", "REAL"), ("baseline_cost_usd", "REAL"),
    ("latency_s", "REAL"), ("savings", "TEXT"), ("info", "TEXT"), ("error", "TEXT"),
    ("prompt", "TEXT"), ("answer", "TEXT"),
]
_JSON_COLS = {"savings", "info", "prompt"}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


#: Seconds a hold on a tenant's budget lasts when its call is never recorded.
HOLD_S = 600.0


class Ledger:
    """Where every call is written down. Thread-safe; a failure to write never fails a call."""

    def __init__(self, path: str | Path | None = None, *, store_text: bool = False) -> None:
        self.path = Path(path) if path else None
        self.store_text = store_text
        self._lock = threading.Lock()
        self._rows: list[LedgerRow] = []
        self._db: sqlite3.Connection | None = None
        self._spend: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._feedback: list[dict[str, Any]] = []
        self._held: dict[str, tuple[str, float, float]] = {}  # request id -> (tenant, usd, since)
        self.write_errors = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # in WAL mode a commit is durable across a process crash without an fsync per row
            self._db.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(f"{n} {t}" for n, t in _COLUMNS)
            self._db.execute(f"CREATE TABLE IF NOT EXISTS calls ({cols})")
            self._db.execute("CREATE INDEX IF NOT EXISTS calls_tenant_ts ON calls (tenant, ts)")
            self._db.execute("CREATE INDEX IF NOT EXISTS calls_request ON calls (request_id)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS feedback (ts REAL, request_id TEXT, good INTEGER, note TEXT)"
            )
            # holds live in the file too, so processes sharing one ledger see each other's calls in flight
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS holds (request_id TEXT PRIMARY KEY, tenant TEXT, usd REAL, since REAL)"
            )

    # -- writing -------------------------------------------------------------------------
    def make_row(self, original: Request, response: Response | None, *, error: BaseException | None = None,
                 latency_s: float = 0.0) -> LedgerRow:
        r = response or Response()
        savings: dict[str, float] = {}
        for s in r.savings:
            savings[s.plugin] = savings.get(s.plugin, 0.0) + s.usd
        row = LedgerRow(
            ts=time.time(), request_id=original.id, tenant=original.tenant,
            requested_model=original.model, served_by=r.served_by if response else "error",
            model=r.model, prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens,
            cost_usd=r.cost_usd, baseline_cost_usd=r.baseline_cost_usd, latency_s=latency_s or r.latency_s,
            savings=savings, info=_jsonable(r.info), error=None if error is None else redact_secrets(
                f"{type(error).__name__}: {error}")[:500],
        )
        if self.store_text and response is not None:
            row.prompt = json.loads(redact_secrets(json.dumps(list(original.messages), default=str)))
            row.answer = redact_secrets(r.text)
        return row

    def record(self, row: LedgerRow) -> None:
        try:
            with self._lock:
                self._held.pop(row.request_id, None)  # the row replaces what was held for it, in one step
                if row.tenant is not None or row.cost_usd:
                    self._spend[row.tenant or ""].append((row.ts, row.cost_usd))
                if self._db is None:
                    self._rows.append(row)
                    return
                values = [json.dumps(v) if k in _JSON_COLS and v is not None else v
                          for k, v in ((n, getattr(row, n)) for n, _ in _COLUMNS)]
                with self._transaction() as db:
                    try:
                        db.execute("DELETE FROM holds WHERE request_id = ?", (row.request_id,))
                    except sqlite3.Error as exc:  # the row is what matters; a hold left behind expires
                        self._write_failed(exc)
                    db.execute(f"INSERT INTO calls VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        except Exception as exc:  # never fail the user's call over bookkeeping
            self._write_failed(exc)

    def _write_failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        if self.write_errors == 1:
            log.warning("costmw ledger could not write (further errors counted only): %s", exc)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the file, taken at once so other processes wait (call under the lock)."""
        assert self._db is not None
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
        kept in the file, where every process sharing the ledger sees it."""
        self._hold(request_id, tenant, usd, None, 0.0)

    def reserve(self, request_id: str, tenant: str | None, usd: float, limit_usd: float,
                since: float = 0.0, *, must_fit: bool = False) -> float | None:
        """Hold ``usd`` for the call ``request_id`` unless ``tenant`` has already reached
        ``limit_usd``: what it spent since ``since`` plus what other calls hold (with ``must_fit``,
        unless that sum plus ``usd`` would pass the limit). Returns None when the hold was placed,
        else that sum (and holds nothing). The check and the hold are one step, across threads and,
        with a SQLite ledger, across processes."""
        return self._hold(request_id, tenant, usd, float(limit_usd), since, must_fit)

    def _hold(self, request_id: str, tenant: str | None, usd: float, limit: float | None,
              since: float, must_fit: bool = False) -> float | None:
        key, now, usd = tenant or "", time.time(), max(0.0, float(usd))
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
            except Exception as exc:  # a ledger that cannot write holds nothing; the call goes on
                self._write_failed(exc)
            return None

    def _spent(self, key: str, since: float) -> float:
        """What tenant ``key`` spent since ``since`` (call under the lock)."""
        if self._db is None:
            return sum(c for ts, c in self._spend.get(key, ()) if ts >= since)
        return float(self._db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE COALESCE(tenant, '') = ? AND ts >= ?",
            (key, since)).fetchone()[0])

    def _held_by(self, key: str, now: float, besides: str = "") -> float:
        """What tenant ``key``'s calls in flight hold, but for the call ``besides`` (call under the lock)."""
        if self._db is None:
            for rid in [r for r, (_, _, since) in self._held.items() if now - since > HOLD_S]:
                del self._held[rid]  # a call that was never recorded (its process gave up on it)
            return sum(usd for rid, (who, usd, _) in self._held.items() if who == key and rid != besides)
        return float(self._db.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM holds WHERE tenant = ? AND since >= ? AND request_id != ?",
            (key, now - HOLD_S, besides)).fetchone()[0])

    def held(self, tenant: str | None) -> float:
        """USD held for ``tenant``'s calls in flight (see :meth:`hold`), by every process sharing
        a SQLite ledger."""
        with self._lock:
            try:
                return self._held_by(tenant or "", time.time())
            except sqlite3.Error as exc:  # holds that cannot be read hold nothing; the call goes on
                self._write_failed(exc)
                return 0.0

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
        with self._lock:
            if self._db is None:
                return list(self._rows)
            cur = self._db.execute(f"SELECT {', '.join(n for n, _ in _COLUMNS)} FROM calls ORDER BY ts")
            out = []
            for values in cur.fetchall():
                data = {n: (json.loads(v) if n in _JSON_COLS and v is not None else v)
                        for (n, _), v in zip(_COLUMNS, values)}
                data["savings"] = data["savings"] or {}
                data["info"] = data["info"] or {}
                out.append(LedgerRow(**data))
            return out

    def __iter__(self) -> Iterator[LedgerRow]:
        return iter(self.rows())

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return len(self._rows)
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def feedback(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._db is None:
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
        by_plugin: dict[str, float] = defaultdict(float)
        by_target: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for r in rows:
            for plugin, usd in r.savings.items():
                by_plugin[plugin] += usd
            t = by_target[r.served_by]
            t["calls"] += 1
            t["cost_usd"] += r.cost_usd
            t["baseline_cost_usd"] += r.baseline_cost_usd
            t["prompt_tokens"] += r.prompt_tokens
            t["completion_tokens"] += r.completion_tokens
        cost = sum(r.cost_usd for r in rows)
        baseline = sum(r.baseline_cost_usd for r in rows)
        return {
            "calls": len(rows),
            "errors": sum(1 for r in rows if r.error),
            "cost_usd": cost,
            "baseline_cost_usd": baseline,
            "saved_usd": max(0.0, baseline - cost),
            "saved_pct": (100.0 * (baseline - cost) / baseline) if baseline else 0.0,
            "by_plugin": dict(by_plugin),
            "by_target": {k: dict(v) for k, v in by_target.items()},
        }

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows()]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
