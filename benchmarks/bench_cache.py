"""Semantic cache benchmark: quality (hit rate, precision, false hits) and lookup speed, costmw
side by side with GPTCache on the same embeddings.

    python -m benchmarks.bench_cache           # full: 1k/10k/100k/1M entries
    python -m benchmarks.bench_cache --quick   # under two minutes: 1k/10k entries
    python -m benchmarks.bench_cache --dev     # quality on costmw's own tuning data only

Quality uses GPTCache's mock_data (every origin stored, every paraphrase asked; a hit is correct
only when it returns its own origin) and costmw's held-out pairs in benchmarks/data/cache_pairs.tsv.
``--dev`` measures the same on the data the cache's rules were tuned on instead
(benchmarks/data/cache_dev_siblings.tsv and tests/plugins/cache/data/verifier_dev.tsv).
Speed uses random unit vectors; "embedding included" adds all-MiniLM-L6-v2's time per query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import string
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from costmw.plugins.cache import MemoryStore, SemanticCache, SQLiteStore

from benchmarks._cache_support import (
    DEV_PAIRS,
    RESULTS,
    GPTCacheSide,
    PrecomputedEmbedder,
    gptcache_available,
    gptcache_threshold_for_cosine,
    load_dev_siblings,
    load_mock_data,
    load_pairs,
    minilm_vectors,
    percentiles,
)
from costmw import Request, Response
from costmw.embeddings import aembed_request

MODEL = "gpt-4o-mini"
THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
DEFAULT = 0.8


def _request(text: str, namespace: str | None = None) -> Request:
    metadata = {"namespace": namespace} if namespace else None
    return Request.create([{"role": "user", "content": text}], MODEL, metadata=metadata)


# -- quality ---------------------------------------------------------------------------------
async def _costmw_mock(data: list[dict[str, str]], vectors: dict[str, np.ndarray], thresholds: tuple[float, ...],
                       verifier: bool = True, margin: float = 0.02) -> list[dict[str, Any]]:
    cache = SemanticCache(store=MemoryStore(max_entries=None), embedder=PrecomputedEmbedder(vectors),
                          verifier=verifier, margin=margin)
    for origin in dict.fromkeys(d["origin"] for d in data):
        await cache.astore(_request(origin), Response(text=origin))
    rows = []
    for threshold in thresholds:
        cache.threshold = threshold
        hits = correct = 0
        for pair in data:
            found = await cache.alookup(_request(pair["similar"]))
            if found is not None:
                hits += 1
                correct += found.text == pair["origin"]
        rows.append(_quality_row(threshold, hits, correct, len(data)))
    return rows


def _quality_row(threshold: float, hits: int, correct: int, total: int, **extra: Any) -> dict[str, Any]:
    return {"threshold": threshold, **extra, "hit_rate": round(hits / total, 4),
            "precision": round(correct / hits, 4) if hits else None, "correct_hit_rate": round(correct / total, 4)}


def _gptcache_mock(data: list[dict[str, str]], vectors: dict[str, np.ndarray], quick: bool) -> list[dict[str, Any]]:
    side = GPTCacheSide(vectors)
    origins = list(dict.fromkeys(d["origin"] for d in data))
    side.load(origins, origins)
    rows = []
    cosines = () if quick else THRESHOLDS
    settings = [(None, 0.8)] + [(c, gptcache_threshold_for_cosine(c)) for c in cosines]
    for cosine, native in settings:
        side.set_threshold(native)
        hits = correct = 0
        for pair in data:
            answer = side.get(pair["similar"])
            if answer is not None:
                hits += 1
                correct += answer == pair["origin"]
        label = "default (0.8 = cosine 0.6)" if cosine is None else f"cosine {cosine}"
        rows.append(_quality_row(cosine if cosine is not None else 0.6, hits, correct, len(data),
                                 gptcache_threshold=round(native, 4), setting=label))
    side.close()
    return rows


async def _costmw_pairs(pairs: list[tuple[bool, str, str, str]], vectors: dict[str, np.ndarray],
                        threshold: float) -> dict[str, Any]:
    cache = SemanticCache(store=MemoryStore(max_entries=None), embedder=PrecomputedEmbedder(vectors),
                          threshold=threshold)
    outcomes: list[tuple[bool, str, bool]] = []
    for i, (same, kind, a, b) in enumerate(pairs):
        for j, (stored, asked) in enumerate(((a, b), (b, a))):
            namespace = f"pair-{i}-{j}"
            await cache.astore(_request(stored, namespace), Response(text=f"answer for: {stored}"))
            outcomes.append((same, kind, await cache.alookup(_request(asked, namespace)) is not None))
    return _pair_summary(outcomes)


def _gptcache_pairs(pairs: list[tuple[bool, str, str, str]], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    outcomes: list[tuple[bool, str, bool]] = []
    for same, kind, a, b in pairs:
        for stored, asked in ((a, b), (b, a)):
            side = GPTCacheSide(vectors)
            side.load([stored], [f"answer for: {stored}"])
            outcomes.append((same, kind, side.get(asked) is not None))
            side.close()
    return _pair_summary(outcomes)


def _pair_summary(outcomes: list[tuple[bool, str, bool]]) -> dict[str, Any]:
    negatives = [(kind, hit) for same, kind, hit in outcomes if not same]
    positives = [hit for same, _, hit in outcomes if same]
    by_kind: dict[str, list[int]] = {}
    for kind, hit in negatives:
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += hit
        by_kind[kind][1] += 1
    return {"false_hit_rate": round(sum(h for _, h in negatives) / len(negatives), 4),
            "false_hits": sum(h for _, h in negatives), "negative_queries": len(negatives),
            "paraphrase_hit_rate": round(sum(positives) / len(positives), 4) if positives else None,
            "false_hits_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())}}


def quality(quick: bool) -> dict[str, Any]:
    data = load_mock_data()
    pairs = load_pairs()
    texts = [t for _, _, a, b in pairs for t in (a, b)]
    if data is not None:
        texts += [d["origin"] for d in data] + [d["similar"] for d in data]
    vectors = minilm_vectors(texts)
    out: dict[str, Any] = {"embedder": "all-MiniLM-L6-v2", "default_threshold": DEFAULT}
    if data is None:
        out["mock_data"] = "skipped: ../shared/data/gptcache/mock_data.json not found"
    else:
        thresholds = (0.7, DEFAULT, 0.9) if quick else THRESHOLDS
        out["mock_data"] = {"queries": len(data), "origins": len(set(d["origin"] for d in data)),
                            "costmw": asyncio.run(_costmw_mock(data, vectors, thresholds))}
        if not quick:
            out["mock_data"]["costmw_without_verifier_or_margin"] = asyncio.run(
                _costmw_mock(data, vectors, thresholds, verifier=False, margin=0.0))
    why_not = gptcache_available()
    if why_not is None and data is not None:
        out["mock_data"]["gptcache"] = _gptcache_mock(data, vectors, quick)
    out["hard_pairs"] = {"pairs": len(pairs), "costmw": asyncio.run(_costmw_pairs(pairs, vectors, DEFAULT))}
    if why_not is None:
        out["hard_pairs"]["gptcache_default"] = _gptcache_pairs(pairs, vectors)
    else:
        out["gptcache"] = f"skipped: {why_not}"
    return out


def quality_dev() -> dict[str, Any]:
    """The quality measures on costmw's tuning data (where thresholds and rules may be tuned)."""
    data = load_dev_siblings()
    pairs = load_pairs(DEV_PAIRS)
    vectors = minilm_vectors([d["origin"] for d in data] + [d["similar"] for d in data]
                             + [t for _, _, a, b in pairs for t in (a, b)])
    origins = len({d["origin"] for d in data})
    return {"embedder": "all-MiniLM-L6-v2", "siblings": {
        "queries": len(data), "origins": origins, "groups": len({d["group"] for d in data}),
        "costmw": asyncio.run(_costmw_mock(data, vectors, THRESHOLDS)),
        "costmw_without_verifier_or_margin": asyncio.run(
            _costmw_mock(data, vectors, (DEFAULT,), verifier=False, margin=0.0))},
        "pairs": {"pairs": len(pairs), "costmw": asyncio.run(_costmw_pairs(pairs, vectors, DEFAULT))}}


def _print_dev(dev: dict[str, Any]) -> None:
    s = dev["siblings"]
    print(f"\ndev siblings: {s['queries']} paraphrases of {s['origins']} origins in {s['groups']} groups")
    print(f"{'system':<34}{'threshold':>10}{'hit rate':>10}{'precision':>11}")
    for label, key in (("costmw", "costmw"), ("costmw, verifier+margin off", "costmw_without_verifier_or_margin")):
        for row in s[key]:
            mark = " *" if key == "costmw" and row["threshold"] == DEFAULT else ""
            print(f"{label + mark:<34}{row['threshold']:>10}{row['hit_rate']:>10.3f}{(row['precision'] or 0):>11.4f}")
    r = dev["pairs"]["costmw"]
    print(f"dev pairs ({dev['pairs']['pairs']}): false hits {r['false_hits']}/{r['negative_queries']}, "
          f"paraphrase hits {r['paraphrase_hit_rate']:.1%}")


# -- speed -----------------------------------------------------------------------------------
def _word(i: int) -> str:
    letters = string.ascii_lowercase
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += letters[r]
        if i == 0:
            return out


def _synthetic(size: int, queries: int, dim: int = 384, seed: int = 7) -> tuple[list[str], list[str], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((size, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    stored = [f"tell me about topic {_word(i)}" for i in range(size)]
    vectors: dict[str, Any] = dict(zip(stored, matrix))
    asked = []
    for i in rng.choice(size, size=queries, replace=False):
        text = f"please tell me about topic {_word(int(i))}"
        noisy = matrix[i] + 0.25 * rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
        vectors[text] = noisy / np.linalg.norm(noisy)
        asked.append(text)
    return stored, asked, vectors


async def _costmw_speed(store: Any, stored: list[str], asked: list[str], vectors: dict[str, Any]) -> dict[str, Any]:
    embedder = PrecomputedEmbedder(vectors)
    cache = SemanticCache(store=store, embedder=embedder)
    started = time.perf_counter()
    for text in stored:
        await cache.astore(_request(text), Response(text=f"answer: {text}"))
    load_s = time.perf_counter() - started
    warm = time.perf_counter()
    await cache.alookup(_request(asked[0]))  # builds the ANN index after a bulk load, if there is one
    first_s = time.perf_counter() - warm
    samples, hits = [], 0
    for text in asked:
        request = _request(text)
        # "embedding excluded": the query's vector is already on the request, as when another
        # plugin embedded it first (no embedding work, no hop to a worker thread)
        await aembed_request(request, embedder)
        t0 = time.perf_counter()
        found = await cache.alookup(request)
        samples.append(time.perf_counter() - t0)
        hits += found is not None
    await cache.aclose()
    return {**percentiles(samples), "hit_rate": round(hits / len(asked), 3), "load_s": round(load_s, 1),
            "first_lookup_s": round(first_s, 2), "samples": samples}


def _gptcache_speed(stored: list[str], asked: list[str], vectors: dict[str, Any]) -> dict[str, Any]:
    side = GPTCacheSide(vectors, threshold=gptcache_threshold_for_cosine(DEFAULT))
    started = time.perf_counter()
    side.load(stored, [f"answer: {t}" for t in stored])
    load_s = time.perf_counter() - started
    samples, hits = [], 0
    for text in asked:
        t0 = time.perf_counter()
        found = side.get(text)
        samples.append(time.perf_counter() - t0)
        hits += found is not None
    side.close()
    return {**percentiles(samples), "hit_rate": round(hits / len(asked), 3), "load_s": round(load_s, 1),
            "samples": samples}


def _embedding_samples(count: int) -> list[float]:
    """all-MiniLM-L6-v2's time for one query each, on texts it has not seen."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from costmw.embeddings import LocalEmbedder

    embedder = LocalEmbedder(cache_size=1)
    embedder.embed(["warm up"])
    data = load_mock_data() or [{"similar": f"question number {_word(i)} about caching"} for i in range(count)]
    samples = []
    for d in data[:count]:
        t0 = time.perf_counter()
        embedder.embed([d["similar"]])
        samples.append(time.perf_counter() - t0)
    return samples


def speed(quick: bool, sizes: list[int], ann: bool = True) -> dict[str, Any]:
    queries = 100 if quick else 300
    embed = _embedding_samples(queries)
    rows: list[dict[str, Any]] = []
    recall: list[dict[str, Any]] = []
    why_not = gptcache_available()
    for size in sizes:
        stored, asked, vectors = _synthetic(size, queries)
        runs: list[tuple[str, Any]] = []
        if size <= 100_000:
            runs.append(("costmw memory, exact numpy", lambda: MemoryStore(max_entries=None, ann=False)))
        if size >= 5_000:
            runs.append(("costmw memory, sign-code prefilter", lambda: MemoryStore(max_entries=None)))
            recall.append(_prefilter_recall(stored, asked, vectors))
        if ann and size >= 20_000:
            runs.append(("costmw memory, ANN (usearch)", lambda: MemoryStore(max_entries=None, ann=True, ann_min=1)))
        if size <= 100_000:
            runs.append(("costmw sqlite (default store)", lambda: SQLiteStore(
                Path(tempfile.mkdtemp(prefix="costmw-bench-")) / "c.db", max_entries=None)))
        for name, make in runs:
            result = asyncio.run(_costmw_speed(make(), stored, asked, vectors))
            rows.append(_speed_row(size, name, result, embed))
        if why_not is None and size <= 100_000:
            rows.append(_speed_row(size, "gptcache sqlite + faiss", _gptcache_speed(stored, asked, vectors), embed))
    return {"queries_per_row": queries, "embedding_ms": percentiles(embed), "rows": rows,
            "prefilter_recall": recall,
            "gptcache": why_not or "sqlite + faiss, SearchDistanceEvaluation, same cosine threshold"}


def _prefilter_recall(stored: list[str], asked: list[str], vectors: dict[str, Any]) -> dict[str, Any]:
    """How often the sign-code prefilter returns exact search's top-1: for the benchmark's queries
    (a neighbour at cosine ~0.97) and for queries at cosine exactly 0.8 (the default threshold)."""
    from costmw.plugins.cache._index import VectorIndex

    exact, bits = VectorIndex(len(vectors[stored[0]]), ann=False), VectorIndex(len(vectors[stored[0]]), ann="bits")
    for i, text in enumerate(stored):
        exact.add(str(i), vectors[text])
        bits.add(str(i), vectors[text])
    rng = np.random.default_rng(11)
    hard = []
    for i in rng.choice(len(stored), size=len(asked), replace=False):
        v = vectors[stored[int(i)]]
        noise = rng.standard_normal(v.shape[0]).astype(np.float32)
        noise -= (noise @ v) * v
        hard.append(0.8 * v + 0.6 * noise / np.linalg.norm(noise))
    out: dict[str, Any] = {"entries": len(stored), "uses_prefilter": bits.uses_prefilter}
    for name, queries in (("benchmark_queries", [vectors[t] for t in asked]), ("queries_at_cosine_0.8", hard)):
        same = sum(exact.search(q, 1)[0][0] == bits.search(q, 1)[0][0] for q in queries)
        out[name] = round(same / len(queries), 4)
    return out


def _speed_row(size: int, name: str, result: dict[str, Any], embed: list[float]) -> dict[str, Any]:
    samples = result.pop("samples")
    with_embedding = [s + embed[i % len(embed)] for i, s in enumerate(samples)]
    return {"entries": size, "system": name, **result,
            "with_embedding": percentiles(with_embedding)}


# -- report ----------------------------------------------------------------------------------
def _print_tables(results: dict[str, Any]) -> None:
    q = results["quality"]
    mock = q.get("mock_data")
    if isinstance(mock, dict):
        print(f"\nmock_data: {mock['queries']} paraphrase queries, {mock['origins']} origins ({q['embedder']})")
        print(f"{'system':<40}{'threshold':>10}{'hit rate':>10}{'precision':>11}{'correct':>9}")
        for label, key in (("costmw", "costmw"), ("costmw, verifier+margin off", "costmw_without_verifier_or_margin"),
                           ("gptcache", "gptcache")):
            for row in mock.get(key, []):
                name = f"{label} ({row['setting']})" if "setting" in row else label
                mark = " *" if key == "costmw" and row["threshold"] == DEFAULT else ""
                print(f"{name + mark:<40}{row['threshold']:>10}{row['hit_rate']:>10.3f}"
                      f"{(row['precision'] or 0):>11.4f}{row['correct_hit_rate']:>9.3f}")
    else:
        print(f"\nmock_data: {mock}")
    hp = q["hard_pairs"]
    print(f"\nheld-out pairs ({hp['pairs']} pairs, both directions), threshold {DEFAULT}")
    for key in ("costmw", "gptcache_default"):
        if key in hp:
            r = hp[key]
            print(f"  {key:<18} false hits {r['false_hits']}/{r['negative_queries']} ({r['false_hit_rate']:.1%}), "
                  f"paraphrase hits {r['paraphrase_hit_rate']:.1%}  by kind {r['false_hits_by_kind']}")
    s = results["speed"]
    print(f"\nlookup latency, {s['queries_per_row']} queries per row; MiniLM embedding alone: "
          f"p50 {s['embedding_ms']['p50_ms']:.2f} ms")
    print(f"{'entries':>9}  {'system':<36}{'p50 ms':>9}{'p99 ms':>9}{'+embed p50':>12}{'+embed p99':>12}{'hits':>6}")
    for r in s["rows"]:
        print(f"{r['entries']:>9}  {r['system']:<36}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
              f"{r['with_embedding']['p50_ms']:>12.2f}{r['with_embedding']['p99_ms']:>12.2f}{r['hit_rate']:>6.2f}")
    for r in s.get("prefilter_recall", []):
        print(f"sign-code prefilter at {r['entries']} entries: top-1 equal to exact search for "
              f"{r['benchmark_queries']:.1%} of the benchmark's queries, {r['queries_at_cosine_0.8']:.1%} of "
              f"queries at cosine 0.8")


def _single_threaded() -> Any:
    """One BLAS/OpenMP thread for both systems: the cores are shared, and matrix-vector products
    this size are memory-bound, so more threads only add contention."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k entries only (under two minutes)")
    parser.add_argument("--sizes", default=None, help="comma-separated entry counts, e.g. 1000,100000")
    parser.add_argument("--dev", action="store_true", help="quality on costmw's tuning data only (no speed)")
    parser.add_argument("--no-ann", action="store_true", help="skip the usearch HNSW rows (slow to build at 1M)")
    parser.add_argument("--out", default="cache.json", help="file name under benchmarks/results/")
    args = parser.parse_args(argv)
    if args.dev:
        with _single_threaded():
            dev = quality_dev()
        _print_dev(dev)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "cache_dev.json").write_text(json.dumps(dev, indent=2), encoding="utf-8")
        return dev
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    started = time.time()
    with _single_threaded():
        results: dict[str, Any] = {
            "benchmark": "cache", "quick": args.quick, "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "threads": "one BLAS/OpenMP thread for both systems", "load_average_start": os.getloadavg()[0],
            "quality": quality(args.quick), "speed": speed(args.quick, sizes, ann=not args.no_ann)}
    results["seconds"] = round(time.time() - started, 1)
    results["load_average_end"] = os.getloadavg()[0]
    _print_tables(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {RESULTS / args.out} in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
