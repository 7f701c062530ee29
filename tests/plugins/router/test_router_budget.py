"""Budgets: per tenant and period, downgrade or refuse."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable

import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Budget

from costmw import BudgetExceeded, Chain, ConfigError, TargetError


def spend(chain: Chain, tenant: str, times: int = 1) -> None:
    for _ in range(times):
        chain.complete(ask("spend some money " * 20), model="strong", options={"tenant": tenant})


def test_refuse_past_the_limit(make_chain: Callable[..., Chain], cheap: MockTarget, strong: MockTarget) -> None:
    chain = make_chain(ModelRouter([cheap, strong], budget={"limit_usd": 0.001, "action": "refuse"}))
    spend(chain, "acme")
    assert chain.ledger.spend("acme") > 0.001
    with pytest.raises(BudgetExceeded) as info:
        spend(chain, "acme")
    assert info.value.tenant == "acme" and info.value.limit_usd == 0.001
    assert info.value.spent_usd == pytest.approx(chain.ledger.spend("acme"))
    spend(chain, "other")  # other tenants keep their own budget
    assert len(strong.calls) == 2


def test_downgrade_to_the_cheapest(make_chain: Callable[..., Chain], cheap: MockTarget, mid: MockTarget,
                                   strong: MockTarget) -> None:
    budget = Budget(limit_usd=0.001, tenants={"vip": None, "small": 0.0})
    chain = make_chain(ModelRouter([strong, mid, cheap], budget=budget))
    spend(chain, "acme")
    response = chain.complete(ask("more"), model="strong", options={"tenant": "acme"})
    assert response.served_by == "target:cheap"
    info = response.info["route"]
    assert info["budget"]["tenant"] == "acme" and info["budget"]["action"] == "downgrade"
    assert "over budget" in info["rejected"]["strong"] and "over budget" in info["rejected"]["mid"]
    spend(chain, "vip", times=3)  # unlimited
    assert chain.complete(ask("x"), model="strong", options={"tenant": "vip"}).served_by == "target:strong"
    assert chain.complete(ask("x"), model="strong", options={"tenant": "small"}).served_by == "target:cheap"


def test_downgrade_to_named_targets(make_chain: Callable[..., Chain], cheap: MockTarget, mid: MockTarget,
                                    strong: MockTarget) -> None:
    chain = make_chain(ModelRouter([strong, mid, cheap], budget=Budget(limit_usd=0.0, downgrade_to=["mid"])))
    assert chain.complete(ask(), model="strong").served_by == "target:mid"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    only_cheap = make_chain(ModelRouter([strong, cheap], budget=Budget(limit_usd=0.0, downgrade_to=["cheap"])))
    with pytest.raises(BudgetExceeded, match="none of \\['cheap'\\]"):
        only_cheap.complete(ask(), model="strong", tools=tools)


def test_periods_start_on_calendar_boundaries() -> None:
    now = calendar.timegm((2024, 5, 15, 13, 45, 10))  # a Wednesday
    assert Budget(period="day").period_start(now) == calendar.timegm((2024, 5, 15, 0, 0, 0))
    assert Budget(period="hour").period_start(now) == calendar.timegm((2024, 5, 15, 13, 0, 0))
    assert Budget(period="week").period_start(now) == calendar.timegm((2024, 5, 13, 0, 0, 0))
    assert Budget(period="month").period_start(now) == calendar.timegm((2024, 5, 1, 0, 0, 0))
    assert Budget(period=600).period_start(now) == now - 600


def test_spend_outside_the_period_does_not_count(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                 strong: MockTarget) -> None:
    now = [time.time()]
    budget = Budget(limit_usd=0.001, period=60, action="refuse", clock=lambda: now[0])
    chain = make_chain(ModelRouter([cheap, strong], budget=budget))
    spend(chain, "acme")
    with pytest.raises(BudgetExceeded):
        spend(chain, "acme")
    now[0] += 3600  # an hour later the spend has left the 60 s window
    spend(chain, "acme")
    assert len(strong.calls) == 2


def test_bad_budgets_fail_fast(cheap: MockTarget) -> None:
    with pytest.raises(ConfigError, match="action"):
        ModelRouter([cheap], budget={"limit_usd": 1, "action": "shout"})
    with pytest.raises(ConfigError, match="period"):
        Budget(limit_usd=1, period="fortnight")
    with pytest.raises(ConfigError, match=">= 0"):
        Budget(limit_usd=-1)
    assert Budget.coerce(2.5) == Budget(limit_usd=2.5)


def test_calls_in_flight_count_against_the_budget(make_chain: Callable[..., Chain]) -> None:
    """Ten concurrent calls against a limit that fits about two: the first calls hold their
    estimated cost while in flight, so the rest are refused instead of all passing a budget that
    none of them has spent yet."""
    import asyncio

    slow = MockTarget(lambda r: "ok", name="strong", price=(10.0, 30.0), latency=0.2)
    chain = make_chain(ModelRouter([slow], budget={"limit_usd": 0.02, "action": "refuse"}))

    async def one() -> str:
        try:
            await chain.acomplete(ask("spend some money " * 20), model="strong", options={"tenant": "acme"})
            return "served"
        except BudgetExceeded:
            return "refused"

    async def burst() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(10))))

    outcomes = asyncio.run(burst())
    assert 1 <= outcomes.count("served") <= 3 and outcomes.count("refused") >= 7
    assert len(slow.calls) == outcomes.count("served")
    assert chain.ledger.held("acme") == 0.0  # every hold ended with its call's row
    assert chain.ledger.spend("acme") < 0.02  # the mock answers in few tokens: the estimate was generous


def test_a_hold_ends_when_the_call_fails_and_expires_when_never_recorded(make_chain: Callable[..., Chain]) -> None:
    from costmw import _ledger

    def broken(r: object) -> str:
        raise RuntimeError("upstream down")

    failing = MockTarget(broken, name="strong", price=(10.0, 30.0))
    chain = make_chain(ModelRouter([failing], budget={"limit_usd": 1.0}, retries=0))
    with pytest.raises(TargetError):
        chain.complete(ask("hello"), model="strong", options={"tenant": "acme"})
    assert chain.ledger.held("acme") == 0.0
    chain.ledger.hold("lost-call", "acme", 0.5)
    assert chain.ledger.held("acme") == 0.5 and chain.ledger.held("other") == 0.0
    old = _ledger.HOLD_S
    _ledger.HOLD_S = 0.0
    try:
        time.sleep(0.01)
        assert chain.ledger.held("acme") == 0.0
    finally:
        _ledger.HOLD_S = old


def test_routing_without_serving_holds_nothing(make_chain: Callable[..., Chain], cheap: MockTarget,
                                               strong: MockTarget) -> None:
    import asyncio

    from costmw import Request

    router = ModelRouter([cheap, strong], budget={"limit_usd": 1.0})
    chain = make_chain(router)
    chain.complete(ask("warm up"), model="strong", options={"tenant": "acme"})
    request = Request.create(ask("explain only"), "strong", options={"tenant": "acme"})
    asyncio.run(router.route(request))
    assert chain.ledger.held("acme") == 0.0


def test_workers_sharing_a_sqlite_ledger_see_each_others_calls_in_flight(tmp_path: object) -> None:
    """Two chains, as in two worker processes, each with its own Ledger on one file: while the
    first worker's call is in flight, its hold counts against the second worker's budget check."""
    import asyncio
    from pathlib import Path

    from costmw import Ledger

    path = Path(str(tmp_path)) / "ledger.db"
    budget = {"limit_usd": 0.008, "action": "refuse"}  # one call's estimate (~$0.0083) reaches it
    slow = MockTarget(lambda r: "ok", name="strong", price=(10.0, 30.0), latency=0.5)
    first = Chain([ModelRouter([slow], budget=budget)], ledger=Ledger(path))
    second = Chain([ModelRouter([MockTarget(lambda r: "ok", name="strong", price=(10.0, 30.0))], budget=budget)],
                   ledger=Ledger(path))

    async def both() -> tuple[object, object]:
        in_flight = asyncio.create_task(
            first.acomplete(ask("spend some money " * 20), model="strong", options={"tenant": "acme"}))
        await asyncio.sleep(0.1)
        assert second.ledger.held("acme") > 0.0
        try:
            await second.acomplete(ask("spend some money " * 20), model="strong", options={"tenant": "acme"})
            late: object = "served"
        except BudgetExceeded as exc:
            late = exc
        return await in_flight, late

    served, late = asyncio.run(both())
    assert isinstance(late, BudgetExceeded) and late.spent_usd >= 0.008
    assert first.ledger.flush(5)  # rows reach the file from the ledger's writer thread
    assert served is not None and first.ledger.held("acme") == second.ledger.held("acme") == 0.0
    second.complete(ask("hi"), model="strong", options={"tenant": "other"})  # other tenants go on
