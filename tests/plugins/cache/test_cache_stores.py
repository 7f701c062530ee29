"""Every store keeps entries, finds neighbours, expires and evicts the same way."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from costmw.plugins.cache import Entry, MemoryStore, SQLiteStore, Store


def unit(seed: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, noise: float, seed: int = 99) -> np.ndarray:
    w = v + noise * unit(seed, v.shape[0])
    return (w / np.linalg.norm(w)).astype(np.float32)


def make(key: str, vector: np.ndarray | None = None, group: str = "g", expires: float | None = None) -> Entry:
    return Entry(key=key, group=group, scope="s", text=f"question {key}", response={"text": f"answer {key}"},
                 vector=vector, expires=expires)


def test_put_get_search_delete(any_store: Store) -> None:
    now = time.time()
    vectors = {f"k{i}": unit(i) for i in range(20)}
    for k, v in vectors.items():
        any_store.put(make(k, v))
    any_store.put(make("other-group", vectors["k3"], group="h"))
    got = any_store.get("k3", now)
    assert got is not None and got.response == {"text": "answer k3"} and got.text == "question k3"
    assert any_store.get("missing", now) is None
    found = any_store.search("g", near(vectors["k3"], 0.1), 3, now)
    assert found[0][0].key == "k3" and found[0][1] > 0.9
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert all(e.group == "g" for e, _ in found)
    assert [e.key for e, _ in any_store.search("h", vectors["k3"], 3, now)] == ["other-group"]
    any_store.delete("k3")
    assert any_store.get("k3", now) is None
    assert all(e.key != "k3" for e, _ in any_store.search("g", vectors["k3"], 5, now))
    assert any_store.count() == 20
    any_store.clear()
    assert any_store.count() == 0 and any_store.search("g", vectors["k1"], 3, now) == []


def test_expired_entries_are_never_returned(any_store: Store) -> None:
    v = unit(1)
    any_store.put(make("old", v, expires=time.time() + 0.3))
    any_store.put(make("fresh", near(v, 0.05)))
    assert any_store.get("old", time.time()) is not None
    time.sleep(0.4)
    now = time.time()
    assert any_store.get("old", now) is None
    assert [e.key for e, _ in any_store.search("g", v, 5, now)] == ["fresh"]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_least_recently_used_entries_are_evicted(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "memory":
        store: Store = MemoryStore(max_entries=3)
    elif kind == "sqlite":
        store = SQLiteStore(tmp_path / "c.db", max_entries=3)
    else:
        from costmw.plugins.cache import RedisStore

        store = RedisStore(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"),
                           max_entries=3)
    for i, k in enumerate(["a", "b", "c"]):
        store.put(make(k, unit(i)))
        time.sleep(0.01)
    store.touch("a", time.time())  # a is now the most recently used
    store.put(make("d", unit(4)))
    now = time.time()
    assert store.get("b", now) is None
    assert {k for k in "acd" if store.get(k, now) is not None} == set("acd")
    assert store.count() == 3
    store.close()


def test_sqlite_rows_are_json_not_pickle(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    store.put(make("k", unit(0)))
    store.close()
    row = sqlite3.connect(tmp_path / "c.db").execute("SELECT response, vector FROM entries").fetchone()
    assert json.loads(row[0]) == {"text": "answer k"}
    assert len(row[1]) == 32 * 4 and not row[1].startswith(b"\x80")  # raw float32, no pickle header


def test_sqlite_store_sees_rows_written_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    v = unit(5)
    assert reader.search("g", v, 1, time.time()) == []
    writer.put(make("k", v))
    found = reader.search("g", v, 1, time.time())
    assert [e.key for e, _ in found] == ["k"]
    writer.delete("k")
    assert reader.search("g", v, 1, time.time()) == []
    reader.close()
    writer.close()


def test_sqlite_concurrent_writers_threads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db", max_entries=None)
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for i in range(50):
                store.put(make(f"t{t}-{i}", unit(t * 100 + i)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert store.count() == 200
    assert store.search("g", unit(205), 1, time.time())[0][0].key == "t2-5"
    store.close()


WRITER = """
import sys, numpy as np
from costmw.plugins.cache import Entry, SQLiteStore
store = SQLiteStore(sys.argv[1], max_entries=None)
p = int(sys.argv[2])
for i in range(40):
    v = np.random.default_rng(p * 1000 + i).standard_normal(32).astype(np.float32)
    entry = Entry(key=f"p{p}-{i}", group="g", scope="s", text="q", response={"text": "a"})
    entry.vector = v / np.linalg.norm(v)
    store.put(entry)
store.close()
"""


def test_sqlite_concurrent_writers_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(p)]) for p in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    store = SQLiteStore(path, max_entries=None)
    assert store.count() == 120
    v = np.random.default_rng(2 * 1000 + 7).standard_normal(32).astype(np.float32)
    assert store.search("g", v / np.linalg.norm(v), 1, time.time())[0][0].key == "p2-7"
    store.close()


def test_ann_index_finds_the_same_neighbours_as_exact_search() -> None:
    from costmw.plugins.cache._index import VectorIndex

    exact, ann = VectorIndex(32, ann=False), VectorIndex(32, ann=True, ann_min=50)
    for i in range(300):
        exact.add(f"k{i}", unit(i))
        ann.add(f"k{i}", unit(i))
    assert ann.uses_ann and not exact.uses_ann
    for i in (3, 150, 299):
        query = near(unit(i), 0.2, seed=i + 1000)
        assert ann.search(query, 3)[0] == pytest.approx(exact.search(query, 3)[0])
        assert ann.search(query, 1)[0][0] == f"k{i}"
    ann.remove("k150")
    assert all(k != "k150" for k, _ in ann.search(unit(150), 5))
    ann.add("k3", unit(9999))  # replacing a vector moves the key
    assert ann.search(unit(9999), 1)[0][0] == "k3"
    assert len(ann) == 299


def test_lsh_finds_neighbours_above_the_default_threshold() -> None:
    """Redis's semantic index: a vector at cosine >= 0.8 from a stored one shares a probed bucket."""
    from costmw.plugins.cache._lsh import HyperplaneLSH

    lsh = HyperplaneLSH(384)
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(300):
        a = rng.standard_normal(384)
        a /= np.linalg.norm(a)
        noise = rng.standard_normal(384)
        noise -= noise @ a * a
        noise /= np.linalg.norm(noise)
        b = 0.8 * a + 0.6 * noise  # cosine exactly 0.8
        filed = set(enumerate(lsh.buckets(a)))
        found += bool(filed & set(lsh.probes(b)))
    assert found / 300 >= 0.97
    assert HyperplaneLSH(384).buckets(a) == lsh.buckets(a)  # every process files alike


def test_sqlite_hits_are_buffered_and_written_once(tmp_path: Path) -> None:
    path = tmp_path / "hits.db"
    store = SQLiteStore(path, max_entries=None)
    store.put(make("a", unit(1)))
    for _ in range(3):
        store.touch("a", time.time())
    other = sqlite3.connect(path)
    assert other.execute("SELECT hits FROM entries WHERE key = 'a'").fetchone() == (0,)  # not written yet
    store.put(make("b", unit(2)))  # the next write carries them
    assert other.execute("SELECT hits FROM entries WHERE key = 'a'").fetchone() == (3,)
    store.touch("b", time.time())
    store.close()  # and closing writes what is left
    assert other.execute("SELECT hits FROM entries WHERE key = 'b'").fetchone() == (1,)
    other.close()


def test_sqlite_search_reads_a_row_replaced_by_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "replaced.db"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    writer.put(make("k", unit(1)))
    assert reader.search("g", unit(1), 1, time.time())[0][0].response == {"text": "answer k"}
    replaced = make("k", unit(2))
    replaced.response = {"text": "a new answer"}
    writer.put(replaced)
    found = reader.search("g", unit(2), 1, time.time())
    assert found[0][0].response == {"text": "a new answer"} and found[0][1] == pytest.approx(1.0, abs=1e-5)
    reader.close()
    writer.close()


def test_sqlite_readers_follow_deletions_and_clears_elsewhere(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from costmw.plugins.cache import _sqlite

    path = tmp_path / "follow.db"
    reader, writer = SQLiteStore(path, max_entries=None), SQLiteStore(path, max_entries=3)
    for i in range(3):
        writer.put(make(f"k{i}", unit(i)))
    assert [e.key for e, _ in reader.search("g", unit(0), 1, time.time())] == ["k0"]
    writer.put(make("k3", unit(3)))  # evicts k0, the least recently used
    assert "k0" not in [e.key for e, _ in reader.search("g", unit(0), 3, time.time())]
    assert reader._indexed == 3  # the eviction came through the deletions log, not a reload
    monkeypatch.setattr(_sqlite, "_KEEP_DELETIONS", 0)  # a log pruned past what the reader saw...
    for i in range(4, 8):
        writer.put(make(f"k{i}", unit(i)))
    found = [e.key for e, _ in reader.search("g", unit(7), 5, time.time())]
    assert found[0] == "k7" and set(found) == {"k5", "k6", "k7"}  # ...makes it reload, and stay right
    writer.clear()
    assert reader.search("g", unit(7), 5, time.time()) == []
    reader.close()
    writer.close()


def test_sqlite_lookups_do_not_wait_for_a_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costmw.plugins.cache import _sqlite

    path = tmp_path / "busy.db"
    store = SQLiteStore(path, max_entries=None)
    store.put(make("a", unit(1)))
    store.put(make("gone", near(unit(1), 0.1), expires=time.time() - 1))  # an expired neighbour
    monkeypatch.setattr(_sqlite, "_FLUSH_AGE", 0.0)
    store.touch("a", time.time())  # and hits waiting to be written
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
    blocker.execute("INSERT INTO entries (key, grp, scope, text, response, created, last_used) "
                    "VALUES ('x', 'g', 's', 't', '{}', 0, 0)")
    started = time.perf_counter()
    got, found = store.get("a", time.time()), store.search("g", unit(1), 1, time.time())
    assert time.perf_counter() - started < 0.2  # ...and lookups go on without waiting for it
    assert got is not None and [e.key for e, _ in found] == ["a"]
    blocker.execute("ROLLBACK")
    blocker.close()
    store.close()


def test_sqlite_lookups_never_write(tmp_path: Path) -> None:
    path = tmp_path / "readonly.db"
    store = SQLiteStore(path, max_entries=None)
    store.put(make("old", unit(1), expires=time.time() - 1))
    store.put(make("new", unit(2)))
    store.touch("new", time.time())
    changes = store._db.total_changes
    assert store.get("old", time.time()) is None and store.search("g", unit(1), 2, time.time())[0][0].key == "new"
    assert store._db.total_changes == changes and store._reader.total_changes == 0
    assert store.flush_due() is False  # one fresh hit: not yet worth a write
    store.flush()
    assert sqlite3.connect(path).execute("SELECT hits FROM entries WHERE key = 'new'").fetchone() == (1,)
    store.close()


def test_sqlite_flush_is_due_after_many_hits_or_an_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costmw.plugins.cache import _sqlite

    store = SQLiteStore(tmp_path / "due.db", max_entries=None)
    store.put(make("a", unit(1)))
    monkeypatch.setattr(_sqlite, "_FLUSH_AFTER", 3)
    for _ in range(2):
        store.touch("a", time.time())
    assert not store.flush_due()  # one key touched twice
    for key in ("b", "c"):
        store.touch(key, time.time())
    assert store.flush_due()  # three keys waiting
    store.flush()
    assert not store.flush_due()
    store.touch("a", time.time())
    monkeypatch.setattr(_sqlite, "_FLUSH_AGE", 0.0)
    assert store.flush_due()  # the oldest waiting hit is old enough
    store.close()


def test_sqlite_keeps_derived_data_and_opens_older_files(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # the table as an earlier version made it, with one row
    old.executescript("""
        CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, grp TEXT NOT NULL,
            scope TEXT NOT NULL, text TEXT NOT NULL, response TEXT NOT NULL, vector BLOB, created REAL NOT NULL,
            expires REAL, last_used REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0);""")
    old.execute("INSERT INTO entries (key, grp, scope, text, response, vector, created, last_used) "
                "VALUES ('k0', 'g', 's', 'question k0', '{\"text\": \"answer k0\"}', ?, 0, 0)",
                (unit(0).astype("<f4").tobytes(),))
    old.commit()
    old.close()
    store = SQLiteStore(path, max_entries=None)
    entry = make("k1", unit(1))
    entry.derived = {"version": "norm/1", "text": "question"}
    store.put(entry)
    found = {e.key: e for e, _ in store.search("g", unit(0), 2, time.time())}
    assert found["k0"].derived_data() is None and found["k0"].response == {"text": "answer k0"}
    assert found["k1"].derived_data() == {"version": "norm/1", "text": "question"}
    store.close()
