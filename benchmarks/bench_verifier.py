"""The learned cache verifier on its own: quality at its default operating point and cost per candidate.

    python -m benchmarks.bench_verifier                    # dev set, mock_data held-out half, speed
    python -m benchmarks.bench_verifier --model-dir DIR    # a model made by the training command
    python -m benchmarks.bench_verifier --calibration      # also the model's own calibration pairs

Quality: ``../shared/data/devsets/cache_pairs_dev.jsonl`` (recall of true pairs and false-accept
rate of look-alikes, overall and per kind, and AUC), and the held-out half of mock_data.json
(each origin with its own paraphrase, and with the paraphrases of its three nearest other origins
by all-MiniLM-L6-v2 cosine: same topic, different question). Speed: p50 cost per candidate for
short pairs, one candidate per call and five candidates in one call, on one onnxruntime thread.
``--no-dev`` leaves the dev set out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from costmw.plugins.cache._learned import LearnedVerifier
from costmw.plugins.cache._train._fit import auc

from ._cache_support import minilm_vectors, mock_data_split
from ._common import SHARED_DATA, percentile, print_table, write_result

DEV = SHARED_DATA / "devsets" / "cache_pairs_dev.jsonl"
SHORT_PAIRS = [
    ("where can i fnd my invocie??", "Where can I find my invoice?"),
    ("How do I reset my password?", "How can I reset my password"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("convert 5 miles to km", "How many kilometers are 5 miles?"),
    ("Is ibuprofen safe when pregnant?", "Can I take ibuprofen while pregnant?"),
]


def rates(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    served = probs >= threshold
    pos, neg = labels == 1, labels == 0
    return {"pairs": len(labels), "true": int(pos.sum()), "false": int(neg.sum()),
            "recall": float(served[pos].mean()) if pos.any() else None,
            "false_accept": float(served[neg].mean()) if neg.any() else None,
            "wrong_among_served": float((served & neg).sum() / max(1, served.sum())),
            "auc": auc(probs.tolist(), labels.tolist()) if pos.any() and neg.any() else None}


def dev_pairs() -> list[tuple[str, str, int, str]]:
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["a"], r["b"], int(bool(r["same"])), str(r.get("kind", ""))) for r in rows]


def mock_pairs(neighbours: int = 3) -> list[tuple[str, str, int, str]]:
    _, held = mock_data_split()
    if not held:
        return []
    vec = minilm_vectors([r["origin"] for r in held])
    m = np.stack([vec[r["origin"]] for r in held])
    sims = m @ m.T
    np.fill_diagonal(sims, -1.0)
    out = []
    for i, row in enumerate(held):
        out.append((row["similar"], row["origin"], 1, "paraphrase"))
        for j in np.argsort(-sims[i])[:neighbours]:
            out.append((held[int(j)]["similar"], row["origin"], 0, "neighbour"))
    return out


def quality(verifier: LearnedVerifier, name: str, pairs: Sequence[tuple[str, str, int, str]]) -> dict[str, Any]:
    probs = np.concatenate([verifier.predict([(a, b) for a, b, _, _ in pairs[i:i + 64]])
                            for i in range(0, len(pairs), 64)])
    labels = np.asarray([y for _, _, y, _ in pairs])
    kinds = defaultdict(list)
    for i, (_, _, _, kind) in enumerate(pairs):
        kinds[kind].append(i)
    result = {"overall": rates(probs, labels, verifier.threshold)}
    for kind, idx in sorted(kinds.items()):
        result[kind] = rates(probs[idx], labels[idx], verifier.threshold)
    rows = [[k, v["pairs"], _pct(v["recall"]), _pct(v["false_accept"]), "" if v["auc"] is None else f"{v['auc']:.3f}"]
            for k, v in result.items()]
    print_table(f"{name} (threshold {verifier.threshold:.3f}, max_error {verifier.max_error})",
                ["kind", "pairs", "recall", "false accepts", "AUC"], rows)
    return result


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def speed(verifier: LearnedVerifier, rounds: int = 300) -> dict[str, float]:
    """Every pair new (the verifier's store of recent scores emptied before each call): one
    candidate per call, and the five candidates of one lookup in one call."""
    verifier.predict(SHORT_PAIRS)  # load
    single, batched, single_cpu, batched_cpu = [], [], [], []
    for i in range(rounds):
        q, c = SHORT_PAIRS[i % len(SHORT_PAIRS)]
        query = f"{q} ({i})"  # a query never seen before
        verifier._recent.clear()
        t, cpu = time.perf_counter(), time.process_time()
        verifier.check(query, c)
        single.append(time.perf_counter() - t)
        single_cpu.append(time.process_time() - cpu)
        verifier._recent.clear()
        t, cpu = time.perf_counter(), time.process_time()
        verifier.predict([(query, other) for _, other in SHORT_PAIRS])
        batched.append((time.perf_counter() - t) / len(SHORT_PAIRS))
        batched_cpu.append((time.process_time() - cpu) / len(SHORT_PAIRS))
    out = {"single_p50_ms": 1e3 * percentile(single, 50),
           "batched5_per_candidate_p50_ms": 1e3 * percentile(batched, 50),
           "single_cpu_p50_ms": 1e3 * percentile(single_cpu, 50),
           "batched5_per_candidate_cpu_p50_ms": 1e3 * percentile(batched_cpu, 50)}
    print_table("cost per candidate (short pairs, 1 onnxruntime thread; wall and process CPU time)", ["measure", "ms"],
                [[k, v] for k, v in out.items()])
    return out


def calibration_pairs(verifier: LearnedVerifier) -> dict[str, Any]:
    data = json.loads((verifier.model_dir / "calibration.json").read_text(encoding="utf-8"))
    probs = verifier._calibrate(np.asarray(data["scores"], dtype=np.float64))
    labels = np.asarray(data["labels"])
    result = {"overall": rates(probs, labels, verifier.threshold)}
    kinds = defaultdict(list)
    for i, kind in enumerate(data.get("kinds", [])):
        kinds[kind].append(i)
    for kind, idx in sorted(kinds.items()):
        result[kind] = rates(probs[idx], labels[idx], verifier.threshold)
    rows = [[k, v["pairs"], _pct(v["recall"]), _pct(v["false_accept"])] for k, v in result.items()]
    print_table("calibration pairs (held out from training; the operating point is chosen on these)",
                ["kind", "pairs", "recall", "false accepts"], rows)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--max-error", type=float, default=0.02)
    parser.add_argument("--calibration", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-dev", action="store_true", help="skip the dev set (mock_data and speed only)")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    verifier = LearnedVerifier(args.max_error, args.model_dir).warm()
    result: dict[str, Any] = {"version": verifier.version, "max_error": verifier.max_error,
                              "threshold": verifier.threshold,
                              "thresholds": {str(e): verifier.threshold_for(e) for e in (0.005, 0.01, 0.02, 0.05)}}
    if args.calibration:
        result["calibration"] = calibration_pairs(verifier)
    if args.speed_only:
        result["speed"] = speed(verifier)
        return
    if DEV.exists() and not args.no_dev:
        result["dev"] = quality(verifier, "devsets/cache_pairs_dev.jsonl", dev_pairs())
    mock = mock_pairs()
    if mock:
        title = "mock_data.json held-out half: paraphrase vs 3 nearest others"
        result["mock_held_out"] = quality(verifier, title, mock)
    if not args.no_speed:
        result["speed"] = speed(verifier)
    print(f"\nwrote {write_result('verifier', result)}")


if __name__ == "__main__":
    main()
