"""Run every benchmark: `python -m benchmarks [--quick] [names...]` (names like `core cache`)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description="Run costmw's benchmarks; each writes benchmarks/results/<name>.json")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="short versions of every benchmark")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    found = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    names = args.names or found
    unknown = [n for n in names if n not in found]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {found}")
    failed = []
    for name in names:
        print(f"\n===== benchmark: {name} =====", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            module.main(["--quick"] if args.quick else [])
        except Exception as exc:  # one failing benchmark does not hide the others
            failed.append(name)
            print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"({name}: {time.perf_counter() - started:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
