from __future__ import annotations

import json
from pathlib import Path

import pytest
from costmw.adapters import MockTarget
from typer.testing import CliRunner

from costmw import Chain, Ledger
from costmw.cli import app


def test_report_prints_tables_and_writes_png_and_html(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    chain = Chain(targets=[MockTarget(price=(1.0, 1.0))], ledger=Ledger(db))
    for i in range(3):
        chain.complete([{"role": "user", "content": f"q{i}"}], model="gpt-4o")
    chain.ledger.close()
    png, page = tmp_path / "r.png", tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(db), "--png", str(png), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "savings per plugin" in result.output and "target:mock" in result.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "costmw report" in page.read_text()
    as_json = CliRunner().invoke(app, ["report", str(db), "--json"])
    assert json.loads(as_json.output)["calls"] == 3


def test_report_on_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path / "none.db")], env={"COLUMNS": "300"})
    assert result.exit_code != 0 and "does not exist" in result.output


def test_demo_runs_and_compares(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "-n", "40", "--no-local", "--ledger", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    assert "without costmw" in result.output and "with costmw" in result.output
    assert len(Ledger(tmp_path / "demo.db")) == 40


@pytest.mark.slow
def test_demo_workload_saves_money_and_never_serves_a_wrong_cached_answer() -> None:
    from costmw.cli._demo import demo_chain, run_workload
    from costmw.cli._workload import build_workload

    items = build_workload(200, seed=3)
    base = run_workload(demo_chain(items, with_costmw=False), items, "base")
    opt = run_workload(demo_chain(items, with_costmw=True), items, "opt")
    assert opt.wrong_cache == 0
    assert opt.correct == base.correct == len(items)
    saved = 1 - opt.ledger.summary()["cost_usd"] / base.ledger.summary()["cost_usd"]
    assert saved > 0.4
    assert {"semantic_cache", "prompt_minifier", "model_router"} <= set(opt.ledger.summary()["by_plugin"])
    assert any(s.startswith("cache:semantic") for s in opt.served)
    cascades = [(row.info.get("route") or {}).get("cascade") for row in opt.ledger.rows()]
    escalated = [c["escalated"] for c in cascades if c]
    assert True in escalated and False in escalated  # slipped math answers escalated, the rest kept
