"""The gateway under load: what `costmw serve` adds to each call, side by side with calling the
upstream directly and with LiteLLM Proxy.

Every setting runs against the same local upstream (an asyncio server answering after a fixed
delay) with an open-loop load generator: requests leave at a fixed rate whatever the answers do,
so a slow server shows up as latency and errors, not as a lower offered rate.

Rows: direct to the upstream; `costmw serve` with no plugins; with the default plugins on cache
misses only; with the default plugins and half the requests repeating earlier ones (cache hits);
LiteLLM Proxy with no cache (when `litellm[proxy]` is installed in build/litellm-proxy, which
`make bench` sets up). Reported per row and rate: latency p50/p95/p99 and what it adds over direct
at the same rate, errors, the rate achieved, server CPU per 1,000 requests, server memory; and
for costmw, whether the ledger holds exactly one row per answered request.

    python -m benchmarks.bench_gateway [--quick] [--rates 100,300,1000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import percentile, print_table, write_result

ROOT = Path(__file__).resolve().parents[1]
PROXY_VENV = ROOT / "build" / "litellm-proxy"
UPSTREAM_DELAY_S = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout_s: float = 60.0, headers: dict[str, str] | None = None) -> None:
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1.0, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout_s:.0f} s")


class Server:
    """A server process we start, measure (CPU, memory) and stop."""

    def __init__(self, args: list[str], url: str, *, env: dict[str, str] | None = None,
                 ready_url: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.args, self.url, self.env = args, url, env
        self.ready_url = ready_url or url
        self.headers = headers
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(self.env or {})}, cwd=ROOT)
        try:
            _wait_http(self.ready_url, headers=self.headers)
        except RuntimeError:
            self.log.seek(0)
            sys.stderr.write(self.log.read().decode(errors="replace")[-3000:])
            self.__exit__()
            raise
        return self

    def usage(self) -> tuple[float, float]:
        """CPU seconds used so far and resident memory (MiB), with child processes (workers)."""
        import psutil

        assert self.proc is not None
        parent = psutil.Process(self.proc.pid)
        procs = [parent, *parent.children(recursive=True)]
        cpu = rss = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                cpu += t.user + t.system
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        return cpu, rss / 2**20

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _load(url: str, rate: float, seconds: float, headers: dict[str, str], repeat_share: float,
                model: str) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    pool = [f"question number {i} about the refund policy of order {i * 7919 % 100000}" for i in range(64)]

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(i: int) -> None:
            repeat = repeat_share > 0 and (i * 2654435761 % 1000) / 1000 < repeat_share
            text = pool[i % len(pool)] if repeat else f"unique question {i} {time.time_ns()}"
            body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32}
            started = time.perf_counter()
            try:
                async with session.post(url, json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                        return
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        sent_in = time.perf_counter() - start
        await asyncio.gather(*tasks)
    ms = [x * 1000 for x in latencies]
    return {"sent": total, "ok": len(latencies), "errors": errors, "achieved_rps": total / max(sent_in, 1e-9),
            "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99)}


def _gateway_config(tmp: Path, upstream: str, plugins: list[Any], name: str) -> Path:
    config = {
        "plugins": plugins,
        "targets": [{"kind": "openai", "model": "gpt-4o-mini", "api_base": upstream, "api_key": "sk-local-upstream",
                     "retries": 0}],
        "ledger": str(tmp / f"{name}-ledger.db"),
        "server": {"keys": str(tmp / "keys.db"), "metrics": True},
    }
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def _ledger_check(path: Path, answered: int) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM calls").fetchone()
    finally:
        db.close()
    return {"rows": rows, "distinct_ids": distinct, "answered": answered,
            "lost": max(0, answered - rows), "double_booked": rows - distinct}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s at 100 and 300 requests/s")
    parser.add_argument("--rates", default="100,300,1000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    rates = [100.0, 300.0] if args.quick else [float(r) for r in args.rates.split(",")]
    seconds = 5.0 if args.quick else args.seconds
    try:
        import aiohttp  # noqa: F401
        import psutil  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(f"(gateway benchmark skipped: {exc.name} is missing; pip install 'costmw[server]')")
        return {}

    from costmw.server import KeyStore

    tmp = Path(tempfile.mkdtemp(prefix="costmw-bench-gateway-"))
    up_port = _free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    secret, _ = KeyStore(tmp / "keys.db").create("bench")
    auth = {"authorization": f"Bearer {secret}"}
    python = sys.executable
    rows: list[dict[str, Any]] = []

    settings: list[tuple[str, Any]] = [("direct", None), ("costmw, no plugins", []),
                                       ("costmw, default plugins, misses", "default"),
                                       ("costmw, default plugins, 50% hits", "default-hits"),
                                       ("LiteLLM Proxy, no cache", "litellm")]
    proxy_bin = PROXY_VENV / "bin" / "litellm"
    with Server([python, "-m", "benchmarks._fast_upstream", "--port", str(up_port),
                 "--delay", str(UPSTREAM_DELAY_S)], upstream_url + "/models"):
        for label, kind in settings:
            for rate in rates:
                port = _free_port()
                repeat = 0.5 if kind == "default-hits" else 0.0
                name = f"run{len(rows)}"
                if kind is None:
                    server = None
                    url, headers, model = upstream_url + "/chat/completions", {}, "gpt-4o-mini"
                elif kind == "litellm":
                    if not proxy_bin.exists():
                        print(f"(LiteLLM Proxy row skipped: {proxy_bin} not found; `make bench` installs "
                              f"litellm[proxy] there)")
                        break
                    cfg = tmp / "litellm.yaml"
                    cfg.write_text(
                        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n"
                        f"      model: openai/gpt-4o-mini\n      api_base: {upstream_url}\n"
                        "      api_key: sk-local-upstream\n"
                        "litellm_settings:\n  cache: false\n  telemetry: false\n")
                    master = "sk-bench-" + os.urandom(16).hex()  # the proxy refuses to start without one
                    server = Server([str(proxy_bin), "--config", str(cfg), "--port", str(port),
                                     "--num_workers", str(args.workers)],
                                    f"http://127.0.0.1:{port}/health/liveliness",
                                    env={"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                                         "LITELLM_MASTER_KEY": master})
                    url, model = f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini"
                    headers = {"authorization": f"Bearer {master}"}
                else:
                    plugins: list[Any] = [] if kind == [] else [
                        {"semantic_cache": {"store": "memory"}}, "prompt_minifier", "batcher"]
                    cfg = _gateway_config(tmp, upstream_url, plugins, name)
                    server = Server([python, "-m", "costmw.cli", "serve", "--config", str(cfg), "--port", str(port),
                                     "--workers", str(args.workers)], f"http://127.0.0.1:{port}/health")
                    url, headers, model = f"http://127.0.0.1:{port}/v1/chat/completions", auth, "gpt-4o-mini"
                if server is not None:
                    try:
                        server.__enter__()
                    except RuntimeError as exc:
                        print(f"({label} @ {rate:.0f}/s skipped: {exc})")
                        continue
                try:
                    # warm up (model loads, connection pools), then measure
                    import httpx

                    httpx.post(url, headers=headers, timeout=300, json={
                        "model": model, "messages": [{"role": "user", "content": "warm up"}], "max_tokens": 8})
                    asyncio.run(_load(url, min(rate, 50), 1.0, headers, repeat, model))
                    before = server.usage() if server is not None else (0.0, 0.0)
                    result = asyncio.run(_load(url, rate, seconds, headers, repeat, model))
                    after = server.usage() if server is not None else (0.0, 0.0)
                finally:
                    if server is not None:
                        server.__exit__()
                row = {"setting": label, "rate": rate, **result}
                if server is not None:
                    row["cpu_ms_per_1k"] = (after[0] - before[0]) * 1000 / max(result["sent"], 1) * 1000
                    row["rss_mib"] = after[1]
                if kind not in (None, "litellm"):
                    # every answered request of the measured run (and the warm-up) has exactly one row
                    warm = int(min(rate, 50) * 1.0) + 1
                    row["ledger"] = _ledger_check(tmp / f"{name}-ledger.db", result["ok"] + warm)
                rows.append(row)
                print(f"  {label} @ {rate:.0f}/s: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                      f"ok {row['ok']}/{row['sent']}", flush=True)

    direct = {r["rate"]: r for r in rows if r["setting"] == "direct"}
    table = []
    for r in rows:
        d = direct.get(r["rate"])
        added = [r[k] - d[k] if d else float("nan") for k in ("p50_ms", "p95_ms", "p99_ms")]
        r["added_ms"] = {"p50": added[0], "p95": added[1], "p99": added[2]}
        ledger = r.get("ledger")
        table.append([r["setting"], f"{r['rate']:.0f}", f"{r['achieved_rps']:.0f}", f"{r['ok']}/{r['sent']}",
                      f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      "-" if r["setting"] == "direct" else f"{added[0]:+.2f} / {added[1]:+.2f} / {added[2]:+.2f}",
                      f"{r['cpu_ms_per_1k']:.0f}" if "cpu_ms_per_1k" in r else "-",
                      f"{r['rss_mib']:.0f}" if "rss_mib" in r else "-",
                      "-" if ledger is None else f"{ledger['lost']} lost, {ledger['double_booked']} double"])
    print_table(f"gateway under load (upstream delay {UPSTREAM_DELAY_S * 1000:.0f} ms, {seconds:.0f} s per rate, "
                f"{args.workers} worker(s))",
                ["setting", "rate/s", "achieved/s", "ok", "p50 ms", "p99 ms", "added p50/p95/p99 ms",
                 "CPU ms per 1k", "RSS MiB", "ledger"], table)
    for label, _ in settings[1:]:
        ok_rates = [r["rate"] for r in rows if r["setting"] == label and not r["errors"]
                    and r["achieved_rps"] >= 0.95 * r["rate"]]
        if any(r["setting"] == label for r in rows):
            print(f"  {label}: highest rate with no errors: {max(ok_rates) if ok_rates else 'none'} /s per "
                  f"{args.workers} worker(s)")
    out = {"rows": rows, "seconds": seconds, "workers": args.workers, "upstream_delay_s": UPSTREAM_DELAY_S}
    write_result("gateway", out)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
