"""The gateway under load: what `costmw serve` adds to each call, side by side with calling the
upstream directly and with LiteLLM Proxy.

Every setting runs against the same local upstream (a bare ASGI app answering after a fixed
delay). The load generator is open-loop: request i is due at start + i/rate whatever the answers
do, and its latency is measured from that due time, not from when it was sent, so a server (or a
generator) that falls behind shows its queue in the latency instead of hiding it (no coordinated
omission).

Settings: direct to the upstream; `costmw serve` with no plugins; with the default plugins
(semantic cache in memory, minifier, batcher) on cache misses only; the same with half the
requests repeating earlier ones (cache hits); LiteLLM Proxy with no cache (when `litellm[proxy]`
is installed in build/litellm-proxy, which `make bench` sets up). Each server starts once per
setting and takes the rates in increasing order, after a warm-up.

Reported per setting and rate: latency p50/p95/p99 and what it adds over direct at the same rate,
errors, the rate achieved, server CPU per 1,000 requests (all the server's processes), server
memory (RSS); per setting the highest sustained rate (see SUSTAINED); for costmw, a ledger check:
every answered request's id (the x-costmw-request-id header) must have exactly one row, none lost
and none booked twice.

    python -m benchmarks.bench_gateway [--quick] [--rates 100,300,1000] [--duration 60] [--workers 1]
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
from collections import Counter
from pathlib import Path
from typing import Any

from ._common import percentile, print_table, write_result

ROOT = Path(__file__).resolve().parents[1]
PROXY_VENV = ROOT / "build" / "litellm-proxy"
UPSTREAM_DELAY_S = 0.05
QUICK_RATES = (100.0, 300.0)
QUICK_SECONDS = 5.0
# A rate is sustained when every request got a 200, the generator kept the schedule (achieved at
# least 95% of the offered rate) and the server kept up: its added p99 over direct stayed under
# SUSTAINED_ADDED_P99_MS (a server that falls behind queues, and its p99 grows by seconds).
SUSTAINED_ADDED_P99_MS = 100.0
MODEL = "gpt-4o-mini"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout_s: float = 120.0, headers: dict[str, str] | None = None) -> None:
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
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_RUN = os.urandom(4).hex()  # unique questions differ from those of an earlier run sharing a cache
# Unique questions are random picks of these words, so a miss costs what a miss on varied traffic
# costs (embedding, search, store); near-duplicate questions ("question 1", "question 2", ...)
# would also run the cache's verifier on every miss, as look-alikes do.
_WORDS = (
    "account", "address", "airport", "apple", "area", "battery", "bicycle", "bill", "birthday", "book", "bottle",
    "bridge", "budget", "cable", "camera", "candle", "car", "card", "castle", "cat", "chair", "cheese", "child",
    "city", "class", "cloud", "coffee", "computer", "contract", "cookie", "country", "court", "cream", "desk",
    "dinner", "doctor", "dog", "door", "dress", "driver", "engine", "exam", "factory", "family", "farm", "film",
    "flight", "flower", "forest", "fork", "friend", "garden", "gift", "glass", "guitar", "hair", "hammer", "heart",
    "holiday", "horse", "hospital", "hotel", "house", "invoice", "island", "jacket", "job", "key", "kitchen",
    "ladder", "lake", "lamp", "language", "laptop", "lawyer", "lesson", "letter", "library", "light", "lunch",
    "machine", "map", "market", "meeting", "menu", "milk", "mirror", "money", "monitor", "moon", "mountain",
    "museum", "music", "network", "newspaper", "ocean", "office", "orange", "order", "oven", "package", "page",
    "painting", "paper", "park", "party", "passport", "pen", "pencil", "phone", "piano", "picture", "pizza", "plane",
    "plant", "plate", "pocket", "printer", "queen", "radio", "rain", "recipe", "refund", "river", "road", "roof",
    "room", "salary", "salt", "school", "screen", "sea", "season", "server", "shirt", "shoe", "shop", "shower",
    "sister", "skin", "sky", "sleep", "snow", "soap", "song", "soup", "station", "storm", "street", "student",
    "sugar", "summer", "sun", "table", "tax", "teacher", "team", "telephone", "tennis", "ticket", "tiger", "tomato",
    "tooth", "tower", "town", "toy", "train", "tree", "truck", "umbrella", "university", "valley", "vegetable",
    "village", "violin", "wall", "wallet", "watch", "water", "weather", "wedding", "window", "wine", "winter",
    "wood", "word", "worker", "yard",
)
_ASKS = ("How do I", "Why does my", "What is the best way to", "Can you explain how to", "Where can I",
         "Is it safe to", "When should I", "Which tool helps me")
_VERBS = ("fix", "clean", "replace", "compare", "choose", "move", "pay for", "insure", "paint", "store")


def _unique_question(i: int) -> str:
    r = (i * 6364136223846793005 + 1442695040888963407) % 2**64
    picks = [_WORDS[(r >> (8 * k)) % len(_WORDS)] for k in range(4)]
    return (f"{_ASKS[r % len(_ASKS)]} {_VERBS[(r >> 40) % len(_VERBS)]} the {picks[0]} near the {picks[1]} "
            f"after the {picks[2]} broke my {picks[3]}? (ref {i}-{_RUN})")


def _body(i: int, repeat_share: float, pool: list[str]) -> dict[str, Any]:
    # a fixed, spread-out half of the indices repeat one of 64 questions (cache hits once seen)
    repeat = repeat_share > 0 and (i * 2654435761 % 1000) / 1000 < repeat_share
    text = pool[i % len(pool)] if repeat else _unique_question(i)
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 32}


async def _load(url: str, rate: float, seconds: float, headers: dict[str, str], repeat_share: float,
                offset: int = 0) -> dict[str, Any]:
    """Open-loop load: request i is due at start + i / rate; its latency counts from then."""
    import aiohttp

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    ids: list[str] = []
    total = int(rate * seconds)
    pool = [f"question number {i} about the refund policy of order {i * 7919 % 100000}" for i in range(64)]
    lag: list[float] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(i: int, due: float) -> None:
            body = json.dumps(_body(offset + i, repeat_share, pool))
            try:
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors[str(r.status)] += 1
                        return
                    rid = r.headers.get("x-costmw-request-id")
                    if rid:
                        ids.append(rid)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                return
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag.append(-delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
        sent_in = time.perf_counter() - start
        await asyncio.gather(*tasks)
    ms = sorted(x * 1000 for x in latencies)
    return {"sent": total, "ok": len(latencies), "errors": dict(errors),
            "achieved_rps": total / max(sent_in, 1e-9),
            "generator_max_lag_ms": max(lag, default=0.0) * 1000,
            "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99),
            "max_ms": ms[-1] if ms else float("nan"), "_ids": ids}


def _run_load(url: str, rate: float, seconds: float, headers: dict[str, str], repeat_share: float,
              offset: int = 0) -> dict[str, Any]:
    coro = _load(url, rate, seconds, headers, repeat_share, offset)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _gateway_config(tmp: Path, upstream: str, plugins: list[Any], name: str) -> Path:
    config = {
        "plugins": plugins,
        "targets": [{"kind": "openai", "model": MODEL, "api_base": upstream, "api_key": "sk-local-upstream",
                     "retries": 0}],
        "ledger": str(tmp / f"{name}-ledger.db"),
        "server": {"keys": str(tmp / "keys.db"), "metrics": True},
    }
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def _ledger_check(path: Path, answered: list[str]) -> dict[str, Any]:
    """Every answered request id has exactly one row: lost = answered without a row, double_booked =
    rows beyond the first of any request id."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = dict(db.execute("SELECT request_id, COUNT(*) FROM calls GROUP BY request_id").fetchall())
        hits = db.execute("SELECT COUNT(*) FROM calls WHERE served_by LIKE 'cache:%'").fetchone()[0]
        rows = sum(counts.values())
    finally:
        db.close()
    lost = sum(1 for rid in set(answered) if rid not in counts)
    double = sum(n - 1 for n in counts.values() if n > 1)
    return {"rows": rows, "answered": len(answered), "lost": lost, "double_booked": double,
            "cache_hits": hits}


def _litellm_server(tmp: Path, upstream_url: str, port: int, workers: int) -> tuple[Server, dict[str, str]] | None:
    proxy_bin = PROXY_VENV / "bin" / "litellm"
    if not proxy_bin.exists():
        print(f"(LiteLLM Proxy rows skipped: {proxy_bin} not found; `make bench` installs litellm[proxy] there)")
        return None
    cfg = tmp / "litellm.yaml"
    cfg.write_text(
        f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n"
        f"      model: openai/{MODEL}\n      api_base: {upstream_url}\n"
        "      api_key: sk-local-upstream\n"
        "litellm_settings:\n  cache: false\n  telemetry: false\n")
    master = "sk-bench-" + os.urandom(16).hex()  # the proxy refuses to start without one
    server = Server([str(proxy_bin), "--config", str(cfg), "--port", str(port), "--num_workers", str(workers)],
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    ready_url=f"http://127.0.0.1:{port}/health/liveliness",
                    env={"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": master})
    return server, {"authorization": f"Bearer {master}"}


def sustained(rows: list[dict[str, Any]], setting: str) -> float | None:
    """The highest offered rate of ``setting`` that was sustained (see SUSTAINED_ADDED_P99_MS)."""
    good = [r["rate"] for r in rows if r["setting"] == setting and not r["errors"]
            and r["achieved_rps"] >= 0.95 * r["rate"] and r["added_ms"]["p99"] < SUSTAINED_ADDED_P99_MS]
    return max(good) if good else None


def _markdown(rows: list[dict[str, Any]], skipped: list[dict[str, Any]], ledgers: dict[str, dict[str, Any]],
              out: dict[str, Any]) -> str:
    """The results as a Markdown table (for docs/gateway.md)."""
    lines = ["| setting | rate/s | ok | p50 / p99 ms | added p50 / p95 / p99 ms | CPU ms per 1k | RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        added = "-" if r["setting"] == "direct" else " / ".join(
            f"{r['added_ms'][k]:+.1f}" for k in ("p50", "p95", "p99"))
        cpu = f"{r['cpu_ms_per_1k']:.0f}" if "cpu_ms_per_1k" in r else "-"
        rss = f"{r['rss_mib']:.0f}" if "rss_mib" in r else "-"
        lines.append(f"| {r['setting']} | {r['rate']:.0f} | {r['ok']}/{r['sent']} | "
                     f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {added} | {cpu} | {rss} |")
    for r in skipped:
        lines.append(f"| {r['setting']} | {r['rate']:.0f} | not run: most requests failed at "
                     f"{r['saturated_at']:.0f}/s | | | | |")
    lines += ["", "| setting | highest sustained rate, 1 worker | ledger |", "|---|---:|---|"]
    for label, best in out["sustained"].items():
        if not any(r["setting"] == label for r in rows):
            continue
        ledger = ledgers.get(label)
        lines.append(f"| {label} | {'-' if best is None else f'{best:.0f}/s'} | "
                     + ("-" if ledger is None else f"{ledger['answered']} answered, {ledger['lost']} lost, "
                        f"{ledger['double_booked']} double-booked") + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SECONDS:.0f} s at {', '.join(f'{r:.0f}' for r in QUICK_RATES)} requests/s")
    parser.add_argument("--rates", default="100,300,1000", help="offered rates, requests/s (comma-separated)")
    parser.add_argument("--duration", "--seconds", dest="duration", type=float, default=60.0,
                        help="seconds of load per rate")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep-going", action="store_true",
                        help="run every rate even after most requests of a lower rate failed")
    parser.add_argument("--settings", default="direct,none,misses,hits,litellm",
                        help="which settings to run: direct, none (no plugins), misses, hits, litellm")
    args = parser.parse_args(argv)
    rates = list(QUICK_RATES) if args.quick else sorted(float(r) for r in args.rates.split(","))
    seconds = QUICK_SECONDS if args.quick else args.duration
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
    default_plugins: list[Any] = [{"semantic_cache": {"store": "memory"}}, "prompt_minifier", "batcher"]
    all_settings: list[tuple[str, str, Any, float]] = [
        ("direct", "direct", None, 0.0),
        ("none", "costmw, no plugins", [], 0.0),
        ("misses", "costmw, default plugins, misses", default_plugins, 0.0),
        ("hits", "costmw, default plugins, 50% hits", default_plugins, 0.5),
        ("litellm", "LiteLLM Proxy, no cache", "litellm", 0.0),
    ]
    chosen = {s.strip() for s in args.settings.split(",")}
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    ledgers: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    print(f"gateway benchmark: {seconds:.0f} s per rate at {', '.join(f'{r:.0f}' for r in rates)} requests/s, "
          f"{args.workers} worker(s), upstream delay {UPSTREAM_DELAY_S * 1000:.0f} ms", flush=True)
    with Server([python, "-m", "benchmarks._fast_upstream", "--port", str(up_port),
                 "--delay", str(UPSTREAM_DELAY_S)], upstream_url + "/models"):
        for key, label, plugins, repeat in all_settings:
            if key not in chosen:
                continue
            port = _free_port()
            server: Server | None = None
            headers: dict[str, str] = {}
            if plugins is None:
                url = upstream_url + "/chat/completions"
            elif plugins == "litellm":
                made = _litellm_server(tmp, upstream_url, port, args.workers)
                if made is None:
                    continue
                server, headers = made
                url = server.url
            else:
                cfg = _gateway_config(tmp, upstream_url, plugins, key)
                server = Server([python, "-m", "costmw.cli", "serve", "--config", str(cfg), "--port", str(port),
                                 "--workers", str(args.workers)], f"http://127.0.0.1:{port}/v1/chat/completions",
                                ready_url=f"http://127.0.0.1:{port}/health")
                url, headers = server.url, auth
            if server is not None:
                try:
                    server.__enter__()
                except RuntimeError as exc:
                    print(f"({label} skipped: {exc})")
                    continue
            answered: list[str] = []
            try:
                # warm up (models load, connection pools fill), then measure each rate
                warm = _run_load(url, 50, 2.0, headers, repeat, offset=10_000_000)
                answered += warm.pop("_ids")
                for n, rate in enumerate(rates):
                    failed = [r for r in rows if r["setting"] == label and r["ok"] < 0.5 * r["sent"]]
                    if failed and not args.keep_going:
                        print(f"  {label} @ {rate:.0f}/s: not run (most requests failed at "
                              f"{failed[0]['rate']:.0f}/s already)", flush=True)
                        skipped.append({"setting": label, "rate": rate, "saturated_at": failed[0]["rate"]})
                        continue
                    before = server.usage() if server is not None else (0.0, 0.0)
                    result = _run_load(url, rate, seconds, headers, repeat, offset=n * 1_000_000)
                    after = server.usage() if server is not None else (0.0, 0.0)
                    answered += result.pop("_ids")
                    row: dict[str, Any] = {"setting": label, "rate": rate, **result}
                    if server is not None:
                        row["cpu_ms_per_1k"] = (after[0] - before[0]) * 1000 / max(result["sent"], 1) * 1000
                        row["rss_mib"] = after[1]
                    rows.append(row)
                    print(f"  {label} @ {rate:.0f}/s: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                          f"ok {row['ok']}/{row['sent']}, errors {row['errors'] or 0}"
                          + (f", CPU {row['cpu_ms_per_1k']:.0f} ms per 1k" if server is not None else ""), flush=True)
                    time.sleep(1.0)
            finally:
                if server is not None:
                    server.__exit__()  # the gateway writes its last ledger rows as it stops
            if plugins not in (None, "litellm"):
                ledgers[label] = _ledger_check(tmp / f"{key}-ledger.db", answered)

    direct = {r["rate"]: r for r in rows if r["setting"] == "direct"}
    table = []
    for r in rows:
        d = direct.get(r["rate"])
        added = [r[k] - d[k] if d else float("nan") for k in ("p50_ms", "p95_ms", "p99_ms")]
        r["added_ms"] = {"p50": added[0], "p95": added[1], "p99": added[2]}
        ledger = ledgers.get(r["setting"])
        table.append([r["setting"], f"{r['rate']:.0f}", f"{r['achieved_rps']:.0f}", f"{r['ok']}/{r['sent']}",
                      f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                      "-" if r["setting"] == "direct" else f"{added[0]:+.1f} / {added[1]:+.1f} / {added[2]:+.1f}",
                      f"{r['cpu_ms_per_1k']:.0f}" if "cpu_ms_per_1k" in r else "-",
                      f"{r['rss_mib']:.0f}" if "rss_mib" in r else "-"])
    print_table(f"gateway under load (upstream delay {UPSTREAM_DELAY_S * 1000:.0f} ms, {seconds:.0f} s per rate, "
                f"{args.workers} worker(s); latency from each request's scheduled send time)",
                ["setting", "rate/s", "achieved/s", "ok", "p50 ms", "p99 ms", "added p50/p95/p99 ms",
                 "CPU ms per 1k req", "RSS MiB"], table)
    summary = []
    for _, label, plugins, _ in all_settings:
        if plugins is None or not any(r["setting"] == label for r in rows):
            continue
        best = sustained(rows, label)
        ledger = ledgers.get(label)
        summary.append([label, "none of those tried" if best is None else f"{best:.0f}/s",
                        "-" if ledger is None else f"{ledger['answered']} answered, {ledger['rows']} rows: "
                        f"{ledger['lost']} lost, {ledger['double_booked']} double-booked"
                        + (f", {ledger['cache_hits']} cache hits" if ledger["cache_hits"] else "")])
    print_table(f"highest sustained rate per {args.workers} worker(s) (no errors, >= 95% of the offered rate, "
                f"added p99 < {SUSTAINED_ADDED_P99_MS:.0f} ms) and the ledger check",
                ["setting", "highest sustained", "ledger"], summary)
    for r in skipped:
        print(f"  {r['setting']} @ {r['rate']:.0f}/s: not run, most requests failed at {r['saturated_at']:.0f}/s")
    out = {"rows": rows, "skipped": skipped, "ledgers": ledgers, "seconds": seconds, "rates": rates,
           "workers": args.workers,
           "upstream_delay_s": UPSTREAM_DELAY_S, "sustained_added_p99_ms": SUSTAINED_ADDED_P99_MS,
           "sustained": {label: sustained(rows, label) for _, label, plugins, _ in all_settings
                         if plugins is not None},
           "wall_s": time.perf_counter() - began, "cpus": os.cpu_count(),
           "load_average_at_end": os.getloadavg()}
    path = write_result("gateway", out)
    path.with_suffix(".md").write_text(_markdown(rows, skipped, ledgers, out))
    print(f"(written to {path}; {out['wall_s']:.0f} s in all)")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
