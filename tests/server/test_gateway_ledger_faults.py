"""The gateway with its ledger in PostgreSQL, and PostgreSQL restarting mid-run: every call is
answered, and every call's row is in the database afterwards, once.

The restart is a TCP proxy between the gateway and the real server, cut (every connection dies,
new ones are closed at once, as while a server restarts) and restored: the shared server other
tests use is never stopped."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from gateway_support import RunningGateway
from tcp_proxy import TcpProxy

from costmw.server import KeyStore, load_gateway
from costmw.testing import FakeOpenAIServer

pytest.importorskip("uvicorn")
psycopg = pytest.importorskip("psycopg")


def test_postgresql_restarting_mid_run_loses_no_call_and_no_row(
        postgres_ledger_url: str, fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    parts = urlsplit(postgres_ledger_url)
    keys = KeyStore(tmp_path / "keys.db")
    secret, _ = keys.create("restart-tenant", budget_total_usd=100.0)  # every call reserves against it
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        gateway = load_gateway({
            "targets": [{"kind": "openai", "model": "gpt-4o-mini", "api_base": fake_openai.url, "retries": 0}],
            "ledger": {"url": proxy.url_for(postgres_ledger_url)},
            "server": {"keys": str(tmp_path / "keys.db")},
        })
        ledger = gateway.chain.ledger
        with RunningGateway(gateway) as running, concurrent.futures.ThreadPoolExecutor(4) as pool:
            def ask(i: int) -> httpx.Response:
                return httpx.post(running.url + "/chat/completions", timeout=60,
                                  headers={"authorization": f"Bearer {secret}"},
                                  json={"model": "gpt-4o-mini", "max_tokens": 20,
                                        "messages": [{"role": "user", "content": f"call {i}"}]})

            answers = list(pool.map(ask, range(20)))
            assert ledger.flush(30)
            proxy.cut()  # the server goes away: open connections die, new ones fail
            answers += list(pool.map(ask, range(20, 50)))
            deadline = time.monotonic() + 20
            while ledger.health.write_errors == 0:
                assert time.monotonic() < deadline, "the outage was never seen by the ledger"
                time.sleep(0.1)
            proxy.restore()  # back up
            answers += list(pool.map(ask, range(50, 70)))
            assert ledger.flush(60), "rows still wait after the database came back"
            metrics = httpx.get(running.url[:-3] + "/metrics", timeout=10).text
        assert [r.status_code for r in answers] == [200] * 70
        ids = [r.headers["x-costmw-request-id"] for r in answers]
        assert len(set(ids)) == 70
    keys.close()
    with psycopg.connect(postgres_ledger_url) as conn:
        rows = conn.execute("SELECT request_id, tenant, status FROM costmw_calls").fetchall()
        holds = conn.execute("SELECT COUNT(*) FROM costmw_holds").fetchone()[0]
    assert sorted(r[0] for r in rows) == sorted(ids)  # every call's row, none twice
    assert {(r[1], r[2]) for r in rows} == {("restart-tenant", "ok")}
    assert holds == 0  # every hold made in the database was replaced by its call's row
    health = ledger.health
    assert health.write_errors >= 1 and health.rows_dropped == 0 and health.rows_lost == 0
    assert "costmw_ledger_write_errors_total" in metrics and "costmw_ledger_rows_dropped_total 0.0" in metrics
