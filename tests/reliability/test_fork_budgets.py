"""Workers forked after ``import costmw`` share one SQLite ledger's budget: their request ids
never collide, so their holds never overlap and the budget is never overshot."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter

from costmw import BudgetExceeded, Chain, Ledger

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork")


def _worker(path: Path, start: float, out: int) -> None:
    """Runs in a forked child: one budgeted call of about $1, then report what happened."""
    target = MockTarget(lambda r: {"text": "ok", "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
                        name="m", price=(1_000_000.0, 0.0), latency=0.3)  # $1 a prompt token, one token
    router = ModelRouter([target], budget={"limit_usd": 2.5, "action": "refuse"})
    chain = Chain([router], ledger=Ledger(path))
    while time.time() < start:
        time.sleep(0.001)
    try:
        reply = chain.complete([{"role": "user", "content": "x"}], "m", options={"tenant": "acme"})
        result = f"served {reply.request_id}"
    except BudgetExceeded:
        result = "refused"
    chain.ledger.flush(10)
    os.write(out, (result + "\n").encode())


def test_workers_forked_after_import_never_overshoot_a_shared_budget(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).close()
    read, write = os.pipe()
    start = time.time() + 1.0
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 0
            try:
                _worker(path, start, write)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    os.close(write)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    with os.fdopen(read) as f:
        outcomes = f.read().split("\n")
    served = [o.split()[1] for o in outcomes if o.startswith("served")]
    assert codes == [0] * 6, outcomes
    assert 1 <= len(served) <= 3 and len(set(served)) == len(served)  # $1 calls under $2.5: never more
    assert len(served) + outcomes.count("refused") == 6
    rows = Ledger(path).rows()
    assert len({r.request_id for r in rows}) == len(rows) == 6  # every call has its own row and id
    assert Ledger(path).spend("acme") <= 2.5 + 1.0  # the last call admitted may finish just past it
