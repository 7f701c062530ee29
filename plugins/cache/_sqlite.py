"""SQLiteStore: the embedded, persistent store. Entries are rows (JSON answer, float32 vector);
each process keeps the vectors in memory for search and picks up rows other processes wrote."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._entry import Entry, vector_from_bytes, vector_to_bytes
from ._index import VectorIndex
from ._store import Store, _check_max

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_PATH", "SQLiteStore"]

DEFAULT_PATH = Path(".costmw-cache") / "semantic_cache.db"
_COLUMNS = "key, grp, scope, text, response, vector, created, expires, hits"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, scope TEXT NOT NULL,
    text TEXT NOT NULL, response TEXT NOT NULL, vector BLOB, created REAL NOT NULL, expires REAL,
    last_used REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
"""


class SQLiteStore(Store):
    """A SQLite file shared safely by threads and processes (WAL mode, busy timeout).

    ``max_entries`` bounds the table (least recently used rows go first); expired rows are never
    returned and are swept out as new rows arrive.
    """

    name = "sqlite"

    def __init__(self, path: str | Path = DEFAULT_PATH, *, max_entries: int | None = 100_000,
                 ann: bool | str = "auto", ann_min: int = 20_000, sweep_every: int = 64) -> None:
        self.max_entries = _check_max(max_entries)
        self.path = path if path == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ann, self._ann_min = ann, ann_min
        self._sweep_every = sweep_every
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._groups: dict[str, VectorIndex] = {}
        self._seen = 0
        self._indexed = 0
        self._version = -1
        self._puts = 0
        self._sync()

    # -- keeping the in-memory vectors in step with the table ---------------------------
    def _sync(self) -> None:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._version = version
        total = self._db.execute("SELECT count(*) FROM entries WHERE vector IS NOT NULL").fetchone()[0]
        if total < self._indexed:  # rows were deleted elsewhere: rebuild
            self._groups.clear()
            self._seen = self._indexed = 0
        rows = self._db.execute("SELECT seq, key, grp, vector FROM entries WHERE seq > ? AND vector IS NOT NULL",
                                (self._seen,)).fetchall()
        for seq, key, grp, blob in rows:
            self._index_add(key, grp, vector_from_bytes(blob))
            self._seen = max(self._seen, seq)
        self._seen = max(self._seen, self._db.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()[0])

    def _index_add(self, key: str, group: str, vector: np.ndarray | None) -> None:
        if vector is None:
            return
        index = self._groups.get(group)
        if index is None:
            index = self._groups[group] = VectorIndex(int(vector.shape[-1]), ann=self._ann, ann_min=self._ann_min)
        if key not in index:
            self._indexed += 1
        index.add(key, vector)

    def _index_remove(self, key: str, group: str) -> None:
        index = self._groups.get(group)
        if index is not None and key in index:
            index.remove(key)
            self._indexed -= 1

    # -- the store protocol ----------------------------------------------------------------
    def _row(self, key: str, now: float) -> Entry | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        entry = Entry.from_json(_row_json(row), vector_from_bytes(row[5]))
        if entry.expired(now):
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
            self._index_remove(key, entry.group)
            return None
        return entry

    def get(self, key: str, now: float) -> Entry | None:
        with self._lock:
            return self._row(key, now)

    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        with self._lock:
            self._sync()
            index = self._groups.get(group)
            if index is None:
                return []
            out: list[tuple[Entry, float]] = []
            for key, sim in index.search(vector, k):
                entry = self._row(key, now)
                if entry is None:
                    self._index_remove(key, group)
                else:
                    out.append((entry, sim))
            return out

    def put(self, entry: Entry) -> None:
        blob = None if entry.vector is None else vector_to_bytes(entry.vector)
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO entries ({_COLUMNS}, last_used) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (entry.key, entry.group, entry.scope, entry.text, _dumps(entry.response), blob, entry.created,
                 entry.expires, entry.hits, entry.created))
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

    def touch(self, key: str, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE entries SET last_used = ?, hits = hits + 1 WHERE key = ?", (now, key))

    def delete(self, key: str) -> None:
        with self._lock:
            row = self._db.execute("SELECT grp FROM entries WHERE key = ?", (key,)).fetchone()
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
            if row is not None:
                self._index_remove(key, row[0])

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries")
            self._groups.clear()
            self._seen = self._indexed = 0

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, max_entries={self.max_entries})"


def _dumps(response: dict[str, object]) -> str:
    import json

    return json.dumps(response, ensure_ascii=False, separators=(",", ":"))


def _row_json(row: tuple[object, ...]) -> str:
    import json

    key, grp, scope, text, response, _vector, created, expires, hits = row
    return json.dumps({"v": 1, "key": key, "group": grp, "scope": scope, "text": text,
                       "response": json.loads(str(response)), "created": created, "expires": expires, "hits": hits})
