"""Semantic cache benchmark: quality (recall, false hits, precision) at the default setting, and
speed, costmw side by side with GPTCache (its defaults) on the same embedder.

    python -m benchmarks.bench_cache           # full: 1k/10k/100k/1M entries
    python -m benchmarks.bench_cache --quick   # 1k/10k entries, GPTCache on part of the devset

Quality:
- the validation pairs ``../shared/data/devsets/cache_pairs_dev.jsonl`` (a, b, same, kind): each
  pair both ways, one text stored in a cache that also holds 8 texts of other pairs, the other
  asked; recall on pairs that mean the same, false-hit rate on those that do not, per kind. Nothing
  in the cache was tuned on these pairs.
- GPTCache's mock_data, the held-out half of ``mock_data_split`` (the learned verifier trains on
  the other half): every origin stored, every paraphrase asked; precision and hit rate.
Speed: lookup latency on random unit vectors, excluding normalisation, embedding and verification
(the query's vector is already on the request; verifier off); the default verifier's time per
candidate; what the default cache adds to a call it cannot answer.
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
    REPO,
    RESULTS,
    SHARED_DATA,
    GPTCacheSide,
    PrecomputedEmbedder,
    gptcache_available,
    gptcache_threshold_for_cosine,
    load_mock_data,
    minilm_vectors,
    mock_data_split,
    percentiles,
)
from costmw import Request, Response
from costmw.embeddings import aembed_request

MODEL = "gpt-4o-mini"
DEFAULT = 0.8
DEVSET = SHARED_DATA / "devsets" / "cache_pairs_dev.jsonl"


def _request(text: str, namespace: str | None = None) -> Request:
    options = {"namespace": namespace} if namespace else None
    return Request.create([{"role": "user", "content": text}], MODEL, options=options)


# -- quality ---------------------------------------------------------------------------------
def _cache(vectors: dict[str, np.ndarray], **options: Any) -> SemanticCache:
    """A fresh in-memory SemanticCache at its defaults, on all-MiniLM-L6-v2 (texts the cache
    reads differently from how they were given, after normalisation, are embedded on the spot)."""
    return SemanticCache(store=MemoryStore(max_entries=None), embedder=PrecomputedEmbedder(vectors), **options)


async def _costmw_mock(data: list[dict[str, str]], vectors: dict[str, np.ndarray], **options: Any) -> dict[str, Any]:
    cache = _cache(vectors, **options)
    for origin in dict.fromkeys(d["origin"] for d in data):
        await cache.astore(_request(origin), Response(text=origin))
    hits = correct = 0
    for pair in data:
        found = await cache.alookup(_request(pair["similar"]))
        if found is not None:
            hits += 1
            correct += found.text == pair["origin"]
    return _quality_row(hits, correct, len(data))


def _traffic_check() -> Any:
    """Learning from traffic as a user would switch it on: 5% of semantic hits checked; the stand-in
    model answers a question the same way every time, so answers agree when they are equal."""
    from costmw.plugins.cache import TrafficCheck

    return TrafficCheck(rate=0.05, compare=lambda stored, new: stored == new, seed=0)


async def _settle(cache: SemanticCache) -> None:
    await asyncio.gather(*cache._background)  # the comparisons, before the next question


async def _costmw_mock_stream(data: list[dict[str, str]], vectors: dict[str, np.ndarray],
                              learn: bool) -> dict[str, Any]:
    """The held-out queries as a stream, as a deployed cache sees them: each miss is answered by the
    stand-in model (the origin's answer) and stored. With ``learn`` the cache learns from its own
    traffic; each decision is made before its own answer is seen. Reported for the whole stream and
    for its second half, with the threshold in use at the end."""
    check = _traffic_check() if learn else None
    cache = _cache(vectors, traffic_check=check)
    for origin in dict.fromkeys(d["origin"] for d in data):
        await cache.astore(_request(origin), Response(text=origin))
    outcomes = []
    for pair in data:
        request = _request(pair["similar"])
        found = await cache.alookup(request)
        if found is None:
            await cache.astore(request, Response(text=pair["origin"]))
            await _settle(cache)
        outcomes.append((found is not None, found is not None and found.text == pair["origin"]))
    half = outcomes[len(outcomes) // 2:]
    return {**_quality_row(sum(h for h, _ in outcomes), sum(c for _, c in outcomes), len(outcomes)),
            "second_half": _quality_row(sum(h for h, _ in half), sum(c for _, c in half), len(half)),
            **_learned(cache, check)}


def _learned(cache: SemanticCache, check: Any) -> dict[str, Any]:
    if check is None:
        return {}
    shipped = cache.verifier.threshold  # type: ignore[union-attr]
    return {"checked": cache.stats["checked"], "observed": check.stats["observed"],
            "nearest_wrong": check.stats["wrong"], "shipped_threshold": round(shipped, 4),
            "threshold_at_end": round(check.threshold(shipped, cache.max_error), 4)}


def _quality_row(hits: int, correct: int, total: int, **extra: Any) -> dict[str, Any]:
    return {**extra, "hit_rate": round(hits / total, 4), "precision": round(correct / hits, 4) if hits else None,
            "correct_hit_rate": round(correct / total, 4)}


def _gptcache_mock(data: list[dict[str, str]], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    side = GPTCacheSide(vectors)  # its default: similarity_threshold 0.8 (cosine 0.6)
    origins = list(dict.fromkeys(d["origin"] for d in data))
    side.load(origins, origins)
    hits = correct = 0
    for pair in data:
        answer = side.get(pair["similar"])
        if answer is not None:
            hits += 1
            correct += answer == pair["origin"]
    side.close()
    return _quality_row(hits, correct, len(data), setting="default (0.8 = cosine 0.6)")


Trial = tuple[int, dict[str, Any], str, str, list[str]]


def _pair_trials(pairs: list[dict[str, Any]], distractors: int = 8) -> list[Trial]:
    """Each pair both ways (store one text, ask with the other), in a cache that also holds
    ``distractors`` texts of other pairs, the same for both systems."""
    rng = np.random.default_rng(17)
    texts = [t for p in pairs for t in (p["a"], p["b"])]
    trials = []
    for i, pair in enumerate(pairs):
        for j, (stored, asked) in enumerate(((pair["a"], pair["b"]), (pair["b"], pair["a"]))):
            others = [texts[k] for k in rng.choice(len(texts), size=distractors + 2, replace=False)
                      if texts[k] not in (pair["a"], pair["b"])][:distractors]
            trials.append((2 * i + j, pair, stored, asked, others))
    return trials


async def _costmw_pairs(trials: list[Any], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    cache = _cache(vectors)
    outcomes: list[tuple[bool, str, bool]] = []
    for n, pair, stored, asked, others in trials:
        namespace = f"trial-{n}"
        for text in [*others, stored]:
            await cache.astore(_request(text, namespace), Response(text=f"answer for: {text}"))
        found = await cache.alookup(_request(asked, namespace))
        outcomes.append((pair["same"], pair["kind"], found is not None and found.text == f"answer for: {stored}"))
    return _pair_summary(outcomes)


async def _costmw_pairs_stream(trials: list[Any], vectors: dict[str, np.ndarray], learn: bool) -> dict[str, Any]:
    """The trials as one stream through one cache, in a fixed shuffled order (the file groups them
    by kind): on a miss the stand-in model answers the asked question (the stored text's answer for a
    paraphrase, its own for a look-alike). With ``learn`` the cache learns from its own traffic;
    each decision is made before its own answer is seen. Reported for the whole stream and for its
    second half."""
    check = _traffic_check() if learn else None
    cache = _cache(vectors, traffic_check=check)
    outcomes: list[tuple[bool, str, bool]] = []
    shuffled = [trials[i] for i in np.random.default_rng(3).permutation(len(trials))]
    for n, pair, stored, asked, others in shuffled:
        namespace = f"trial-{n}"
        for text in [*others, stored]:
            await cache.astore(_request(text, namespace), Response(text=f"answer for: {text}"))
        request = _request(asked, namespace)
        found = await cache.alookup(request)
        if found is None:
            await cache.astore(request, Response(text=f"answer for: {stored if pair['same'] else asked}"))
            await _settle(cache)
        outcomes.append((pair["same"], pair["kind"], found is not None and found.text == f"answer for: {stored}"))
    half = outcomes[len(outcomes) // 2:]
    return {**_pair_summary(outcomes), "second_half": _pair_summary(half), **_learned(cache, check)}


def _gptcache_pairs(trials: list[Any], vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    outcomes: list[tuple[bool, str, bool]] = []
    for _, pair, stored, asked, others in trials:
        side = GPTCacheSide(vectors)
        side.load([*others, stored], [f"answer for: {t}" for t in [*others, stored]])
        outcomes.append((pair["same"], pair["kind"], side.get(asked) == f"answer for: {stored}"))
        side.close()
    return _pair_summary(outcomes)


def _pair_summary(outcomes: list[tuple[bool, str, bool]]) -> dict[str, Any]:
    """Recall on pairs that mean the same, false-hit rate on pairs that do not, and both per kind."""
    by_kind: dict[str, list[int]] = {}
    for _, kind, hit in outcomes:
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += hit
        by_kind[kind][1] += 1
    positives = [hit for same, _, hit in outcomes if same]
    negatives = [hit for same, _, hit in outcomes if not same]
    same_kind = {kind for same, kind, _ in outcomes if same}
    return {"recall": round(sum(positives) / len(positives), 4), "positives": len(positives),
            "false_hit_rate": round(sum(negatives) / len(negatives), 4), "false_hits": sum(negatives),
            "negatives": len(negatives),
            "by_kind": {k: {"measure": "recall" if k in same_kind else "false_hit_rate", "hits": v[0], "of": v[1],
                            "rate": round(v[0] / v[1], 4)} for k, v in sorted(by_kind.items())}}


def load_devset() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]


def quality(quick: bool) -> dict[str, Any]:
    pairs = load_devset() if DEVSET.exists() else []
    _, held_out = mock_data_split()
    trials = _pair_trials(pairs)
    texts = [t for p in pairs for t in (p["a"], p["b"])] + [d[k] for d in held_out for k in ("origin", "similar")]
    vectors = minilm_vectors(texts)
    out: dict[str, Any] = {"embedder": "all-MiniLM-L6-v2", "setting": "SemanticCache() defaults"}
    why_not = gptcache_available()
    if pairs:
        out["devset"] = {"file": str(DEVSET.relative_to(REPO.parent)), "pairs": len(pairs), "trials": len(trials),
                         "costmw": asyncio.run(_costmw_pairs(trials, vectors)),
                         "stream": asyncio.run(_costmw_pairs_stream(trials, vectors, learn=False)),
                         "stream_learning": asyncio.run(_costmw_pairs_stream(trials, vectors, learn=True))}
        if why_not is None:
            out["devset"]["gptcache"] = _gptcache_pairs(trials[: 120 if quick else None], vectors)
    else:
        out["devset"] = f"skipped: {DEVSET} not found"
    if held_out:
        out["mock_data_held_out"] = {"queries": len(held_out), "origins": len({d["origin"] for d in held_out}),
                                     "costmw": asyncio.run(_costmw_mock(held_out, vectors)),
                                     "stream": asyncio.run(_costmw_mock_stream(held_out, vectors, learn=False)),
                                     "stream_learning": asyncio.run(_costmw_mock_stream(held_out, vectors,
                                                                                        learn=True))}
        if why_not is None:
            out["mock_data_held_out"]["gptcache"] = _gptcache_mock(held_out, vectors)
    else:
        out["mock_data_held_out"] = "skipped: ../shared/data/gptcache/mock_data.json not found"
    if why_not is not None:
        out["gptcache"] = f"skipped: {why_not}"
    return out


TYPO_PAIRS = REPO / "tests" / "plugins" / "cache" / "data" / "typo_pairs.tsv"


def normalisation_gain() -> dict[str, Any]:
    """MiniLM cosine of our own typo and polite-wrapper pairs, as typed and as the cache reads them."""
    from costmw.plugins.cache import Normaliser

    rows = [line.split("\t") for line in TYPO_PAIRS.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    read = Normaliser()
    raw = minilm_vectors([t for pair in rows for t in pair] + [read(t) for pair in rows for t in pair])
    before = np.array([float(raw[a] @ raw[b]) for a, b in rows])
    after = np.array([float(raw[read(a)] @ raw[read(b)]) for a, b in rows])
    return {"pairs": len(rows), "spelling": read.spelling, "cosine_as_typed": percentiles_of(before),
            "cosine_normalised": percentiles_of(after), "pairs_improved": int((after > before + 1e-6).sum()),
            "pairs_at_or_above_0.75": [int((before >= 0.75).sum()), int((after >= 0.75).sum())]}


def percentiles_of(values: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(values.mean()), 3), "min": round(float(values.min()), 3),
            "p50": round(float(np.median(values)), 3)}


def verifier_cost(pairs: list[dict[str, Any]], count: int = 200) -> dict[str, Any]:
    """The default verifier's time per candidate: one pair at a time, and five at once."""
    from costmw.plugins.cache._verifiers import make_verifier

    verifier = make_verifier(True, 0.02)
    assert verifier is not None
    short = [(p["a"], p["b"]) for p in pairs if len(p["a"]) < 120 and len(p["b"]) < 120] or [("a?", "b?")]
    verifier.check(*short[0])
    one = []
    for i in range(count):
        q, c = short[i % len(short)]
        t0 = time.perf_counter()
        verifier.check(q, c)
        one.append(time.perf_counter() - t0)
    five = []
    for i in range(count // 5):
        q = short[i % len(short)][0]
        t0 = time.perf_counter()
        asyncio.run(verifier.acheck_many(q, [c for _, c in short[i:i + 5]]))
        five.append((time.perf_counter() - t0) / 5)
    return {"verifier": verifier.version, "short_pairs": len(short), "one_at_a_time": percentiles(one),
            "per_candidate_in_batches_of_5": percentiles(five)}


def miss_latency(count: int = 60) -> dict[str, Any]:
    """What the default cache adds to a call it cannot answer: a chain with SemanticCache()
    (memory store, MiniLM, normaliser, verifier) against the same chain without it, on an
    instant target, each question new."""
    from costmw.adapters import MockTarget

    from costmw import Chain

    def run(plugins: list[Any], tag: str) -> list[float]:
        chain = Chain(plugins, [MockTarget(lambda r: "ok", model=MODEL)])
        chain.complete([{"role": "user", "content": "warm up the models"}], model=MODEL)
        samples = []
        for i in range(count):
            t0 = time.perf_counter()
            chain.complete([{"role": "user", "content": f"{tag} question {_word(i)} about topic {i}?"}], model=MODEL)
            samples.append(time.perf_counter() - t0)
        chain.close()
        return samples

    bare = run([], "bare")
    cached = run([SemanticCache(store="memory")], "cached")
    return {"without_cache": percentiles(bare), "with_cache": percentiles(cached),
            "added_p50_ms": round((np.median(cached) - np.median(bare)) * 1e3, 2)}


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
    cache = SemanticCache(store=store, embedder=embedder, verifier=False, normalise=False)
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
_STREAMS = (("stream", "one stream, misses stored"),
            ("stream_learning", "the same, learning from traffic (5% of hits checked)"))


def _learning(r: dict[str, Any]) -> str:
    """What a stream that learned from its traffic saw ("" for one that did not)."""
    if "observed" not in r:
        return ""
    return (f"; {r['observed']} requests compared, {r['checked']} hits checked, threshold "
            f"{r['shipped_threshold']} -> {r['threshold_at_end']}")


def _print_quality(q: dict[str, Any]) -> None:
    dev = q["devset"]
    if isinstance(dev, dict):
        print(f"\n{dev['file']}: {dev['pairs']} pairs, {dev['trials']} trials (both ways), {q['setting']}")
        print(f"{'system':<12}{'recall':>8}{'false hits':>16}")
        for key in ("costmw", "gptcache"):
            if key in dev:
                r = dev[key]
                print(f"{key:<12}{r['recall']:>8.3f}{r['false_hits']:>7}/{r['negatives']:<4}({r['false_hit_rate']:.1%})")
        for key, label in _STREAMS:
            if key in dev:
                r, h = dev[key], dev[key]["second_half"]
                print(f"  {label}: recall {r['recall']:.3f}, false hits {r['false_hits']}/{r['negatives']} "
                      f"({r['false_hit_rate']:.1%}); second half {h['recall']:.3f}, {h['false_hits']}/{h['negatives']}"
                      + _learning(r))
        print(f"{'kind':<20}{'measure':<16}" + "".join(f"{k:>12}" for k in ("costmw", "gptcache") if k in dev))
        for kind, row in dev["costmw"]["by_kind"].items():
            cells = "".join(f"{dev[k]['by_kind'][kind]['hits']:>6}/{dev[k]['by_kind'][kind]['of']:<5}"
                            for k in ("costmw", "gptcache") if k in dev and kind in dev[k]["by_kind"])
            print(f"{kind:<20}{row['measure']:<16}{cells}")
    else:
        print(f"\ndevset: {dev}")
    mock = q["mock_data_held_out"]
    if isinstance(mock, dict):
        print(f"\nmock_data held-out half: {mock['queries']} paraphrase queries, {mock['origins']} origins")
        print(f"{'system':<12}{'hit rate':>10}{'precision':>11}{'correct':>9}")
        for key in ("costmw", "gptcache"):
            if key in mock:
                r = mock[key]
                print(f"{key:<12}{r['hit_rate']:>10.3f}{(r['precision'] or 0):>11.4f}{r['correct_hit_rate']:>9.3f}")
        for key, label in _STREAMS:
            if key in mock:
                r, h = mock[key], mock[key]["second_half"]
                print(f"  {label}: hit rate {r['hit_rate']:.3f} at precision {(r['precision'] or 0):.4f}; second "
                      f"half {h['hit_rate']:.3f} at {(h['precision'] or 0):.4f}" + _learning(r))
    else:
        print(f"\nmock_data: {mock}")


def _print_tables(results: dict[str, Any]) -> None:
    _print_quality(results["quality"])
    n = results["normalisation"]
    print(f"\nnormalisation on {n['pairs']} typo/polite pairs of our own (MiniLM cosine): mean "
          f"{n['cosine_as_typed']['mean']:.3f} as typed -> {n['cosine_normalised']['mean']:.3f} normalised "
          f"(min {n['cosine_as_typed']['min']:.3f} -> {n['cosine_normalised']['min']:.3f}); {n['pairs_improved']} "
          f"pairs closer; at cosine >= 0.75: {n['pairs_at_or_above_0.75'][0]} -> {n['pairs_at_or_above_0.75'][1]}")
    v = results["verifier_cost"]
    print(f"\nverifier {v['verifier']}: per candidate p50 {v['one_at_a_time']['p50_ms']:.2f} ms one at a time, "
          f"{v['per_candidate_in_batches_of_5']['p50_ms']:.2f} ms in batches of 5 ({v['short_pairs']} short pairs)")
    m = results["miss_latency"]
    print(f"a miss through the default SemanticCache adds {m['added_p50_ms']:.2f} ms at p50 "
          f"({m['with_cache']['p50_ms']:.2f} ms vs {m['without_cache']['p50_ms']:.2f} ms without it)")
    s = results["speed"]
    print(f"\nlookup latency (normalisation, embedding and verification excluded), {s['queries_per_row']} queries "
          f"per row; MiniLM embedding alone: p50 {s['embedding_ms']['p50_ms']:.2f} ms")
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
    parser.add_argument("--quick", action="store_true", help="1k and 10k entries only, GPTCache on part of the devset")
    parser.add_argument("--sizes", default=None, help="comma-separated entry counts, e.g. 1000,100000")
    parser.add_argument("--quality-only", action="store_true", help="quality, verifier cost and miss latency only")
    parser.add_argument("--no-ann", action="store_true", help="skip the usearch HNSW rows (slow to build at 1M)")
    parser.add_argument("--out", default="cache.json", help="file name under benchmarks/results/")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    started = time.time()
    with _single_threaded():
        results: dict[str, Any] = {
            "benchmark": "cache", "quick": args.quick, "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "threads": "one BLAS/OpenMP thread for both systems", "load_average_start": os.getloadavg()[0],
            "quality": quality(args.quick), "normalisation": normalisation_gain(),
            "verifier_cost": verifier_cost(load_devset() if DEVSET.exists() else []),
            "miss_latency": miss_latency()}
        results["speed"] = {"queries_per_row": 0, "embedding_ms": {"p50_ms": 0.0}, "rows": []} if args.quality_only \
            else speed(args.quick, sizes, ann=not args.no_ann)
    results["seconds"] = round(time.time() - started, 1)
    results["load_average_end"] = os.getloadavg()[0]
    _print_tables(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {RESULTS / args.out} in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
