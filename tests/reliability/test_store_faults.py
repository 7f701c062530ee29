"""A cache file that is damaged, deleted, unwritable or locked never fails a call: the cache
steps aside, logs, counts, and comes back by itself."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from costmw.adapters import MockTarget
from costmw.plugins import SemanticCache
from costmw.plugins.cache import Entry, SQLiteStore

from costmw import Chain


def entry(key: str) -> Entry:
    vector = np.ones(8, dtype=np.float32) / np.sqrt(8)
    return Entry(key=key, group="g", scope="s", text=f"question {key}", response={"text": f"answer {key}"},
                 vector=vector)


def cached_chain(path: Path, retry_after: float = 0.0) -> tuple[Chain, MockTarget, SemanticCache]:
    target = MockTarget(lambda r: "answer to " + r.last_user_text, name="m")
    cache = SemanticCache(store=SQLiteStore(path), embedder=None, retry_after=retry_after)
    return Chain([cache], targets=[target]), target, cache


def ask(chain: Chain, text: str) -> str:
    return chain.complete([{"role": "user", "content": text}], "m").text


def test_a_file_that_is_not_a_database_is_moved_aside_and_made_again(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is not a database " * 200)
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        chain, target, _ = cached_chain(path)
    assert ask(chain, "q") == "answer to q" and ask(chain, "q") == "answer to q"
    assert len(target.calls) == 1  # the fresh file caches again
    assert any(p.name.startswith("cache.db.damaged-") for p in tmp_path.iterdir())
    assert any("damaged" in r.getMessage() for r in caplog.records)
    chain.close()


def test_a_cache_directory_that_cannot_be_made_never_fails_a_call(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        chain, target, cache = cached_chain(blocker / "cache.db")
        answers = [ask(chain, "q") for _ in range(3)]
    assert answers == ["answer to q"] * 3 and len(target.calls) == 3
    assert cache.stats["errors"] >= 1
    assert sum("cannot use" in r.getMessage() for r in caplog.records) == 1  # logged once
    chain.close()


_READ_ONLY = """
import os, sys, logging
from costmw import Chain
from costmw.adapters import MockTarget
from costmw.plugins import SemanticCache
from costmw.plugins.cache import SQLiteStore
logging.basicConfig(level=logging.WARNING)
warm = Chain([SemanticCache(store="memory", embedder=None)], targets=[MockTarget(name="m")])
warm.complete([{"role": "user", "content": "warm"}], "m")  # every module loaded before losing root
os.setgid(65534); os.setuid(65534)
os.chdir(sys.argv[1])
chain = Chain([SemanticCache(store=SQLiteStore(".costmw-cache/cache.db"), embedder=None)],
              targets=[MockTarget(name="m")])
print([chain.complete([{"role": "user", "content": "q"}], "m").text for _ in range(2)])
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to run as another user")
def test_a_read_only_working_directory_never_fails_a_call() -> None:
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="costmw-ro-"))  # outside pytest's private (0700) folder
    workdir = top / "ro"
    workdir.mkdir()
    os.chmod(top, 0o755)
    os.chmod(workdir, 0o555)
    try:
        out = subprocess.run([sys.executable, "-c", _READ_ONLY, str(workdir)], capture_output=True, text=True,
                             timeout=120)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['q', 'q']"
    assert "cannot use" in out.stderr


def test_a_file_deleted_while_in_use_is_noticed_logged_and_made_again(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cache.db"
    store = SQLiteStore(path)
    store.put(entry("a"))
    for part in tmp_path.iterdir():
        part.unlink()
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        store.put(entry("b"))
    assert path.exists() and store.faults["deleted"] == 1
    assert any("deleted" in r.getMessage() for r in caplog.records)
    assert SQLiteStore(path).get("b", time.time()) is not None  # the new entry is in the file on disk
    store.close()


def test_a_damaged_wal_recovers_instead_of_staying_degraded(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    chain, target, _ = cached_chain(path)
    for i in range(30):
        ask(chain, f"q{i}")
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size
    with open(wal, "r+b") as f:
        f.seek(32)
        f.write(os.urandom(size - 32))
    answers = [ask(chain, f"r{i % 3}") for i in range(12)]
    assert answers == [f"answer to r{i % 3}" for i in range(12)]  # no call fails
    before = len(target.calls)
    assert ask(chain, "r1") == "answer to r1" and len(target.calls) == before  # cached again: recovered
    chain.close()


_HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_a_cache_file_locked_by_another_process_never_fails_or_stalls_calls(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    chain, target, _ = cached_chain(path, retry_after=1.5)
    ask(chain, "warm")
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), "2.5"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    started = time.perf_counter()
    answers = [ask(chain, f"l{i}") for i in range(3)]
    assert answers == [f"answer to l{i}" for i in range(3)]
    assert time.perf_counter() - started < 2.4  # the cache gave up on the file quickly
    proc.wait(10)
    time.sleep(1.6)  # the cache tries the file again after retry_after
    ask(chain, "after")
    assert ask(chain, "after") == "answer to after" and target.calls[-1].last_user_text == "after"
    chain.close()


_OPEN_CACHE_AND_PUT = """
import sys, time
import numpy as np
from costmw.plugins.cache import Entry, SQLiteStore
start = float(sys.argv[2])
while time.time() < start:
    pass
store = SQLiteStore(sys.argv[1])
store.put(Entry(key=sys.argv[3], group="g", scope="s", text="t", response={"text": "r"},
                vector=np.ones(4, dtype=np.float32) / 2, created=time.time()))
print(store.faults["unavailable"], flush=True)
"""


def test_processes_that_open_a_new_cache_file_at_the_same_moment_all_use_it(tmp_path: Path) -> None:
    # gateway workers that start together on one cache file: switching a new file to WAL answers
    # "database is locked" at once to all but one, so opening tries again rather than stepping aside
    path = tmp_path / "cache.db"
    start = time.time() + 3.0  # every process is started and spinning before this moment
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_CACHE_AND_PUT, str(path), str(start), f"k{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [(p.returncode, out.strip()) for p, (out, _) in zip(procs, results, strict=True)] == [(0, "0")] * 6, \
        [err[-600:] for _, err in results]
    store = SQLiteStore(path)
    assert sorted(e.key for e, _ in store.search("g", np.ones(4, dtype=np.float32) / 2, 10, time.time())) == \
        [f"k{i}" for i in range(6)]
