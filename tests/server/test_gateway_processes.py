"""Two `costmw serve` processes on different ports sharing one Redis (the cache), one key store and
one ledger (a SQLite file, or PostgreSQL): what one writes, the other serves; a budget holds across
both."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from costmw import Ledger
from costmw.server import KeyStore
from costmw.testing import FakeOpenAIServer

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.redis

REDIS_DB = "redis://127.0.0.1:6379/13"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flush_redis() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_DB, socket_timeout=1).flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not answering on 127.0.0.1:6379 ({exc}); start it (see .ci/run)")


@pytest.fixture(params=["sqlite"])
def two_gateways(request: pytest.FixtureRequest, fake_openai: FakeOpenAIServer,
                 tmp_path: Path) -> Iterator[tuple[list[str], KeyStore, Path, str]]:
    """Two gateways; ``indirect`` parametrisation picks the ledger: "sqlite" (a file both open) or
    "postgresql" (one database, its schema made by ``costmw db upgrade``)."""
    _flush_redis()
    ledger = str(tmp_path / "ledger.db")
    if request.param == "postgresql":
        ledger = request.getfixturevalue("postgres_ledger_url")
    config = {
        "plugins": [{"semantic_cache": {"store": REDIS_DB, "embedder": "hashing"}}],
        "targets": [{"kind": "openai", "model": "gpt-4o-mini", "api_base": fake_openai.url,
                     "api_key": "sk-upstream-abcdefghijklmnopqrstuvwxyz0123", "retries": 0}],
        "ledger": ledger,
        "server": {"keys": str(tmp_path / "keys.db")},
    }
    path = tmp_path / "costmw.json"
    path.write_text(json.dumps(config))
    keys = KeyStore(tmp_path / "keys.db")
    procs, urls = [], []
    for _ in range(2):
        port = _port()
        procs.append(subprocess.Popen([sys.executable, "-m", "costmw.cli", "serve", "--config", str(path),
                                       "--port", str(port)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env={**os.environ, "COSTMW_SERVE_TEST": "1"}))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.time() + 120
        for proc, url in zip(procs, urls):
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"costmw serve exited: {err[-2000:]}")
                if time.time() > deadline:
                    pytest.fail("costmw serve did not start")
                time.sleep(0.2)
        yield urls, keys, tmp_path, ledger
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_an_answer_cached_through_one_gateway_is_served_by_the_other(two_gateways: Any) -> None:
    urls, keys, _, _ = two_gateways
    secret, _ = keys.create("shared-tenant")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "which plan includes SSO?"}]}
    auth = {"authorization": f"Bearer {secret}"}
    first = httpx.post(urls[0] + "/v1/chat/completions", json=body, headers=auth, timeout=60)
    assert first.status_code == 200 and first.headers["x-costmw-served-by"].startswith("target:")
    second = httpx.post(urls[1] + "/v1/chat/completions", json=body, headers=auth, timeout=60)
    assert second.status_code == 200
    assert second.headers["x-costmw-served-by"].startswith("cache:")
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    # another tenant behind the other gateway is not served that answer
    other, _ = keys.create("other-tenant")
    third = httpx.post(urls[1] + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {other}"},
                       timeout=60)
    assert third.headers["x-costmw-served-by"].startswith("target:")


@pytest.mark.parametrize("two_gateways", ["sqlite", "postgresql"], indirect=True)
def test_a_budget_that_fits_ten_passes_exactly_ten_across_both_gateways(
        two_gateways: Any, fake_openai: FakeOpenAIServer) -> None:
    urls, keys, tmp, ledger = two_gateways
    fake_openai.delay = 2.0  # decisions are taken while the passing calls still hold their share
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "budgeted call"}]}
    # what one call reserves: the gateway's own estimate, read from a probe against a roomy budget
    probe_secret, _ = keys.create("probe-tenant")
    from costmw.server import load_gateway

    gateway = load_gateway(tmp / "costmw.json")
    try:
        from costmw.server import VirtualKey
        from costmw.server._openai import parse_chat_body

        _, one_call = gateway._estimate(gateway._request(VirtualKey(id="p", tenant="p"),
                                                         parse_chat_body(json.dumps(body).encode())))
    finally:
        gateway.chain.close()
    assert one_call > 0 and probe_secret
    secret, _ = keys.create("budget-tenant", budget_total_usd=one_call * 10.5)
    body["messages"][0]["content"] = "budgeted call, not cached"

    async def fire() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            rs = await asyncio.gather(*(
                client.post(urls[i % 2] + "/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                            json={**body, "messages": [{"role": "user", "content": f"budgeted call {i}"}]})
                for i in range(100)))
        return [r.status_code for r in rs]

    codes = asyncio.run(fire())
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 90
    reader = Ledger(ledger)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            rows = [r for r in reader.rows() if r.tenant == "budget-tenant"]
            if len(rows) == 10:
                break
            time.sleep(0.2)
        assert len(rows) == 10 and len({r.request_id for r in rows}) == 10
        assert reader.held("budget-tenant") == 0.0  # every hold was replaced by its call's row
    finally:
        reader.close()


def test_calls_go_on_when_redis_is_killed_mid_run(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    import shutil

    server_bin = shutil.which("redis-server")
    if server_bin is None:
        pytest.fail("redis-server is not installed (see .ci/run)")
    port = _port()
    redis_proc = subprocess.Popen([server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("the test's own redis-server did not start")
                time.sleep(0.05)
        from gateway_support import RunningGateway

        from costmw.server import create_app, load_gateway

        gateway = load_gateway({
            "plugins": [{"semantic_cache": {"store": f"redis://127.0.0.1:{port}/0", "embedder": "hashing"}}],
            "targets": [{"kind": "openai", "model": "gpt-4o-mini", "api_base": fake_openai.url, "retries": 0}],
            "ledger": str(tmp_path / "ledger.db"),
            "server": {"allow_anonymous": True, "redis_url": f"redis://127.0.0.1:{port}/1"},
        })
        assert create_app  # the app is built by RunningGateway
        with RunningGateway(gateway) as running:
            def ask(i: int) -> httpx.Response:
                return httpx.post(running.url + "/chat/completions", timeout=30, json={
                    "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i % 5}"}]})

            before = [ask(i) for i in range(10)]
            assert all(r.status_code == 200 for r in before)
            assert any(r.headers["x-costmw-served-by"].startswith("cache:") for r in before)
            redis_proc.kill()
            redis_proc.wait(timeout=10)
            after = [ask(i) for i in range(10, 30)]
        assert [r.status_code for r in after] == [200] * 20
        assert all(r.json()["choices"][0]["message"]["content"].startswith("echo: question") for r in after)
    finally:
        if redis_proc.poll() is None:
            redis_proc.kill()
