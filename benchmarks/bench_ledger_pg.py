"""The PostgreSQL ledger: how fast rows reach the database, what a budget reservation costs, and
that concurrent reservations never pass a limit.

Needs the PostgreSQL server the tests use (``$COSTMW_BENCH_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``); the benchmark works in a schema of its own and
drops it afterwards. Rows: ``record()`` of N rows in bursts of 5,000, each followed by
``flush()`` (rows per second into the database). Reservations: ``reserve(..., must_fit=True)``
against one tenant from T threads on L ledgers (L stands for processes or hosts: each ledger has
its own connections), latency per call and calls per second; the limit fits exactly K of them
and the number that passed is checked against K.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from typing import Any

from benchmarks._common import percentile, print_table, write_result


def _rows(url: str, n: int) -> dict[str, float]:
    from costmw import Ledger, Request, Response, Usage

    ledger = Ledger(url)
    try:
        request = Request.create([{"role": "user", "content": "benchmark"}], "gpt-4o", options={"tenant": "rows"})
        rows = [ledger.make_row(request.replace(id=f"row-{i}"), Response(text="y", usage=Usage(10, 5), cost_usd=1e-5,
                                                                       served_by="target:t")) for i in range(n)]
        record_s = 0.0
        started = time.perf_counter()
        for chunk in range(0, n, 5_000):  # bursts below the buffer's bound (10,000 rows)
            began = time.perf_counter()
            for row in rows[chunk:chunk + 5_000]:
                ledger.record(row)
            record_s += time.perf_counter() - began
            assert ledger.flush(300), "rows did not reach the database"
        total_s = time.perf_counter() - started
        assert ledger.health.rows_dropped == 0
        assert len(ledger) == n
        return {"rows": n, "record_us_per_row": record_s / n * 1e6, "rows_per_s": n / total_s}
    finally:
        ledger.close()


def _reservations(url: str, ledgers_n: int, threads_n: int, calls: int, fits: int) -> dict[str, Any]:
    from costmw import Ledger

    ledgers = [Ledger(url) for _ in range(ledgers_n)]
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    passed = 0
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        nonlocal passed
        ledger = ledgers[t % ledgers_n]
        start.wait()
        for i in range(t, calls, threads_n):
            began = time.perf_counter()
            over = ledger.reserve(f"{tenant}-{i}", tenant, 1.0, limit_usd=float(fits), must_fit=True)
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                passed += over is None

    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
        began = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - began
        degraded = sum(ledger.health.unheld for ledger in ledgers)
    finally:
        for ledger in ledgers:
            ledger.close()
    return {"ledgers": ledgers_n, "threads": threads_n, "calls": calls, "limit_fits": fits, "passed": passed,
            "degraded": degraded, "per_s": calls / wall, "p50_ms": percentile(latencies, 50) * 1e3,
            "p95_ms": percentile(latencies, 95) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows and reservations")
    args = parser.parse_args(argv)
    try:
        import psycopg

        from costmw._ledger_pg import upgrade
    except ImportError:
        print('skipped: psycopg is not installed (pip install "costmw[postgres]")')
        return {}
    base = os.environ.get("COSTMW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    schema = "costmw_bench_" + uuid.uuid4().hex[:8]
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        print(f"skipped: PostgreSQL is not answering at {base}: {exc}")
        return {}
    url = f"{base}?options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        n_rows, calls = (5_000, 400) if args.quick else (20_000, 2_000)
        rows = _rows(url, n_rows)
        runs = [_reservations(url, ledgers_n, threads_n, calls, calls // 4)
                for ledgers_n, threads_n in ((1, 1), (1, 8), (4, 16))]
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print_table("PostgreSQL ledger: rows", ["rows", "record() µs/row", "rows/s into the database"],
                [[rows["rows"], rows["record_us_per_row"], rows["rows_per_s"]]])
    print_table("PostgreSQL ledger: budget reservations on one tenant (limit fits a quarter)",
                ["ledgers", "threads", "calls", "fit", "passed", "degraded", "calls/s", "p50 ms", "p95 ms", "p99 ms"],
                [[r["ledgers"], r["threads"], r["calls"], r["limit_fits"], r["passed"], r["degraded"], r["per_s"],
                  r["p50_ms"], r["p95_ms"], r["p99_ms"]] for r in runs])
    bad = [r for r in runs if r["passed"] != r["limit_fits"]]
    if bad:
        raise AssertionError(f"reservations passed a limit or refused what fit: {bad}")
    result = {"rows": rows, "reservations": runs}
    write_result("ledger_pg", result)
    return result


if __name__ == "__main__":
    main()
