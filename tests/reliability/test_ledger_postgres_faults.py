"""The PostgreSQL ledger while the database cannot be reached: calls go on, rows wait (bounded,
overflow counted and logged) and are written once it is back, reservations fall back to this
process. The outage is a TCP proxy in front of the real server, cut and restored: every
connection dies at once, as in a restart, and no other test's database is touched."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from costmw.adapters import MockTarget
from tcp_proxy import TcpProxy

from costmw import BudgetUnavailable, Chain, ConfigError, Ledger, Request, Response

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def proxy(postgres_ledger_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(postgres_ledger_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as p:
        yield p


def _rows_in_database(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM costmw_calls ORDER BY ts")]


def _row(ledger: Ledger, tenant: str, cost: float, request_id: str | None = None) -> str:
    req = Request.create([{"role": "user", "content": "x"}], "gpt-4o", options={"tenant": tenant})
    if request_id is not None:
        req = req.replace(id=request_id)
    ledger.record(ledger.make_row(req, Response(text="y", cost_usd=cost, served_by="target:t")))
    return req.id


def test_calls_go_on_while_postgresql_is_down_and_their_rows_are_written_when_it_is_back(
        postgres_ledger_url: str, proxy: TcpProxy) -> None:
    ledger = Ledger(proxy.url_for(postgres_ledger_url))
    chain = Chain(targets=[MockTarget()], ledger=ledger)
    try:
        ids = [chain.complete([{"role": "user", "content": f"before {i}"}], model="mock").request_id
               for i in range(3)]
        assert ledger.flush(10) and len(_rows_in_database(postgres_ledger_url)) == 3
        proxy.cut()
        for i in range(20):
            ids.append(chain.complete([{"role": "user", "content": f"during {i}"}], model="mock").request_id)
        assert not ledger.flush(1.0)  # they wait in memory...
        assert ledger.pending_rows() == 20
        deadline = time.monotonic() + 20
        while ledger.health.write_errors == 0:  # the writer's attempt (up to busy_timeout_s) fails
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ledger.pending_rows() == 20 and ledger.health.rows_dropped == 0
        proxy.restore()
        assert ledger.flush(60)  # ...and are written once the database answers again
        assert _rows_in_database(postgres_ledger_url) == ids
        assert len(ledger) == 23 and ledger.health.rows_dropped == 0
    finally:
        chain.close()


def test_a_ledger_opened_while_postgresql_is_down_starts_and_writes_later(
        postgres_ledger_url: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture) -> None:
    proxy.cut()
    with caplog.at_level(logging.WARNING, logger="costmw.ledger"):
        ledger = Ledger(proxy.url_for(postgres_ledger_url), busy_timeout_s=0.5)
    try:
        assert any("cannot be reached" in r.getMessage() for r in caplog.records)
        rid = _row(ledger, "t", 0.1)
        proxy.restore()
        assert ledger.flush(60) and _rows_in_database(postgres_ledger_url) == [rid]
    finally:
        ledger.close()


def test_past_the_bound_the_oldest_rows_are_dropped_counted_logged_and_exported(
        postgres_ledger_url: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from costmw.metrics import Metrics

    ledger = Ledger(proxy.url_for(postgres_ledger_url), max_pending_rows=5)
    metrics = Metrics(prometheus_client.CollectorRegistry())
    metrics.watch_ledger(ledger)
    try:
        proxy.cut()
        with caplog.at_level(logging.WARNING, logger="costmw.ledger"):
            ids = [_row(ledger, "t", 0.01) for _ in range(8)]
        assert ledger.health.rows_dropped == 3
        assert any("rows_dropped" in r.getMessage() for r in caplog.records)
        text = metrics.render()[0].decode()
        assert "costmw_ledger_rows_dropped_total 3.0" in text
        assert "costmw_ledger_pending_rows 5.0" in text
        proxy.restore()
        assert ledger.flush(60)
        assert _rows_in_database(postgres_ledger_url) == ids[3:]  # the newest five
    finally:
        ledger.close()


def test_reservations_fall_back_to_this_process_while_postgresql_is_down(
        postgres_ledger_url: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture) -> None:
    url = proxy.url_for(postgres_ledger_url)
    ledger = Ledger(url, busy_timeout_s=0.5)
    strict = Ledger(url, busy_timeout_s=0.5, on_unavailable="refuse")
    try:
        _row(ledger, "t", 0.5)
        assert ledger.flush(10)
        assert ledger.reserve("first", "t", 0.1, limit_usd=1.0, must_fit=True) is None  # read: 0.5 spent
        _row(ledger, "t", 0.1, request_id="first")
        assert ledger.flush(10)
        proxy.cut()
        with caplog.at_level(logging.WARNING, logger="costmw.ledger"):
            # checked against what this process last read (0.5) plus its rows since (0.1): 0.3 fits
            assert ledger.reserve("during-1", "t", 0.3, limit_usd=1.0, must_fit=True) is None
            # held here: another 0.3 would pass the limit, so it is refused as usual
            assert ledger.reserve("during-2", "t", 0.3, limit_usd=1.0, must_fit=True) == pytest.approx(0.9)
        assert ledger.health.unheld == 1 and ledger.held("t") == pytest.approx(0.3)
        assert any("held in this process only" in r.getMessage() for r in caplog.records)
        # a ledger built to refuse then refuses, and says why
        with pytest.raises(BudgetUnavailable, match="on_unavailable='refuse'"):
            strict.reserve("strict", "t", 0.01, limit_usd=1.0, must_fit=True)
        assert strict.health.refused == 1
        proxy.restore()
        deadline = time.monotonic() + 30
        while True:  # held here while the pool reconnects, then in the database, where every process sees it
            assert ledger.reserve("after", "u", 0.2, limit_usd=1.0, must_fit=True) is None
            with psycopg.connect(postgres_ledger_url) as conn:
                held = conn.execute("SELECT request_id, usd FROM costmw_holds WHERE tenant = 'u'").fetchall()
            if held:
                break
            assert time.monotonic() < deadline, "the database did not come back"
            time.sleep(0.5)
        assert held == [("after", pytest.approx(0.2))] and "after" not in ledger._held
    finally:
        ledger.close()
        strict.close()


def test_rows_still_waiting_at_close_are_spooled_and_written_by_the_next_ledger(
        postgres_ledger_url: str, proxy: TcpProxy, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = Chain.from_config({"targets": [{"kind": "mock"}],
                               "ledger": {"url": proxy.url_for(postgres_ledger_url), "spool": str(spool)}}).ledger
    proxy.cut()  # the process exits while the database is down
    ids = [_row(first, "t", 0.01) for _ in range(5)]
    first.add_feedback(ids[0], True, "kept too")
    first.close()
    assert first.health.rows_spooled == 6 and first.health.rows_lost == 0
    assert len(list(spool.glob("ledger-*.jsonl"))) == 1 and _rows_in_database(postgres_ledger_url) == []
    proxy.restore()
    second = Ledger(postgres_ledger_url, spool=spool)  # the next start, with the same spool
    try:
        assert second.flush(30)
        assert _rows_in_database(postgres_ledger_url) == ids
        assert [f["note"] for f in second.feedback()] == ["kept too"]
        assert list(spool.iterdir()) == []
        assert second.rows()[0].tenant == "t" and second.rows()[0].cost_usd == pytest.approx(0.01)
    finally:
        second.close()
    with pytest.raises(ConfigError, match="a spool is for a postgresql:// ledger"):
        Chain.from_config({"ledger": {"path": str(tmp_path / "l.db"), "spool": str(spool)}})
