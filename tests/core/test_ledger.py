from __future__ import annotations

import threading
import time
from pathlib import Path

from costmw.adapters import MockTarget

from costmw import Chain, Ledger, Request, Response, Saving, Usage
from costmw._ledger import redact_secrets


def _row(ledger: Ledger, tenant: str, cost: float) -> None:
    req = Request.create([{"role": "user", "content": "x"}], "gpt-4o", metadata={"tenant": tenant})
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
    assert ledger.write_errors == 1
