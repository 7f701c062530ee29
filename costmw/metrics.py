"""Prometheus metrics for costmw calls, for the gateway and for SDK users alike.

>>> from costmw.metrics import Metrics          # doctest: +SKIP
>>> metrics = Metrics()                         # registers on prometheus_client's default registry
>>> metrics.observe_response(response)          # after each call (the gateway does this for you)
>>> metrics.render()                            # the text exposition format, for GET /metrics

Needs ``prometheus-client`` (the ``server`` extra). Names follow Prometheus conventions
(``costmw_`` prefix, ``_total`` counters, ``_seconds`` histograms, USD as a unit suffix).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._errors import missing_extra
from ._types import Response

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


_LEDGER_COUNTERS = (
    ("rows_dropped", "Ledger rows dropped because the buffer was full while the store was unavailable"),
    ("rows_lost", "Ledger rows still unwritten when the ledger closed"),
    ("rows_rejected", "Ledger rows the database refused as invalid"),
    ("rows_spooled", "Ledger rows kept in the spool on disk at close, for the next ledger"),
    ("write_errors", "Failed attempts to write to the ledger's store"),
    ("unheld_reservations", "Budget reservations held in this process only (store unavailable)"),
    ("refused_reservations", "Budget reservations refused (store unavailable)"),
)
_LEDGER_FIELDS = {"unheld_reservations": "unheld", "refused_reservations": "refused"}


def _tier(served_by: str) -> str:
    if served_by.startswith("cache:"):
        return served_by.split(":", 1)[1]
    return "miss"


class Metrics:
    """Counters and histograms of requests, tokens, cost, baseline, savings per plugin, cache
    hits by tier, latency and time to first token, and errors by type."""

    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:
            raise missing_extra("prometheus-client", "server", exc) from exc
        self._prom = prom
        self._syncs: list[Callable[[], bool]] = []
        self.registry = registry if registry is not None else prom.REGISTRY
        r = self.registry
        self.requests = prom.Counter("costmw_requests", "Calls through costmw", ["model", "served_by", "status"],
                                     registry=r)
        self.tokens = prom.Counter("costmw_tokens", "Tokens of served calls", ["kind"], registry=r)
        self.cost = prom.Counter("costmw_cost_usd", "What calls cost (USD)", registry=r)
        self.baseline = prom.Counter("costmw_baseline_usd", "What calls would have cost without costmw (USD)",
                                     registry=r)
        self.savings = prom.Counter("costmw_savings_usd", "Savings by plugin (USD)", ["plugin"], registry=r)
        self.cache = prom.Counter("costmw_cache_lookups", "Calls by cache tier (exact, semantic, miss)",
                                  ["tier"], registry=r)
        self.errors = prom.Counter("costmw_errors", "Failed calls by error type", ["type"], registry=r)
        self.latency = prom.Histogram("costmw_request_latency_seconds", "Call latency", ["stream"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = prom.Histogram("costmw_time_to_first_token_seconds", "Time to the first streamed token",
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (a dict hit afterwards)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) > 10_000:  # label sets are few; a flood of new ones starts over
                self._children.clear()
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_response(self, response: Response, *, requested_model: str = "", latency_s: float | None = None,
                         stream: bool = False, ttft_s: float | None = None) -> None:
        served = response.served_by or "target"
        child = self._child
        child(self.requests, requested_model or response.model, served.split(":")[0], "ok").inc()
        child(self.tokens, "prompt").inc(response.usage.prompt_tokens)
        child(self.tokens, "completion").inc(response.usage.completion_tokens)
        self.cost.inc(max(0.0, response.cost_usd))
        self.baseline.inc(max(0.0, response.baseline_cost_usd))
        for s in response.savings:
            if s.usd > 0:
                child(self.savings, s.plugin).inc(s.usd)
        child(self.cache, _tier(served)).inc()
        child(self.latency, "true" if stream else "false").observe(
            response.latency_s if latency_s is None else latency_s)
        if ttft_s is not None:
            self.ttft.observe(ttft_s)

    def watch_ledger(self, ledger: Any, every_s: float = 5.0) -> None:
        """Export ``ledger.health`` (a :class:`costmw.Ledger`'s): rows dropped past the buffer's
        bound while the store was unavailable, rows lost at close, rows refused as invalid, failed
        writes, reservations held in this process only or refused (``costmw_ledger_*_total``),
        and the rows waiting (``costmw_ledger_pending_rows``). The numbers are copied into
        ordinary counters when metrics are rendered and every ``every_s`` seconds from a thread,
        so with ``PROMETHEUS_MULTIPROC_DIR`` every worker's numbers reach the sum."""
        import threading
        import weakref

        prom, r = self._prom, self.registry
        counters = {name: prom.Counter(f"costmw_ledger_{name}", doc, registry=r) for name, doc in _LEDGER_COUNTERS}
        waiting = prom.Gauge("costmw_ledger_pending_rows", "Ledger rows waiting to be written", registry=r,
                             multiprocess_mode="livesum")
        seen = dict.fromkeys(counters, 0)
        book = weakref.ref(ledger)
        lock = threading.Lock()

        def sync() -> bool:
            watched = book()
            if watched is None:
                return False
            with lock:
                for name in counters:
                    value = getattr(watched.health, _LEDGER_FIELDS.get(name, name))
                    if value > seen[name]:
                        counters[name].inc(value - seen[name])
                        seen[name] = value
                waiting.set(watched.pending_rows())
            return True

        def run() -> None:
            while sync():
                stop.wait(every_s)

        stop = threading.Event()
        self._syncs.append(sync)
        threading.Thread(target=run, name="costmw-ledger-metrics", daemon=True).start()

    def observe_error(self, error: BaseException, *, requested_model: str = "", status: str = "error") -> None:
        self._child(self.requests, requested_model, "error", status).inc()
        self._child(self.errors, type(error).__name__).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type. With ``PROMETHEUS_MULTIPROC_DIR`` set (several
        gateway workers), the numbers of every worker are summed."""
        for sync in self._syncs:
            sync()
        prom = self._prom
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
