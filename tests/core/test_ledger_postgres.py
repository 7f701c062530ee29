"""The PostgreSQL ledger against the real server (127.0.0.1:5432, a schema per test): rows, report
queries, budgets, reservations across connections, migrations, and the errors that say what to do."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from costmw.adapters import MockTarget
from typer.testing import CliRunner

from costmw import Chain, ConfigError, Ledger, Request, Response, Saving, Usage
from costmw._ledger_pg import SCHEMA_VERSION, PostgresLedger, _write_batch, display_url, upgrade
from costmw.cli import app

psycopg = pytest.importorskip("psycopg")


def _record(ledger: Ledger, tenant: str | None, cost: float, text: str = "x", **options: object) -> Request:
    req = Request.create([{"role": "user", "content": text}], "gpt-4o",
                         options={"tenant": tenant, **options} if tenant else dict(options),
                         metadata={"team": "search"})
    resp = Response(text="y\x00z", usage=Usage(3, 4, cached_tokens=1), cost_usd=cost, baseline_cost_usd=cost * 2,
                    served_by="target:t" if cost else "cache:exact", savings=[Saving("p", cost)],
                    info={"note": "n"})
    ledger.record(ledger.make_row(req, resp))
    return req


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_postgresql_url_opens_the_postgresql_ledger_and_an_unknown_scheme_is_refused(
        postgres_ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(postgres_ledger_url)
    try:
        assert isinstance(ledger, PostgresLedger) and isinstance(ledger, Ledger)
        assert ledger.on_unavailable == "allow"  # a database that is down never fails a call by default
    finally:
        ledger.close()
    with pytest.raises(ConfigError, match="unknown ledger URL scheme 'mysql'"):
        Ledger("mysql://u@h/db")
    with pytest.raises(ConfigError, match="ledger: unknown ledger URL scheme 'redis'"):
        Chain.from_config({"ledger": "redis://127.0.0.1:6379/0"})
    assert type(Ledger(tmp_path / "l.db")) is Ledger and Ledger().path is None
    with pytest.raises(ConfigError, match="are for a postgresql:// ledger"):
        Ledger(tmp_path / "l.db", spool=tmp_path / "spool")


def test_a_database_without_the_schema_says_to_run_db_upgrade(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match=r"costmw db upgrade"):
        Ledger(postgres_url)
    with pytest.raises(ConfigError, match=r"costmw db upgrade"):
        Chain.from_config({"ledger": {"url": postgres_url}})


def test_migrations_are_versioned_and_idempotent_also_when_run_at_once(postgres_url: str) -> None:
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda: results.append(upgrade(postgres_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], [], [], list(range(1, SCHEMA_VERSION + 1))]
    assert upgrade(postgres_url) == []
    with psycopg.connect(postgres_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM costmw_migrations ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade", "--url", postgres_url])
    assert result.exit_code == 0, result.output
    assert f"schema version {SCHEMA_VERSION} (already up to date)" in result.output
    result = runner.invoke(app, ["db", "version", "--url", postgres_url])
    assert result.exit_code == 0 and "up to date" in result.output, result.output


def test_db_upgrade_reads_the_ledger_from_a_config_and_never_prints_the_password(
        postgres_url: str, tmp_path: Path) -> None:
    config = tmp_path / "costmw.yaml"
    config.write_text(f"ledger: {{url: '{postgres_url}'}}\n")
    result = CliRunner().invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"applied migrations {list(range(1, SCHEMA_VERSION + 1))}" in result.output
    assert Ledger(postgres_url).summary()["calls"] == 0
    assert display_url("postgresql://app:s3cret@db.example:6432/costmw?password=s3cret") == \
        "postgresql://app@db.example:6432/costmw"
    bad = CliRunner().invoke(app, ["db", "upgrade", "--url", "postgresql://app:s3cret@127.0.0.1:1/none"])
    assert bad.exit_code != 0 and "s3cret" not in bad.output and "cannot connect" in bad.output


def test_rows_round_trip_and_report_queries_match_the_in_memory_ledger(postgres_ledger_url: str) -> None:
    pg, memory = Ledger(postgres_ledger_url, store_text=True), Ledger(store_text=True)
    try:
        for i, (tenant, cost) in enumerate([("a", 0.01), ("b", 0.02), (None, 0.0), ("a", 0.03)]):
            for ledger in (pg, memory):
                _record(ledger, tenant, cost, text=f"question {i} with a NUL \x00 and sk-abcdefghijklmnopqrstuvwx",
                        tags=["t1", "t0"])
        assert pg.flush(10)
        again = Ledger(postgres_ledger_url)  # another process reading the same database
        try:
            rows = again.rows()
            assert len(again) == 4 and [r.tenant for r in rows] == ["a", "b", None, "a"]
            first = rows[0]
            assert first.savings == {"p": 0.01} and first.tags == ["t0", "t1"]
            assert first.info["metadata"] == {"team": "search"} and first.info["note"] == "n"
            assert first.cached_tokens == 1 and first.status == "ok"
            assert first.prompt is not None and "sk-abc" not in json.dumps(first.prompt)
            assert "with a NUL \x00 and" in first.prompt[0]["content"]  # JSON text keeps it escaped
            assert first.answer == "y\ufffdz"  # a text column cannot hold NUL: it becomes U+FFFD
            mine, theirs = memory.summary(), again.summary()
            assert theirs["calls"] == mine["calls"] == 4
            for key in ("cost_usd", "baseline_cost_usd", "saved_usd", "saved_pct", "cached_tokens"):
                assert theirs[key] == pytest.approx(mine[key])
            assert theirs["by_plugin"] == pytest.approx(mine["by_plugin"])
            assert set(theirs["by_target"]) == {"target:t", "cache:exact"}
            for served, numbers in mine["by_target"].items():
                assert theirs["by_target"][served] == pytest.approx(numbers)
            assert again.spend("a") == pytest.approx(0.04) and again.spend("b") == pytest.approx(0.02)
            assert again.spend("a", since=time.time() + 5) == 0.0
            assert again.spend(None) == 0.0
        finally:
            again.close()
    finally:
        pg.close()


def test_reads_count_rows_that_still_wait_for_the_database(postgres_ledger_url: str) -> None:
    ledger = Ledger(postgres_ledger_url)
    try:
        with ledger._lock:  # the writer cannot take a batch while the lock is held
            _record(ledger, "w", 0.5)
            assert ledger.pending_rows() == 1
            assert _count(postgres_ledger_url, "costmw_calls") == 0
        assert len(ledger) == 1 and ledger.spend("w") == pytest.approx(0.5)
        assert ledger.summary()["cost_usd"] == pytest.approx(0.5)
        assert ledger.flush(10) and _count(postgres_ledger_url, "costmw_calls") == 1
        assert len(ledger) == 1  # counted once, now from the database
    finally:
        ledger.close()


def test_a_batch_written_again_after_a_lost_commit_adds_no_row(postgres_ledger_url: str) -> None:
    ledger = Ledger(postgres_ledger_url)
    try:
        req = Request.create([{"role": "user", "content": "x"}], "gpt-4o")
        row = ledger.make_row(req, Response(text="y", cost_usd=0.1, served_by="target:t"))
        assert isinstance(ledger, PostgresLedger)
        with ledger._pg_pool.connection() as conn:
            _write_batch(conn, [row])
            _write_batch(conn, [row])  # the writer's retry when the first commit's answer was lost
        assert _count(postgres_ledger_url, "costmw_calls") == 1
    finally:
        ledger.close()


def test_feedback_is_kept(postgres_ledger_url: str) -> None:
    ledger = Ledger(postgres_ledger_url)
    try:
        ledger.add_feedback("req-1", True, "right")
        ledger.add_feedback("req-2", False)
        assert ledger.flush(10)
        assert [(f["request_id"], f["good"], f["note"]) for f in Ledger(postgres_ledger_url).feedback()] == [
            ("req-1", True, "right"), ("req-2", False, "")]
    finally:
        ledger.close()


def test_a_reservation_holds_until_its_row_replaces_it_and_other_processes_see_it(postgres_ledger_url: str) -> None:
    one, other = Ledger(postgres_ledger_url), Ledger(postgres_ledger_url)
    try:
        assert one.reserve("call-1", "t", 0.6, limit_usd=1.0, must_fit=True) is None
        assert other.held("t") == pytest.approx(0.6)  # a second process sees the hold
        # the second process cannot fit another 0.6 under the 1.0 limit; it is told what is spent or held
        assert other.reserve("call-2", "t", 0.6, limit_usd=1.0, must_fit=True) == pytest.approx(0.6)
        assert other.held("t") == pytest.approx(0.6) and other.held("someone-else") == 0.0
        # the call ends: its row (the real cost, 0.1) replaces the hold of 0.6
        req = Request.create([{"role": "user", "content": "x"}], "gpt-4o", options={"tenant": "t"}).replace(
            id="call-1")
        one.record(one.make_row(req, Response(text="y", cost_usd=0.1, served_by="target:t")))
        assert one.flush(10)
        assert other.held("t") == 0.0 and other.spend("t") == pytest.approx(0.1)
        assert other.reserve("call-2", "t", 0.6, limit_usd=1.0, must_fit=True) is None
        assert one.held("t") == pytest.approx(0.6)
        # without must_fit a reservation passes while the tenant is under the limit at all
        assert one.reserve("call-3", "t", 5.0, limit_usd=1.0) is None
        assert one.reserve("call-4", "t", 0.01, limit_usd=1.0) == pytest.approx(5.7)
        # a reservation is per tenant; a plain hold has no limit
        assert one.reserve("call-5", "u", 0.9, limit_usd=1.0, must_fit=True) is None
        other.hold("call-6", "u", 3.0)
        assert one.held("u") == pytest.approx(3.9)
    finally:
        one.close()
        other.close()


def test_holds_expire_when_their_call_is_never_recorded(postgres_ledger_url: str) -> None:
    import costmw._ledger_pg as pg

    ledger = Ledger(postgres_ledger_url)
    try:
        with psycopg.connect(postgres_ledger_url, autocommit=True) as conn:
            conn.execute("INSERT INTO costmw_holds VALUES ('lost-call', 't', 0.9, %s)", (time.time() - pg.HOLD_S - 5,))
        assert ledger.held("t") == 0.0
        assert ledger.reserve("new-call", "t", 0.9, limit_usd=1.0, must_fit=True) is None
    finally:
        ledger.close()


def test_concurrent_reservations_from_many_connections_never_pass_the_limit(postgres_ledger_url: str) -> None:
    # four ledgers stand for four processes or hosts: each has its own connections to the database
    ledgers = [Ledger(postgres_ledger_url) for _ in range(4)]
    passed: list[str] = []
    start = threading.Barrier(40)

    def reserve(i: int) -> None:
        start.wait()
        if ledgers[i % 4].reserve(f"call-{i}", "shared", 0.1, limit_usd=1.0, must_fit=True) is None:
            passed.append(f"call-{i}")

    try:
        threads = [threading.Thread(target=reserve, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(passed) == 10, passed
        assert ledgers[0].held("shared") == pytest.approx(1.0)
        assert all(ledger.health.unheld == 0 and ledger.health.write_errors == 0 for ledger in ledgers)
    finally:
        for ledger in ledgers:
            ledger.close()


def test_the_chain_and_its_config_use_the_postgresql_ledger(postgres_ledger_url: str, tmp_path: Path) -> None:
    chain = Chain(targets=[MockTarget(price=(1.0, 1.0))], ledger=postgres_ledger_url)
    try:
        chain.complete([{"role": "user", "content": "hi"}], model="mock", options={"tenant": "acme"})
        assert isinstance(chain.ledger, PostgresLedger)
    finally:
        chain.close()  # writes what waits
    config = tmp_path / "costmw.yaml"
    config.write_text(f"targets: [{{kind: mock}}]\nledger: {{url: '{postgres_ledger_url}', store_text: true, "
                      "on_unavailable: refuse, max_pending_rows: 50}\n")
    second = Chain.from_config(config)
    try:
        assert isinstance(second.ledger, PostgresLedger) and second.ledger.store_text
        assert second.ledger.on_unavailable == "refuse"
        second.complete([{"role": "user", "content": "again"}], model="mock", options={"tenant": "acme"})
        assert second.ledger.flush(10)
        rows = second.ledger.rows()
        assert [r.tenant for r in rows] == ["acme", "acme"] and rows[1].answer is not None
        assert rows[0].cost_usd > 0
    finally:
        second.close()
    with pytest.raises(ConfigError, match="give `path` or `url`, not both"):
        Chain.from_config({"ledger": {"url": postgres_ledger_url, "path": "x.db"}})


def test_costmw_report_reads_a_postgresql_ledger(postgres_ledger_url: str) -> None:
    ledger = Ledger(postgres_ledger_url)
    for cost in (0.01, 0.02):
        _record(ledger, "a", cost)
    ledger.close()
    result = CliRunner().invoke(app, ["report", postgres_ledger_url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["calls"] == 2 and summary["cost_usd"] == pytest.approx(0.03)
    assert summary["by_plugin"]["p"] == pytest.approx(0.03)


def test_the_deploy_config_keeps_the_ledger_in_postgresql() -> None:
    import yaml

    from costmw._config import _ChainSpec

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    data = yaml.safe_load((deploy / "costmw.yaml").read_text())
    data.pop("server")
    spec = _ChainSpec.model_validate(data)
    assert not isinstance(spec.ledger, str) and spec.ledger is not None
    assert spec.ledger.url is not None and spec.ledger.url.startswith("postgresql://")
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    assert compose["services"]["migrate"]["entrypoint"][:3] == ["costmw", "db", "upgrade"]
    assert compose["services"]["gateway-1"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"}


def test_an_older_schema_is_refused_until_upgraded_and_upgrade_applies_only_what_it_lacks(
        postgres_ledger_url: str) -> None:
    ledger = Ledger(postgres_ledger_url)
    _record(ledger, "kept", 0.25)
    ledger.close()
    with psycopg.connect(postgres_ledger_url, autocommit=True) as conn:  # as a database left at version 1
        conn.execute("DROP FUNCTION costmw_reserve")
        conn.execute("DELETE FROM costmw_migrations WHERE version > 1")
    with pytest.raises(ConfigError, match="has ledger schema version 1 .*costmw db upgrade"):
        Ledger(postgres_ledger_url)
    assert upgrade(postgres_ledger_url) == list(range(2, SCHEMA_VERSION + 1))
    again = Ledger(postgres_ledger_url)
    try:
        assert again.spend("kept") == pytest.approx(0.25)  # the rows are untouched
        assert again.reserve("r", "kept", 0.5, limit_usd=1.0, must_fit=True) is None
        assert again.reserve("s", "kept", 0.5, limit_usd=1.0, must_fit=True) == pytest.approx(0.75)
    finally:
        again.close()


def test_psycopg_pool_reconnect_warnings_of_costmw_pools_go_to_debug(postgres_url: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    upgrade(postgres_url)
    Ledger(postgres_url).close()  # a PostgreSQL ledger installs the filter
    pool_log = logging.getLogger("psycopg.pool")
    with caplog.at_level(logging.WARNING, logger="psycopg.pool"):
        pool_log.warning("error connecting in %r: %s", "costmw-ledger", "connection refused")
        pool_log.warning("error connecting in %r: %s", "app-pool", "connection refused")
    assert [r.getMessage() for r in caplog.records] == ["error connecting in 'app-pool': connection refused"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="psycopg.pool"):
        pool_log.warning("error connecting in %r: %s", "costmw-ledger", "connection refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "error connecting in 'costmw-ledger': connection refused")]
