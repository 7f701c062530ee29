"""SQLiteStore: the embedded, persistent store. Entries are rows (JSON answer, float32 vector);
each process keeps the vectors in memory for search and follows what other processes change:
rows they add (by ``seq``) and rows they delete (a log that a trigger fills), checked only when
``PRAGMA data_version`` says another connection committed.

Lookups read through a connection of their own and never write: in WAL mode a reader does not
wait for writers, so the cache runs lookups on the event loop, without a hop to a worker thread.
Writes (new rows, hit counts, expiry and eviction) go through the writing connection, from a
worker thread.

A file that cannot be used never fails a call: the store raises, the cache steps aside and tries
again later. A file that is not a database or is damaged is moved aside (``*.damaged-<time>``)
and a fresh one made; a file deleted while in use is noticed at the next write and made again;
a directory that cannot be written leaves the store unavailable until it can."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from costmw._ledger_io import has_schema, open_sqlite
from costmw.plugin_api import StoreUnavailable, announce_path, semantic_cache_path

from ._entry import Entry, vector_from_bytes, vector_to_bytes
from ._index import VectorIndex, check_ann
from ._store import Store, _check_max

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SQLiteStore", "StoreUnavailable"]

log = logging.getLogger("costmw.cache")
F = TypeVar("F", bound=Callable[..., Any])

_COLUMNS = "key, grp, scope, text, response, vector, created, expires, hits, reading"
_FOUND_COLUMNS = _COLUMNS.replace("vector", "NULL")  # search results need no vector: the index has it
_SCHEMA = (  # one statement each: they run together in one write transaction (see _make_schema)
    """CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, scope TEXT NOT NULL,
    text TEXT NOT NULL, response TEXT NOT NULL, vector BLOB, created REAL NOT NULL, expires REAL,
    last_used REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0, reading TEXT)""",
    "CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used)",
    "CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires)",
    """CREATE TABLE IF NOT EXISTS deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, grp TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS entries_deleted AFTER DELETE ON entries
    BEGIN INSERT INTO deletions (key, grp) VALUES (old.key, old.grp); END""",
)
_TABLES = {"entries": ("seq", "key", "grp", "scope", "text", "response", "vector", "created", "expires",
                       "last_used", "hits", "reading"),
           "deletions": ("seq", "key", "grp")}
_INDEXES_AND_TRIGGERS = ("entries_last_used", "entries_expires", "entries_deleted")
_OPEN_WAIT_S = 3.0  # how long opening retries a file other processes are opening too; then the cache steps aside
_KEEP_DELETIONS = 50_000  # a process that falls further behind than this reloads its index
_READ_TIMEOUT = 0.25  # seconds a lookup may wait on a busy file (rare in WAL mode); then it fails open
_FLUSH_AFTER = 256  # buffered hits written once this many are waiting ...
_FLUSH_AGE = 2.0  # ... or the oldest has waited this many seconds
_WRITE_TIMEOUT = 1.0  # seconds a write may wait for a file another process holds; then the cache steps aside


def _make_schema(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    if "reading" not in {row[1] for row in db.execute("PRAGMA table_info(entries)")}:
        db.execute("ALTER TABLE entries ADD COLUMN reading TEXT")  # a file from an earlier version


def _has_schema(db: sqlite3.Connection) -> bool:
    return has_schema(db, _TABLES, _INDEXES_AND_TRIGGERS)


def _damaged(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is not a database or is corrupt (not merely locked or read-only)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text
                                                        or "corrupt" in text)


def _guarded(method: F) -> F:
    """Run a store operation on an open file; a damaged file is replaced for the next operation."""

    @functools.wraps(method)
    def run(self: SQLiteStore, *args: Any) -> Any:
        if method.__name__ in _ON_THE_LOOP and self._writer_conn is None:
            return _ON_THE_LOOP[method.__name__]()  # a miss: the next write (in a worker thread) opens the file
        self._ready(opening=method.__name__ not in _ON_THE_LOOP)
        try:
            return method(self, *args)
        except sqlite3.DatabaseError as exc:
            if _damaged(exc):
                self._replace_damaged(exc)
            raise

    return run  # type: ignore[return-value]


# operations the cache runs on the event loop: they never open files; on a closed file they miss
_ON_THE_LOOP: dict[str, Callable[[], Any]] = {"get": lambda: None, "search": list, "touch": lambda: None,
                                              "flush_due": lambda: False}


class SQLiteStore(Store):
    """A SQLite file shared safely by threads and processes (WAL mode, busy timeout).

    ``max_entries`` bounds the table (least recently used rows go first); expired rows are never
    returned and are swept out as new rows arrive. Hits are counted in memory and written in one
    transaction with the next put, or by :meth:`flush` once 256 are waiting or the oldest is 2 s
    old (the cache calls it from a worker thread), so a cache hit never waits for a write.
    """

    name = "sqlite"
    cheap_touch = True
    inline_reads = True

    def __init__(self, path: str | Path | None = None, *, max_entries: int | None = 100_000,
                 ann: bool | str = "auto", ann_min: int = 5_000, sweep_every: int = 64) -> None:
        self.max_entries = _check_max(max_entries)
        check_ann(ann)
        if path is None:  # the default file, in costmw's cache folder
            path = semantic_cache_path()
            announce_path("semantic cache", path)
        self.path = path if path == ":memory:" else Path(path)
        self._ann, self._ann_min = ann, ann_min
        self._sweep_every = sweep_every
        self._lock = threading.RLock()
        self._read_lock = self._lock if self.path == ":memory:" else threading.RLock()
        self._writer_conn: sqlite3.Connection | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._index_lock = threading.Lock()
        self._groups: dict[str, VectorIndex] = {}
        self._seen = 0
        self._deleted = -1  # the last entry of the deletions log applied; -1: none yet (load everything)
        self._indexed = 0
        self._version = -1
        self._puts = 0
        self._touched: dict[str, tuple[float, int]] = {}
        self._touched_since = 0.0
        self._touch_lock = threading.Lock()
        self.faults: dict[str, int] = {"unavailable": 0, "damaged": 0, "deleted": 0}
        try:
            self._open()
        except (OSError, sqlite3.Error) as exc:  # the cache steps aside and tries again later
            self._unavailable(exc)

    # -- the file: opening it, and noticing it was damaged or deleted -----------------------
    def _open(self) -> None:
        """Open (or make) the file and load its vectors; a damaged file is moved aside first."""
        with self._lock, self._read_lock:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = self._connect(_WRITE_TIMEOUT)
            except sqlite3.DatabaseError as exc:
                if not _damaged(exc):
                    raise
                self._move_aside(exc)
                db = self._connect(_WRITE_TIMEOUT)
            reader = db if self.path == ":memory:" else sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=_READ_TIMEOUT)
            self._writer_conn, self._reader_conn = db, reader
            self._file_id = self._identity()
            self._drop_index()
            self._deleted, self._version = -1, -1
            self._sync()

    def _connect(self, timeout: float) -> sqlite3.Connection:
        """Open the file (WAL mode, the schema made or completed), retrying while other processes
        are opening it at the same moment (:func:`costmw._ledger_io.open_sqlite`)."""
        db = open_sqlite(self.path, busy_timeout_s=timeout, setup=_make_schema, ready=_has_schema,
                         wait_s=_OPEN_WAIT_S)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA quick_check(1)").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _identity(self) -> tuple[int, int] | None:
        if not isinstance(self.path, Path):
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _ready(self, opening: bool) -> None:
        """Make sure the file is open and is still the file on disk (``opening``: may open it
        again; operations called on the event loop never do, they fail and the cache steps aside)."""
        if self._writer_conn is not None and (not opening or self._file_id == self._identity()):
            return
        if not opening:
            raise StoreUnavailable(f"the cache file {str(self.path)!r} is not open")
        with self._lock, self._read_lock:
            if self._writer_conn is not None and self._file_id != self._identity():
                self.faults["deleted"] += 1
                log.warning("costmw semantic cache: %r was deleted or replaced while in use; making it again "
                            "(the entries it held are gone)", str(self.path))
                self._close_connections()
            if self._writer_conn is None:
                self._open()

    def _unavailable(self, exc: BaseException) -> None:
        self.faults["unavailable"] += 1
        self._close_connections()
        if self.faults["unavailable"] == 1:
            log.warning("costmw semantic cache: cannot use %r (%s: %s); calls go on without the cache and "
                        "it is tried again later", str(self.path), type(exc).__name__, exc)

    def _replace_damaged(self, exc: BaseException) -> None:
        """Move a file found damaged while in use aside; the next operation makes a fresh one."""
        with self._lock, self._read_lock:
            self._close_connections()
            with contextlib.suppress(OSError):
                self._move_aside(exc)

    def _move_aside(self, exc: BaseException) -> None:
        self.faults["damaged"] += 1
        if not isinstance(self.path, Path):
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{self.path}.damaged-{stamp}{suffix}"))
        log.warning("costmw semantic cache: %r is damaged (%s); moved aside as %s and started afresh",
                    str(self.path), exc, f"{self.path.name}.damaged-{stamp}")

    def _close_connections(self) -> None:
        for conn in {id(c): c for c in (self._reader_conn, self._writer_conn) if c is not None}.values():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._writer_conn = self._reader_conn = None
        self._drop_index()

    @property
    def _db(self) -> sqlite3.Connection:
        """The writing connection (raises when the file is not open)."""
        if self._writer_conn is None:
            raise StoreUnavailable(f"the cache file {str(self.path)!r} is not open")
        return self._writer_conn

    @property
    def _reader(self) -> sqlite3.Connection:
        if self._reader_conn is None:
            raise StoreUnavailable(f"the cache file {str(self.path)!r} is not open")
        return self._reader_conn

    # -- keeping the in-memory vectors in step with the table ---------------------------
    def _sync(self) -> None:
        """Apply what other connections committed since the last look (call with ``_read_lock``
        held): rows they deleted (the ``deletions`` log, filled by a trigger) and rows they added
        (``seq`` past the last seen). This process's own writes count as another connection's."""
        db = self._reader
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._version = version
        first, last = db.execute(
            "SELECT (SELECT min(seq) FROM deletions), "
            "(SELECT seq FROM sqlite_sequence WHERE name = 'deletions')").fetchone()
        last = last or 0
        if (first if first is not None else last + 1) > self._deleted + 1 and last > self._deleted:
            self._drop_index()  # deletions we never saw were pruned from the log: reload
        else:
            for key, grp in db.execute("SELECT key, grp FROM deletions WHERE seq > ?", (self._deleted,)):
                self._index_remove(key, grp)
        self._deleted = last
        rows = db.execute("SELECT seq, key, grp, vector FROM entries WHERE seq > ? AND vector IS NOT NULL",
                          (self._seen,)).fetchall()
        for seq, key, grp, blob in rows:
            self._index_add(key, grp, vector_from_bytes(blob))
            self._seen = max(self._seen, seq)
        self._seen = max(self._seen, db.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0])

    def _drop_index(self) -> None:
        """Forget every vector; the next ``_sync`` loads the table again from its first row."""
        with self._index_lock:
            self._groups.clear()
            self._indexed = 0
        self._seen = 0

    def _index_add(self, key: str, group: str, vector: np.ndarray | None) -> None:
        if vector is None:
            return
        with self._index_lock:
            index = self._groups.get(group)
            if index is None:
                index = self._groups[group] = VectorIndex(int(vector.shape[-1]), ann=self._ann,
                                                          ann_min=self._ann_min)
            if key not in index:
                self._indexed += 1
            index.add(key, vector)

    def _index_remove(self, key: str, group: str) -> None:
        with self._index_lock:
            index = self._groups.get(group)
            if index is not None and key in index:
                index.remove(key)
                self._indexed -= 1

    # -- the store protocol ----------------------------------------------------------------
    @_guarded
    def get(self, key: str, now: float) -> Entry | None:
        """The entry under ``key`` unless it expired (the sweep deletes expired rows later)."""
        with self._read_lock:
            row = self._reader.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
        entry = None if row is None else _entry(row)
        return None if entry is None or entry.expired(now) else entry

    @_guarded
    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        with self._read_lock:
            self._sync()
            index = self._groups.get(group)
            if index is None:
                return []
            found = index.search(vector, k)
            if not found:
                return []
            marks = ",".join("?" * len(found))
            rows = {row[0]: row for row in self._reader.execute(
                f"SELECT {_FOUND_COLUMNS} FROM entries WHERE key IN ({marks})", [key for key, _ in found])}
        out: list[tuple[Entry, float]] = []
        for key, sim in found:
            row = rows.get(key)
            entry = None if row is None else _entry(row)
            if entry is None or entry.expired(now):  # gone, or expired: no longer searched here
                self._index_remove(key, group)
            else:
                out.append((entry, sim))
        return out

    @_guarded
    def put(self, entry: Entry) -> None:
        blob = None if entry.vector is None else vector_to_bytes(entry.vector)
        with self._lock:
            self._flush_touches()
            self._db.execute(
                f"INSERT OR REPLACE INTO entries ({_COLUMNS}, last_used) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (entry.key, entry.group, entry.scope, entry.text, _dumps(entry.response), blob, entry.created,
                 entry.expires, entry.hits, _reading(entry.derived), entry.created))
            self._index_add(entry.key, entry.group, entry.vector)
            self._puts += 1
            small = self.max_entries is not None and self.max_entries <= 1000
            if small or self._puts % self._sweep_every == 0:
                self._sweep(time.time())

    def _sweep(self, now: float) -> None:
        """Delete expired rows, then the least recently used rows past ``max_entries``."""
        doomed = self._db.execute("SELECT key, grp FROM entries WHERE expires IS NOT NULL AND expires <= ?",
                                  (now,)).fetchall()
        if self.max_entries is not None:
            excess = self._db.execute("SELECT count(*) FROM entries").fetchone()[0] - len(doomed) - self.max_entries
            if excess > 0:
                doomed += self._db.execute(
                    "SELECT key, grp FROM entries WHERE expires IS NULL OR expires > ? ORDER BY last_used, seq "
                    "LIMIT ?", (now, excess)).fetchall()
        if doomed:
            self._db.executemany("DELETE FROM entries WHERE key = ?", [(key,) for key, _ in doomed])
            for key, group in doomed:
                self._index_remove(key, group)
        self._db.execute("DELETE FROM deletions WHERE seq <= (SELECT max(seq) FROM deletions) - ?",
                         (_KEEP_DELETIONS,))

    @_guarded
    def touch(self, key: str, now: float) -> None:
        with self._touch_lock:
            last, count = self._touched.get(key, (now, 0))
            if not self._touched:
                self._touched_since = time.monotonic()
            self._touched[key] = (max(last, now), count + 1)

    @_guarded
    def flush_due(self) -> bool:
        with self._touch_lock:
            return bool(self._touched) and (len(self._touched) >= _FLUSH_AFTER
                                            or time.monotonic() - self._touched_since >= _FLUSH_AGE)

    @_guarded
    def flush(self) -> None:
        with self._lock:
            self._flush_touches()

    def _flush_touches(self) -> None:
        """Write the buffered hits (call with ``self._lock`` held)."""
        with self._touch_lock:
            if not self._touched:
                return
            pending, self._touched = self._touched, {}
        with self._transaction():
            self._db.executemany("UPDATE entries SET last_used = max(last_used, ?), hits = hits + ? WHERE key = ?",
                                 [(at, count, key) for key, (at, count) in pending.items()])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @_guarded
    def delete(self, key: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT grp FROM entries WHERE key = ?", (key,)).fetchone()
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
            if row is not None:
                self._index_remove(key, row[0])

    @_guarded
    def clear(self) -> None:
        with self._lock, self._read_lock:
            with self._transaction():
                self._db.execute("DELETE FROM entries")
                self._db.execute("DELETE FROM deletions")  # other processes see a gap in the log and reload
            self._drop_index()

    @_guarded
    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        with self._lock, self._read_lock:
            try:
                if self._writer_conn is not None:
                    self._flush_touches()
            finally:
                self._close_connections()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, max_entries={self.max_entries})"


def _dumps(response: dict[str, object]) -> str:
    import json

    return json.dumps(response, ensure_ascii=False, separators=(",", ":"))


def _entry(row: tuple[Any, ...]) -> Entry:
    """An entry from a row of ``_COLUMNS`` (the answer is JSON; the vector float32 bytes)."""
    import json

    key, grp, scope, text, response, vector, created, expires, hits, reading = row
    answer = json.loads(str(response))
    if not isinstance(answer, dict):
        raise ValueError(f"cache row {key!r} holds no answer object")
    return Entry(key=str(key), group=str(grp), scope=str(scope), text=str(text), response=answer,
                 vector=vector_from_bytes(vector), created=float(created),
                 expires=None if expires is None else float(expires), hits=int(hits),
                 derived=str(reading) if reading else None)  # the entry's derived data, decoded only when needed


def _reading(reading: dict[str, Any] | str | None) -> str | None:
    return reading if reading is None or isinstance(reading, str) else _dumps(reading)
