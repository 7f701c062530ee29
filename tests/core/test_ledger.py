from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from costmw.adapters import MockTarget

from costmw import BudgetUnavailable, Chain, Ledger, Request, Response, Saving, Usage
from costmw._ledger import redact_secrets


def _row(ledger: Ledger, tenant: str, cost: float) -> None:
    req = Request.create([{"role": "user", "content": "x"}], "gpt-4o", options={"tenant": tenant})
    resp = Response(text="y", usage=Usage(3, 4), cost_usd=cost, baseline_cost_usd=cost * 2,
                    served_by="target:t", savings=[Saving("p", cost)])
    ledger.record(ledger.make_row(req, resp))


def test_sqlite_ledger_persists_and_summarises(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger(path)
    for i in range(5):
        _row(ledger, "a" if i % 2 else "b", 0.01)
    ledger.close()
    again = Ledger(path)
    assert len(again) == 5
    s = again.summary()
    assert s["calls"] == 5
    assert abs(s["cost_usd"] - 0.05) < 1e-9 and abs(s["saved_usd"] - 0.05) < 1e-9
    assert abs(s["by_plugin"]["p"] - 0.05) < 1e-9
    assert s["by_target"]["target:t"]["calls"] == 5
    assert abs(again.spend("a") - 0.02) < 1e-9
    assert again.spend("a", since=time.time() + 10) == 0


def test_memory_ledger_spend_per_tenant() -> None:
    ledger = Ledger()
    _row(ledger, "a", 0.5)
    _row(ledger, "b", 0.25)
    assert ledger.spend("a") == 0.5 and ledger.spend("b") == 0.25


def test_concurrent_writers_on_sqlite(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    threads = [threading.Thread(target=lambda: [_row(ledger, "t", 0.001) for _ in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger) == 400


def test_secrets_are_redacted() -> None:
    text = "key sk-abcdefghijklmnopqrstuvwx and Bearer abcdefghijklmnopqrstu and AKIAABCDEFGHIJKLMNOP"
    out = redact_secrets(text)
    assert "sk-abc" not in out and "abcdefghijklmnopqrstu" not in out and "AKIA" not in out
    assert out.count("[REDACTED]") == 3


def test_text_is_stored_only_when_asked(tmp_path: Path) -> None:
    plain = Chain(targets=[MockTarget()], ledger=Ledger(tmp_path / "a.db"))
    plain.complete([{"role": "user", "content": "hi"}], model="mock")
    assert plain.ledger.rows()[0].prompt is None
    kept = Chain(targets=[MockTarget()], ledger=Ledger(tmp_path / "b.db", store_text=True))
    kept.complete([{"role": "user", "content": "hi"}], model="mock")
    row = kept.ledger.rows()[0]
    assert row.prompt == [{"role": "user", "content": "hi"}] and row.answer == "hi"


def test_a_broken_ledger_never_fails_the_call(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    chain = Chain(targets=[MockTarget()], ledger=ledger)
    assert ledger._db is not None
    ledger._db.execute("DROP TABLE calls")
    assert chain.complete([{"role": "user", "content": "hi"}], model="mock").text == "hi"
    assert not ledger.flush(0.5)  # the row waits for a file that can take it
    assert ledger.write_errors >= 1 and ledger.health.rows_dropped == 0


@pytest.mark.parametrize("policy", ["refuse", "allow"])
def test_a_broken_holds_table_refuses_or_allows_a_budgeted_call_as_configured(tmp_path: Path, policy: str) -> None:
    from costmw.plugins import ModelRouter

    ledger = Ledger(tmp_path / "l.db", on_unavailable=policy)  # type: ignore[arg-type]
    chain = Chain([ModelRouter([MockTarget(name="mock")], budget={"limit_usd": 1.0, "action": "refuse"})],
                  ledger=ledger)
    assert ledger._db is not None
    ledger._db.execute("DROP TABLE holds")
    ask = lambda: chain.complete([{"role": "user", "content": "hi"}], model="mock", options={"tenant": "acme"})  # noqa: E731
    if policy == "refuse":
        with pytest.raises(BudgetUnavailable, match="on_unavailable='refuse'"):
            ask()
        assert ledger.health.refused == 1
    else:
        assert ask().text == "hi" and ledger.health.unheld == 1
    assert ledger.write_errors >= 1 and ledger.held("acme") == 0.0
    assert ledger.flush(5) and len(ledger) == 1  # the call's row (refused or served) is written all the same


def test_reserve_holds_only_below_the_limit_and_ignores_its_own_hold() -> None:
    ledger = Ledger()
    _row(ledger, "acme", 1.0)
    assert ledger.reserve("a", "acme", 0.75, limit_usd=2.0) is None  # 1.0 spent < 2.0: held
    assert ledger.held("acme") == 0.75
    assert ledger.reserve("a", "acme", 0.5, limit_usd=1.5) is None  # its own hold does not count against it
    assert ledger.held("acme") == 0.5
    assert ledger.reserve("b", "acme", 0.5, limit_usd=1.5) == 1.5  # 1.0 spent + 0.5 held: refused, nothing held
    assert ledger.held("acme") == 0.5
    assert ledger.reserve("c", "other", 0.5, limit_usd=0.1) is None  # tenants are counted apart
    assert ledger.reserve("d", "acme", 0.5, limit_usd=1.2, since=time.time() + 1) is None  # spend before since: ignored


_RESERVE_IN_A_PROCESS = """
import sys, time
from costmw import Ledger
path, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
ledger = Ledger(path)
while time.time() < start:
    time.sleep(0.001)
print("held" if ledger.reserve(name, "acme", 1.0, limit_usd=2.5) is None else "refused")
"""


def test_holds_are_shared_by_processes_and_reserving_is_one_step_across_them(tmp_path: Path) -> None:
    """Six processes reserve $1 each at the same moment against a $2.5 limit on one SQLite ledger:
    exactly three pass (0, 1 and 2 held before them), whatever their order."""
    import subprocess
    import sys

    path = tmp_path / "shared.db"
    Ledger(path).close()  # create the tables once, before the race
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", _RESERVE_IN_A_PROCESS, str(path), f"r{i}", start],
                              stdout=subprocess.PIPE, text=True) for i in range(6)]
    outcomes = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outcomes) == ["held"] * 3 + ["refused"] * 3
    here = Ledger(path)
    assert here.held("acme") == 3.0  # this process sees the other processes' holds
    winner = f"r{outcomes.index('held')}"
    req = Request.create([{"role": "user", "content": "x"}], "gpt-4o", options={"tenant": "acme"})
    row = here.make_row(req, Response(text="y", cost_usd=0.25))
    row.request_id = winner
    here.record(row)  # the row replaces its hold in one step (written by the ledger's writer thread)
    assert here.held("acme") == 2.0 and here.flush(5)
    assert Ledger(path).held("acme") == 2.0 and Ledger(path).spend("acme") == 0.25
