"""Helpers shared by the benchmarks: percentiles, result files, table printing."""

from __future__ import annotations

import importlib.util
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


GGUF_HINT = 'llama-cpp-python is not installed: run `make install-gguf` (pip install "costmw[gguf]")'


def llama_cpp_missing() -> str | None:
    """Why rows that run llama.cpp are skipped here, or None when llama-cpp-python is installed."""
    return GGUF_HINT if importlib.util.find_spec("llama_cpp") is None else None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_us(samples_s: list[float]) -> dict[str, float]:
    us = [s * 1e6 for s in samples_s]
    return {"p50_us": percentile(us, 50), "p99_us": percentile(us, 99), "mean_us": statistics.fmean(us)}


def write_result(topic: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"topic": topic, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
               **data}
    path = RESULTS / f"{topic}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
