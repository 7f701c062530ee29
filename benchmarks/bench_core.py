"""Chain overhead per call (0 and 4 pass-through plugins, sync and async) and `import costmw` time.

Overhead = p50 of a call through the chain minus p50 of calling the same MockTarget directly,
measured side by side in one run (interleaved rounds, so machine noise hits both alike).
Goals: under 50 µs per plugin and under 300 µs in all at p50; `import costmw` under 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import percentile, print_table, write_result


def _import_time_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t=time.perf_counter(); import costmw; "
             "print((time.perf_counter()-t)*1000)"], capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip()))
    return percentile(samples, 50)


async def _async_rounds(n: int, rounds: int) -> dict[str, list[float]]:
    from costmw.adapters import MockTarget
    from costmw.plugins import PassThrough

    import costmw

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    target = MockTarget(lambda r: "Paris", record=False)
    chains = {p: costmw.Chain(plugins=[PassThrough() for _ in range(p)], targets=[target]) for p in (0, 4)}
    request = costmw.Request.create(messages, "mock")
    out: dict[str, list[float]] = {"direct": [], "chain0": [], "chain4": []}
    clock = time.perf_counter
    for _ in range(rounds):
        for _ in range(n):
            t = clock()
            await target.acomplete(request)
            out["direct"].append(clock() - t)
        for p in (0, 4):
            chain = chains[p]
            for _ in range(n):
                t = clock()
                await chain.acomplete(messages, "mock")
                out[f"chain{p}"].append(clock() - t)
    return out


def _sync_rounds(n: int, rounds: int) -> dict[str, list[float]]:
    from costmw.adapters import MockTarget
    from costmw.plugins import PassThrough

    import costmw

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    target = MockTarget(lambda r: "Paris", record=False)
    chains = {p: costmw.Chain(plugins=[PassThrough() for _ in range(p)], targets=[target]) for p in (0, 4)}
    request = costmw.Request.create(messages, "mock")
    loop = asyncio.new_event_loop()
    out: dict[str, list[float]] = {"direct": [], "chain0": [], "chain4": []}
    clock = time.perf_counter
    for _ in range(rounds):
        for _ in range(n):
            t = clock()
            loop.run_until_complete(target.acomplete(request))
            out["direct"].append(clock() - t)
        for p in (0, 4):
            chain = chains[p]
            for _ in range(n):
                t = clock()
                chain.complete(messages, "mock")
                out[f"chain{p}"].append(clock() - t)
    loop.close()
    for chain in chains.values():
        chain.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args(argv)
    n, rounds = (500, 4) if args.quick else (2000, 10)
    results: dict[str, Any] = {"calls_per_variant": n * rounds}
    rows = []
    for mode, samples in (("async", asyncio.run(_async_rounds(n, rounds))), ("sync", _sync_rounds(n, rounds))):
        direct = percentile(samples["direct"], 50) * 1e6
        for p in (0, 4):
            p50 = percentile(samples[f"chain{p}"], 50) * 1e6
            overhead = p50 - direct
            per_plugin = (p50 - percentile(samples["chain0"], 50) * 1e6) / p if p else float("nan")
            results[f"{mode}_{p}_plugins"] = {"direct_p50_us": direct, "chain_p50_us": p50, "overhead_us": overhead,
                                              "per_plugin_us": per_plugin,
                                              "chain_p99_us": percentile(samples[f"chain{p}"], 99) * 1e6}
            rows.append([mode, p, direct, p50, overhead, per_plugin])
    results["import_ms_p50"] = _import_time_ms(5 if args.quick else 15)
    print_table("chain overhead per call (µs, p50)",
                ["mode", "plugins", "direct", "through chain", "overhead", "per plugin"], rows)
    print(f"\nimport costmw: {results['import_ms_p50']:.1f} ms (p50)")
    print("goals: per plugin < 50 µs, overhead < 300 µs, import < 150 ms")
    write_result("core", results)
    return results


if __name__ == "__main__":
    main()
