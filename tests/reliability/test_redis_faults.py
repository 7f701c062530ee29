"""A Redis cache that is killed, paused or restarted never fails a call and comes back by itself;
an embedder change (another vector size) makes the index again instead of killing the cache.
Each test starts a Redis server of its own on a free port."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from costmw.adapters import MockTarget
from costmw.plugins import SemanticCache
from costmw.plugins.cache import Entry, RedisStore

from costmw import Chain

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


class OwnRedis:
    """A redis-server on a free port, in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                                      "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.signal(signal.SIGCONT)
        server.kill()


def vec(seed: int, dim: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def entry(key: str, vector: np.ndarray) -> Entry:
    return Entry(key=key, group="g", scope="s", text=key, response={"text": key}, vector=vector)


def test_an_embedder_change_makes_the_redis_index_again(own_redis: OwnRedis,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    old = RedisStore(own_redis.url, index="lsh")
    old.put(entry("small", vec(1, 8)))
    assert old.search("g", vec(1, 8), 3, time.time())[0][0].key == "small"
    new = RedisStore(own_redis.url, index="lsh")  # the same prefix, an embedder with bigger vectors
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        new.put(entry("big", vec(2, 16)))
    assert any("making the index again" in r.getMessage() for r in caplog.records)
    assert new.search("g", vec(2, 16), 3, time.time())[0][0].key == "big"  # hits again, at once
    assert old.search("g", vec(2, 16), 3, time.time())[0][0].key == "big"  # other processes follow
    assert new.get("small", time.time()) is not None  # exact-match entries are kept


def test_clear_clears_the_index_schema_too(own_redis: OwnRedis, caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStore(own_redis.url, index="lsh")
    store.put(entry("a", vec(1, 8)))
    store.clear()
    assert store.count() == 0
    with caplog.at_level(logging.WARNING, logger="costmw.cache"):
        store.put(entry("b", vec(2, 16)))
    assert not any("making the index again" in r.getMessage() for r in caplog.records)
    assert store.search("g", vec(2, 16), 3, time.time())[0][0].key == "b"


def _ask(chain: Chain, text: str) -> str:
    return chain.complete([{"role": "user", "content": text}], "m").text


def test_redis_killed_paused_and_restarted_never_fails_a_call(own_redis: OwnRedis) -> None:
    target = MockTarget(lambda r: "answer " + r.last_user_text, name="m")
    cache = SemanticCache(store=RedisStore(own_redis.url, timeout=0.2), embedder=None, retry_after=0.2)
    with Chain([cache], targets=[target]) as chain:
        assert _ask(chain, "q") == "answer q" and _ask(chain, "q") == "answer q"
        assert len(target.calls) == 1
        own_redis.kill()
        assert [_ask(chain, f"k{i}") for i in range(5)] == [f"answer k{i}" for i in range(5)]
        own_redis.start()
        time.sleep(0.3)
        _ask(chain, "back")
        before = len(target.calls)
        assert _ask(chain, "back") == "answer back" and len(target.calls) == before  # cached again
        own_redis.signal(signal.SIGSTOP)
        started = time.perf_counter()
        assert [_ask(chain, f"p{i}") for i in range(3)] == [f"answer p{i}" for i in range(3)]
        assert time.perf_counter() - started < 3.0  # the store's timeout bounds what a pause costs
        own_redis.signal(signal.SIGCONT)
        time.sleep(0.3)
        _ask(chain, "resumed")
        before = len(target.calls)
        assert _ask(chain, "resumed") == "answer resumed" and len(target.calls) == before
        assert cache.stats["errors"] >= 2
