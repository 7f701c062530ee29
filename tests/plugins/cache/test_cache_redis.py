"""RedisStore against real Redis: processes share one cache; a server that stops mid-run never
fails a call, and the cache works again once the server is back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cache_helpers import MODEL, make_cache, make_chain, user
from costmw.plugins.cache import RedisStore

pytestmark = pytest.mark.redis

CHILD = """
import sys
from costmw import Chain
from costmw.adapters import MockTarget
from costmw.embeddings import HashingEmbedder
from costmw.plugins.cache import RedisStore, SemanticCache
store = RedisStore(sys.argv[1], prefix=sys.argv[2])
cache = SemanticCache(store=store, embedder=HashingEmbedder(256), threshold=0.8)
chain = Chain([cache], [MockTarget(lambda r: "Paris, from the other process", model="gpt-4o-mini")])
for tenant in ("acme", "globex"):
    response = chain.complete([{"role": "user", "content": "What is the capital of France?"}], model="gpt-4o-mini",
                              options={"tenant": tenant})
    assert response.served_by == "target:mock", response.served_by
chain.close()
"""


def test_two_processes_share_one_cache(redis_url: str, redis_prefix: str) -> None:
    subprocess.run([sys.executable, "-c", CHILD, redis_url, redis_prefix], check=True, timeout=120)
    cache = make_cache(store=RedisStore(redis_url, prefix=redis_prefix))
    chain, mock = make_chain(cache)
    exact = chain.complete(user("What is the capital of France?"), model=MODEL, options={"tenant": "acme"})
    near = chain.complete(user("what is the capital of france"), model=MODEL, options={"tenant": "globex"})
    other_tenant = chain.complete(user("What is the capital of France?"), model=MODEL, options={"tenant": "initech"})
    assert (exact.served_by, near.served_by) == ("cache:exact", "cache:semantic")
    assert exact.text == near.text == "Paris, from the other process"
    assert other_tenant.served_by == "target:mock"
    assert len(mock.calls) == 1
    chain.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed"
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the throwaway redis-server did not start")


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A throwaway Redis on a free port (never the shared one at 6379), stopped afterwards."""
    port = _free_port()
    procs = [_start_redis(port)]
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_redis_stopped_mid_run_never_fails_a_call(own_redis: tuple[int, list[subprocess.Popen[bytes]]]) -> None:
    port, procs = own_redis
    cache = make_cache(store=RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.3), retry_after=0.2)
    chain, _mock = make_chain(cache)
    q = user("How do I reset my password?")
    assert chain.complete(q, model=MODEL).served_by == "target:mock"
    assert chain.complete(q, model=MODEL).served_by == "cache:exact"

    procs[0].terminate()
    procs[0].wait(timeout=10)
    started = time.monotonic()
    for _ in range(5):
        response = chain.complete(q, model=MODEL)
        assert response.served_by == "target:mock" and response.text
        time.sleep(0.05)
    assert time.monotonic() - started < 5
    assert cache.stats["errors"] >= 1

    procs.append(_start_redis(port))
    time.sleep(0.3)  # past retry_after: the cache tries the store again
    assert chain.complete(q, model=MODEL).served_by == "target:mock"  # the restarted server is empty
    assert chain.complete(q, model=MODEL).served_by == "cache:exact"
    assert chain.complete(user("how do i reset my password"), model=MODEL).served_by == "cache:semantic"
    chain.close()
