"""Reproducible benchmarks: each bench_*.py prints a table and writes JSON to benchmarks/results/."""
