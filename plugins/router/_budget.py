"""Spend limits per tenant and period, read from the chain's ledger."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from costmw.plugin_api import ConfigError, Ledger

__all__ = ["Budget"]

_PERIODS = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}
ACTIONS = ("downgrade", "refuse")


@dataclass
class Budget:
    """A spend limit (USD) per tenant per period; past it, route to cheaper targets or refuse.

    ``limit_usd`` applies to every tenant (requests without a tenant count as tenant ``""``);
    ``tenants`` sets limits for named tenants (``None`` there means unlimited). ``period`` is
    ``hour``, ``day``, ``week`` or ``month`` (calendar periods in UTC) or a number of seconds (a
    rolling window). ``action="downgrade"`` sends over-budget requests only to ``downgrade_to``
    (default: the cheapest target); ``action="refuse"`` raises :class:`costmw.BudgetExceeded`.
    Spend is what the ledger has recorded plus what it holds for calls still in flight (the
    router holds each call's estimated cost until the call is recorded).
    """

    limit_usd: float | None = None
    period: str | float = "day"
    tenants: Mapping[str, float | None] = field(default_factory=dict)
    action: str = "downgrade"
    downgrade_to: Sequence[str] = ()
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"budget action must be one of {ACTIONS}, got {self.action!r}")
        if isinstance(self.period, str) and self.period not in (*_PERIODS, "month"):
            raise ConfigError(f"budget period must be hour, day, week, month or seconds, got {self.period!r}")
        if not isinstance(self.period, str) and float(self.period) <= 0:
            raise ConfigError(f"budget period must be positive, got {self.period!r}")
        for who, limit in [("limit_usd", self.limit_usd), *self.tenants.items()]:
            if limit is not None and float(limit) < 0:
                raise ConfigError(f"budget limit for {who!r} must be >= 0, got {limit}")
        if isinstance(self.downgrade_to, str):
            self.downgrade_to = (self.downgrade_to,)

    @classmethod
    def coerce(cls, value: Budget | Mapping[str, Any] | float | None) -> Budget | None:
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, (int, float)):
            return cls(limit_usd=float(value))
        if isinstance(value, Mapping):
            try:
                return cls(**dict(value))
            except TypeError as exc:
                raise ConfigError(f"budget: {exc}") from exc
        raise ConfigError(f"budget must be a Budget, a dict or a number of USD, got {type(value).__name__}")

    def limit_for(self, tenant: str | None) -> float | None:
        key = tenant or ""
        if key in self.tenants:
            value = self.tenants[key]
            return None if value is None else float(value)
        return None if self.limit_usd is None else float(self.limit_usd)

    def period_start(self, now: float | None = None) -> float:
        """Unix time at which the current period began."""
        now = self.clock() if now is None else now
        if not isinstance(self.period, str):
            return now - float(self.period)
        t = time.gmtime(now)
        if self.period == "month":
            return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))
        day = float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))
        if self.period == "hour":
            return day + 3600.0 * t.tm_hour
        if self.period == "week":
            return day - 86400.0 * t.tm_wday
        return day

    def over(self, ledger: Ledger, tenant: str | None) -> tuple[float, float] | None:
        """``(spent, limit)`` when ``tenant`` has reached its limit this period, else None."""
        limit = self.limit_for(tenant)
        if limit is None:
            return None
        spent = ledger.spend(tenant or None, since=self.period_start()) + ledger.held(tenant or None)
        return (spent, limit) if spent >= limit else None

    def reserve(self, ledger: Ledger, request_id: str, tenant: str | None, usd: float) -> tuple[float, float] | None:
        """:meth:`over` and, when ``tenant`` is not over, a hold of ``usd`` for the call
        ``request_id``, in one step of the ledger (so concurrent calls, in this process or in others
        sharing a SQLite ledger, cannot all pass a limit that only one of them fits)."""
        limit = self.limit_for(tenant)
        if limit is None:
            ledger.hold(request_id, tenant, usd)
            return None
        spent = ledger.reserve(request_id, tenant or None, usd, limit, since=self.period_start())
        return None if spent is None else (spent, limit)
