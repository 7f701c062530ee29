"""Virtual API keys for the gateway: each maps to a tenant, with budgets, rate limits and the
models it may use.

A key is shown once, when it is made; the store keeps only its SHA-256 hash (keys are 256-bit
random strings, so a plain hash cannot be reversed by guessing) and its first characters for
display. Keys live in a SQLite file or in PostgreSQL (``postgresql://...``), so every gateway
worker and host that shares the database sees the same keys; lookups are cached for a couple of
seconds, so a revoked key stops working everywhere within that time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from costmw import ConfigError, InvalidRequestError
from costmw._ledger_io import has_schema, open_sqlite

__all__ = ["KeyStore", "VirtualKey"]

KEY_PREFIX = "sk-cmw-"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS costmw_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    shown TEXT NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    revoked DOUBLE PRECISION,
    policy TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class VirtualKey:
    """What a key allows. ``None`` means no limit (budgets, rates) or every model."""

    id: str
    tenant: str
    name: str = ""
    shown: str = ""
    created: float = 0.0
    revoked: float | None = None
    budget_day_usd: float | None = None
    budget_month_usd: float | None = None
    budget_total_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def policy(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items()
               if k in ("budget_day_usd", "budget_month_usd", "budget_total_usd", "rpm", "tpm", "models")}
        if out["models"] is not None:
            out["models"] = list(out["models"])
        return out


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise InvalidRequestError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class KeyStore:
    """Virtual keys in a SQLite file (a path) or PostgreSQL (a ``postgresql://`` URL)."""

    def __init__(self, url: str | Path, *, cache_s: float = 2.0) -> None:
        self.url = str(url)
        self.cache_s = cache_s
        self._pg = self.url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, VirtualKey | None]] = {}
        self._db: Any = None
        self._pool: Any = None
        if self._pg:
            try:
                from psycopg_pool import ConnectionPool
            except ImportError as exc:
                from costmw.plugin_api import missing_extra

                raise missing_extra("psycopg", "server", exc) from exc
            from costmw._ledger_pg import _quiet_pool_log

            _quiet_pool_log()
            self._pool = ConnectionPool(self.url, min_size=1, max_size=4, open=True, name="costmw-keys",
                                        kwargs={"autocommit": True})
            with self._conn() as db:
                db.execute(_SCHEMA)
        else:
            path = Path(self.url)
            if path.is_dir():
                raise ConfigError(f"key store path {path} is a directory; give a file path")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = open_sqlite(path, busy_timeout_s=10, setup=lambda db: db.execute(_SCHEMA),
                                   ready=lambda db: has_schema(db, {"costmw_keys": ["policy"]}))

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if self._pool is not None:
            with self._pool.connection() as conn:
                yield conn
        else:
            with self._lock:
                yield self._db

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    # -- managing keys ---------------------------------------------------------------------
    def create(self, tenant: str, *, name: str = "", budget_day_usd: float | None = None,
               budget_month_usd: float | None = None, budget_total_usd: float | None = None,
               rpm: int | None = None, tpm: int | None = None,
               models: Sequence[str] | None = None) -> tuple[str, VirtualKey]:
        """Make a key for ``tenant``. Returns ``(secret, key)``: the secret is shown only now."""
        if not isinstance(tenant, str) or not tenant.strip():
            raise InvalidRequestError("a key needs a tenant (a non-empty string)")
        for label, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidRequestError(f"{label} must be a positive integer, got {value!r}")
        if models is not None and (isinstance(models, str) or not all(isinstance(m, str) and m for m in models)):
            raise InvalidRequestError("models must be a list of model names")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = VirtualKey(
            id="key_" + secrets.token_hex(6), tenant=tenant.strip(), name=name, shown=secret[:12] + "…",
            created=time.time(),
            budget_day_usd=_positive("budget_day_usd", budget_day_usd),
            budget_month_usd=_positive("budget_month_usd", budget_month_usd),
            budget_total_usd=_positive("budget_total_usd", budget_total_usd),
            rpm=rpm, tpm=tpm, models=tuple(models) if models is not None else None,
        )
        with self._conn() as db:
            db.execute(self._sql("INSERT INTO costmw_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                       (key.id, hash_key(secret), key.shown, key.tenant, key.name, key.created, None,
                        json.dumps(key.policy())))
        return secret, key

    def list(self) -> list[VirtualKey]:
        with self._conn() as db:
            rows = db.execute("SELECT id, shown, tenant, name, created, revoked, policy FROM costmw_keys "
                              "ORDER BY created").fetchall()
        return [self._key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by its id (``key_...``); False when no active key has that id."""
        with self._conn() as db:
            cur = db.execute(self._sql("UPDATE costmw_keys SET revoked = ? WHERE id = ? AND revoked IS NULL"),
                             (time.time(), key_id))
            changed = bool(cur.rowcount > 0)
        with self._lock:
            self._cache.clear()
        return changed

    # -- serving -----------------------------------------------------------------------------
    def lookup(self, secret: str) -> VirtualKey | None:
        """The active key for a secret, or None (unknown or revoked)."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            return None
        digest = hash_key(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        with self._conn() as db:
            row = db.execute(self._sql("SELECT id, shown, tenant, name, created, revoked, policy FROM costmw_keys "
                                       "WHERE hash = ?"), (digest,)).fetchone()
        key = self._key(row) if row is not None else None
        if key is not None and not key.active:
            key = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, key)
        return key

    @staticmethod
    def _key(row: Sequence[Any]) -> VirtualKey:
        policy = json.loads(row[6])
        models = policy.get("models")
        return VirtualKey(id=row[0], shown=row[1], tenant=row[2], name=row[3], created=float(row[4]),
                          revoked=None if row[5] is None else float(row[5]),
                          budget_day_usd=policy.get("budget_day_usd"),
                          budget_month_usd=policy.get("budget_month_usd"),
                          budget_total_usd=policy.get("budget_total_usd"),
                          rpm=policy.get("rpm"), tpm=policy.get("tpm"),
                          models=tuple(models) if models is not None else None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        elif self._db is not None:
            self._db.close()
