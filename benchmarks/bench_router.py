"""ModelRouter on RouteLLM's data: GSM8K and 29 MMLU subjects, Mixtral-8x7B (weak) vs GPT-4-1106 (strong).

Every score is held out: MMLU is split by subject (5 folds; a fold's subjects are never seen in
training or calibration), GSM8K by prompt (5 folds). In each fold the router trains on 80% of the
training part, sets its threshold on the other 20% (95% of GPT-4's accuracy there), and is then
judged on the held-out fold. Reported: APGR, the share of GPT-4 calls needed for 50/80/95% of the
performance gap and for 95% of GPT-4's accuracy, the cost saved there (LiteLLM prices), the
calibrated operating point, and the routing decision's latency.

Routers compared: costmw's learned router (prompt only: embedding and text features), the same
model with ``per_dollar=True`` (prompts escalated by expected gain per extra dollar, priced from
each prompt's tokens and the training part's mean answer length), on GSM8K costmw's cascade
(Mixtral always answers first; a TrainedScorer's model, over the prompt and checks of Mixtral's
answer from the data file, decides whether to escalate; both calls are priced), a random router,
the oracle, and on MMLU a "subject oracle" that knows each held-out subject's true share of
prompts Mixtral answers as well as GPT-4: the best any router can do that only tells subjects apart.

    python -m benchmarks.bench_router [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, SHARED_DATA, percentile, print_table, write_result

DATA = SHARED_DATA / "routellm"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
WEAK_PRICE = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"  # LiteLLM has no mistral/open-mixtral-8x7b
FOLDS = 5


@dataclass
class Task:
    name: str
    prompts: list[str]
    weak: np.ndarray  # Mixtral answered correctly
    strong: np.ndarray  # GPT-4 answered correctly
    groups: np.ndarray  # subject id (MMLU) or 0
    out_weak: np.ndarray  # answer tokens, for pricing
    out_strong: np.ndarray
    tokens: np.ndarray  # prompt tokens (cl100k), for pricing
    answers: list[str] | None = None  # Mixtral's answers, where the file has them (GSM8K)

    def take(self, idx: np.ndarray) -> Task:
        return Task(self.name, [self.prompts[i] for i in idx], self.weak[idx], self.strong[idx], self.groups[idx],
                    self.out_weak[idx], self.out_strong[idx], self.tokens[idx],
                    None if self.answers is None else [self.answers[i] for i in idx])


def _contaminated(name: str) -> set[str]:
    path = DATA / f"{name}_contaminated_prompts.jsonl"
    return {json.loads(line)["eval_prompt"] for line in path.read_text().splitlines() if line.strip()}


def load_tasks() -> dict[str, Task]:
    """GSM8K and MMLU with per-prompt correctness (prompts RouteLLM marks contaminated are dropped)."""
    from costmw._tokens import count_tokens

    tasks = {}
    drop = _contaminated("gsm8k")
    rows = [r for r in csv.DictReader((DATA / "gsm8k_responses.csv").open()) if r["prompt"] not in drop]
    tasks["gsm8k"] = Task("gsm8k", [r["prompt"] for r in rows], np.array([r[WEAK] == "True" for r in rows]),
                          np.array([r[STRONG] == "True" for r in rows]), np.zeros(len(rows), int),
                          np.array([count_tokens(r[WEAK + "_response"], "gpt-4") for r in rows]),
                          np.array([count_tokens(r[STRONG + "_response"], "gpt-4") for r in rows]),
                          np.array([count_tokens(r["prompt"], "gpt-4") for r in rows]),
                          [r[WEAK + "_response"] for r in rows])
    drop = _contaminated("mmlu")
    prompts, weak, strong, groups = [], [], [], []
    for gid, path in enumerate(sorted((DATA / "mmlu").glob("*.csv"))):
        for r in csv.DictReader(path.open()):
            if r["prompt"] not in drop:
                prompts.append(r["prompt"])
                weak.append(r[WEAK] == "True")
                strong.append(r[STRONG] == "True")
                groups.append(gid)
    ones = np.ones(len(prompts), int)  # one answer letter
    tasks["mmlu"] = Task("mmlu", prompts, np.array(weak), np.array(strong), np.array(groups), ones, ones,
                         np.array([count_tokens(p, "gpt-4") for p in prompts]))
    return tasks


def _cache_file(prompts: list[str], embedder: Any) -> Path:
    tag = embedder.name + (f":{embedder.onnx_path().name}" if hasattr(embedder, "onnx_path") else "")
    key = hashlib.sha1(tag.encode() + "\x00".join(prompts).encode()).hexdigest()[:12]
    return RESULTS / f"router_emb_{key}.npy"


def embed(prompts: list[str], embedder: Any, subset: np.ndarray | None = None) -> np.ndarray:
    """Embeddings of ``prompts`` (or of ``prompts[subset]``), cached under benchmarks/results/."""
    whole = _cache_file(prompts, embedder)
    if whole.exists():
        vectors = np.load(whole, allow_pickle=False)
        return vectors if subset is None else vectors[subset]
    if subset is not None:
        prompts = [prompts[i] for i in subset]
    path = _cache_file(prompts, embedder)
    if path.exists():
        return np.load(path, allow_pickle=False)
    started = time.perf_counter()
    vectors = embedder.embed(prompts)
    print(f"  embedded {len(prompts)} prompts in {time.perf_counter() - started:.0f} s", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors, allow_pickle=False)
    return vectors


def folds(task: Task, seed: int = 0) -> list[np.ndarray]:
    """Held-out index sets: whole subjects for MMLU (balanced by size), random prompts for GSM8K."""
    rng = np.random.default_rng(seed)
    if len(set(task.groups.tolist())) == 1:
        return list(np.array_split(rng.permutation(len(task.prompts)), FOLDS))
    sizes = {g: int(np.sum(task.groups == g)) for g in set(task.groups.tolist())}
    bins: list[list[int]] = [[] for _ in range(FOLDS)]
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):  # largest subjects first, into the lightest fold
        min(bins, key=lambda b: sum(sizes[x] for x in b)).append(g)
    return [np.nonzero(np.isin(task.groups, b))[0] for b in bins]


def _split_calibration(task: Task, train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """80/20 of the training part; by subject for MMLU, so calibration also sees unseen subjects."""
    rng = np.random.default_rng(seed)
    groups = sorted(set(task.groups[train].tolist()))
    if len(groups) == 1:
        perm = rng.permutation(train)
        cut = int(0.8 * len(perm))
        return perm[:cut], perm[cut:]
    held = set(rng.permutation(groups)[: max(1, round(0.2 * len(groups)))].tolist())
    mask = np.isin(task.groups[train], list(held))
    return train[~mask], train[mask]


def adequate(task: Task) -> np.ndarray:
    """The label: the weak model answered as well as the strong one (not: strong right, weak wrong)."""
    return (~(task.strong & ~task.weak)).astype(float)


def _prices() -> tuple[Any, Any]:
    from costmw._pricing import lookup_price

    weak_price, strong_price = lookup_price(WEAK_PRICE), lookup_price(STRONG)
    assert weak_price is not None and strong_price is not None
    return weak_price, strong_price


def expected_extra_cost(task: Task, known: np.ndarray) -> np.ndarray:
    """Per prompt, USD GPT-4 costs more than Mixtral as a router estimates it before any answer: the
    prompt's tokens and the mean answer length on the ``known`` (training) prompts."""
    weak_price, strong_price = _prices()
    out_weak, out_strong = task.out_weak[known].mean(), task.out_strong[known].mean()
    extra: np.ndarray = (task.tokens * (strong_price.input_per_1m - weak_price.input_per_1m)
                         + out_strong * strong_price.output_per_1m - out_weak * weak_price.output_per_1m) / 1e6
    return extra


@dataclass
class HeldOut:
    """Held-out scores for every prompt, each prompt's calibrated routing (True = strong), the same
    for the per-dollar threshold with the extra cost it was judged by, and per-fold notes."""

    scores: np.ndarray
    to_strong: np.ndarray
    per_dollar_strong: np.ndarray
    extra_cost: np.ndarray
    notes: list[dict[str, Any]]


def cross_fit(task: Task, emb: np.ndarray, extra: tuple[Task, np.ndarray] | None, quick: bool, *,
              cascade: bool = False) -> HeldOut:
    """Train, calibrate and score every fold (see :class:`HeldOut`).

    ``cascade``: the model also reads Mixtral's answer (a TrainedScorer's model), so True means
    escalate to GPT-4 after Mixtral answered.
    """
    from costmw.plugins.router import QualityModel, sends_to_strong, threshold_for_quality

    answers = task.answers if cascade else None
    assert answers is not None or not cascade, "a cascade needs the weak model's answers"

    def some(idx: np.ndarray) -> list[str] | None:
        return None if answers is None else [answers[i] for i in idx]

    n = len(task.prompts)
    out = HeldOut(np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n), [])
    for k, test in enumerate(folds(task)):
        train = np.setdiff1d(np.arange(len(task.prompts)), test)
        fit_idx, cal_idx = _split_calibration(task, train, seed=k)
        prompts = [task.prompts[i] for i in fit_idx]
        labels, vectors = adequate(task)[fit_idx], emb[fit_idx]
        if extra is not None:
            prompts += extra[0].prompts
            labels = np.concatenate([labels, adequate(extra[0])])
            vectors = np.vstack([vectors, extra[1]])
        model = QualityModel(c=0.3 if quick else None, answers=cascade)
        model.fit(prompts, labels, embeddings=vectors, answers=some(fit_idx))
        cal_scores = model.predict([task.prompts[i] for i in cal_idx], embeddings=emb[cal_idx], answers=some(cal_idx))
        threshold = threshold_for_quality(cal_scores, 0.95, task.weak[cal_idx], task.strong[cal_idx])
        dearer = expected_extra_cost(task, train)
        per_dollar = threshold_for_quality(cal_scores, 0.95, task.weak[cal_idx], task.strong[cal_idx],
                                           extra_cost=dearer[cal_idx])
        scores = model.predict([task.prompts[i] for i in test], embeddings=emb[test], answers=some(test))
        out.scores[test], out.extra_cost[test] = scores, dearer[test]
        out.to_strong[test] = sends_to_strong(scores, threshold)
        out.per_dollar_strong[test] = sends_to_strong(scores, per_dollar, dearer[test])
        out.notes.append({"fold": k, "train": len(prompts), "calibration": len(cal_idx), "test": len(test),
                          "c": model.info["c"], "threshold": round(threshold, 4),
                          "per_dollar_threshold": round(per_dollar, 4), "cascade": cascade})
    return out


def _costs(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """What each prompt cost on each model, with the answer it actually gave."""
    weak_price, strong_price = _prices()
    return (np.array([weak_price.cost(int(t), int(o)) for t, o in zip(task.tokens, task.out_weak, strict=True)]),
            np.array([strong_price.cost(int(t), int(o)) for t, o in zip(task.tokens, task.out_strong, strict=True)]))


def curve_metrics(task: Task, scores: np.ndarray | None, cascade: bool = False,
                  extra_cost: np.ndarray | None = None) -> dict[str, float]:
    """APGR and strong-call shares; ``scores=None`` is the random router (its expected curve).

    ``cascade``: the weak model answers every prompt and the strong one is called on top.
    ``extra_cost``: prompts are escalated by expected gain per extra dollar (``per_dollar=True``),
    so the shares and the cost are read where that curve first reaches each accuracy.
    """
    from costmw.plugins.router import escalation_order, routing_curve, share_needed

    w, s = task.weak.astype(float), task.strong.astype(float)
    if scores is None:
        curve = w.mean() + np.linspace(0.0, 1.0, len(w) + 1) * (s.mean() - w.mean())
    else:
        curve = routing_curve(scores, w, s, extra_cost=extra_cost)
    gap = s.mean() - w.mean()
    pgr = (curve - w.mean()) / gap
    share = np.linspace(0.0, 1.0, len(curve))
    out = {"apgr": float(np.trapezoid(pgr, share))}
    for pct in (50, 80, 95):
        out[f"cpt{pct}"] = share_needed(curve, w.mean() + pct / 100 * gap)
    out["share_at_95pct_gpt4"] = share_needed(curve, 0.95 * s.mean())
    out["fewer_strong_calls_pct"] = 100.0 * (1.0 - out["share_at_95pct_gpt4"])
    weak_cost, strong_cost = _costs(task)
    k = round(out["share_at_95pct_gpt4"] * len(w))
    order = escalation_order(scores, extra_cost) if scores is not None else None
    if order is None:  # random router: expected cost at that share
        cost = (1 - k / len(w)) * weak_cost.sum() + k / len(w) * strong_cost.sum()
    else:
        strong_mask = np.zeros(len(w), bool)
        strong_mask[order[:k]] = True
        cost = weak_cost[~strong_mask].sum() + strong_cost[strong_mask].sum()
        if cascade:
            cost = weak_cost.sum() + strong_cost[strong_mask].sum()
    out["cost_saved_pct_at_95"] = float(100.0 * (1 - cost / strong_cost.sum()))
    return out


def calibrated_point(task: Task, to_strong: np.ndarray, cascade: bool = False) -> dict[str, float]:
    """What the threshold set on the training side did on the held-out prompts."""
    acc = np.where(to_strong, task.strong, task.weak).mean()
    weak_cost, strong_cost = _costs(task)
    cost = (weak_cost.sum() if cascade else weak_cost[~to_strong].sum()) + strong_cost[to_strong].sum()
    return {"strong_share": float(to_strong.mean()), "accuracy": float(acc),
            "pct_of_gpt4_accuracy": float(100 * acc / task.strong.mean()),
            "cost_saved_pct": float(100 * (1 - cost / strong_cost.sum()))}


def latency(task: Task, emb: np.ndarray, n: int, threads: int = 1) -> dict[str, Any]:
    """Routing decision time per prompt (embedding included), and with the cache's embedding reused."""
    from costmw.adapters import MockTarget
    from costmw.plugins.router import Learned, ModelRouter, QualityModel

    from costmw import Request
    from costmw.embeddings import OnnxEmbedder

    model = QualityModel(OnnxEmbedder(threads=threads), c=0.3)
    model.fit(task.prompts[:400], adequate(task)[:400], embeddings=emb[:400])
    router = ModelRouter([MockTarget(name="mixtral", price=(0.6, 0.6)), MockTarget(name="gpt-4", price=(10, 30))],
                         strategy=Learned(model, threshold=0.5))
    model.embedder.embed(["warm up the session"])
    sample = task.prompts[-n:]

    async def timed(shared: bool) -> tuple[list[float], list[float]]:
        wall, cpu = [], []
        for i, text in enumerate(sample):
            request = Request.create([{"role": "user", "content": text}], "gpt-4")
            if shared:
                request.context.remember(("embedding", model.embedder.name, request.last_user_text), emb[-n + i])
            started, cpu_started = time.perf_counter(), time.process_time()
            await router.route(request)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        return wall, cpu

    (fresh, fresh_cpu), (reused, _) = asyncio.run(timed(False)), asyncio.run(timed(True))
    return {"prompts": n, "p50_ms": percentile(fresh, 50) * 1e3, "p90_ms": percentile(fresh, 90) * 1e3,
            "cpu_p50_ms": percentile(fresh_cpu, 50) * 1e3,
            "shared_embedding_p50_ms": percentile(reused, 50) * 1e3, "load_average": os.getloadavg()[0],
            "embedder": f"{type(model.embedder).__name__}({model.embedder.name}, threads={threads})"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsample (about a minute once embeddings are cached)")
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: RouteLLM data not found at {DATA}")
        return {"skipped": f"no data at {DATA}"}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from costmw.plugins.router._model import make_embedder

    tasks = load_tasks()
    embedder = make_embedder("onnx")
    vectors: dict[str, np.ndarray] = {}
    for name, task in list(tasks.items()):
        subset = None
        if args.quick:  # every subject stays, fewer prompts in each
            rng = np.random.default_rng(0)
            subset = np.sort(rng.permutation(len(task.prompts))[: 300 if name == "gsm8k" else 1500])
        vectors[name] = embed(task.prompts, embedder, subset)
        tasks[name] = task if subset is None else task.take(subset)
    results: dict[str, Any] = {"quick": args.quick, "weak": WEAK, "strong": STRONG,
                               "prices": {"weak": WEAK_PRICE, "strong": STRONG}, "tasks": {}}
    rows = []
    for name, task in tasks.items():
        extra = (tasks["gsm8k"], vectors["gsm8k"]) if name == "mmlu" else None
        held = cross_fit(task, vectors[name], extra, args.quick)
        notes = held.notes
        oracle = -(task.strong.astype(float) - task.weak.astype(float))
        routers = {"costmw learned": curve_metrics(task, held.scores),
                   "costmw learned, per dollar": curve_metrics(task, held.scores, extra_cost=held.extra_cost)}
        calibrated = {"costmw learned": calibrated_point(task, held.to_strong),
                      "costmw learned, per dollar": calibrated_point(task, held.per_dollar_strong)}
        if task.answers is not None:
            c_held = cross_fit(task, vectors[name], None, args.quick, cascade=True)
            routers["costmw cascade"] = curve_metrics(task, c_held.scores, cascade=True)
            calibrated["costmw cascade"] = calibrated_point(task, c_held.to_strong, cascade=True)
            notes += c_held.notes
        routers |= {"random": curve_metrics(task, None), "oracle": curve_metrics(task, oracle)}
        if len(set(task.groups.tolist())) > 1:
            good = adequate(task)
            by_subject = {g: good[task.groups == g].mean() for g in set(task.groups.tolist())}
            ties = np.random.default_rng(0).random(len(good)) * 1e-9  # random order within a subject
            routers["subject oracle"] = curve_metrics(task, np.array([by_subject[g] for g in task.groups]) + ties)
        results["tasks"][name] = {"prompts": len(task.prompts), "weak_accuracy": float(task.weak.mean()),
                                  "strong_accuracy": float(task.strong.mean()), "routers": routers,
                                  "calibrated": calibrated, "folds": notes}
        for router, m in routers.items():
            rows.append([name, router, m["apgr"], m["cpt50"], m["cpt80"], m["cpt95"], m["share_at_95pct_gpt4"],
                         m["fewer_strong_calls_pct"], m["cost_saved_pct_at_95"]])
    print_table("Held-out routing quality (shares are of calls sent to GPT-4)",
                ["task", "router", "APGR", "CPT50", "CPT80", "CPT95", "share@95%GPT4", "fewer%", "cost saved%"],
                rows)
    print_table("Threshold calibrated on the training side (target: 95% of GPT-4), applied held-out",
                ["task", "router", "strong share", "% of GPT-4 acc", "cost saved %"],
                [[n, router, c["strong_share"], c["pct_of_gpt4_accuracy"], c["cost_saved_pct"]]
                 for n, r in results["tasks"].items() for router, c in r["calibrated"].items()])
    lats = [latency(tasks["mmlu"], vectors["mmlu"], 60 if args.quick else 200, threads=t) for t in (1, 2)]
    results["latency"] = lats
    print_table("Routing decision latency (MMLU prompts, one at a time)",
                ["embedder", "p50 ms", "p90 ms", "CPU p50 ms", "p50 ms, embedding shared", "load avg"],
                [[lat["embedder"], lat["p50_ms"], lat["p90_ms"], lat["cpu_p50_ms"], lat["shared_embedding_p50_ms"],
                  lat["load_average"]] for lat in lats])
    path = write_result("router", results)
    print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
