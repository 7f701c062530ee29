"""A cascade over SmolLM2-135M on the validation questions: which answers each scorer keeps.

SmolLM2-135M-Instruct (HFTarget, greedy, at most 24 tokens, answers cached by
``benchmarks/cascade_answers.py``) answers ``route_questions_dev.jsonl`` (195 questions, never
trained or tuned on); the strong model is an always-right stand-in. For each scorer alone and for the
default (the shipped confidence model), side by side: the share of questions kept on the cheap model
and the share of final answers right, at the threshold each scorer's calibration on the generated
training answers (``benchmarks/data/cascade_train.jsonl``) sets for quality 0.95 (by its one-sided
95% lower bound); random keeping at the same share; the oracle; self-consistency (``AgreementScorer``,
3 samples drawn in one call). The cost of judging is per question: the extra generated tokens and
seconds (samples, for agreement) and the CPU time of the features and the model (with the prompt's
embedding, for the default's similar_right feature). Goal: >= 95% right
with >= 15% kept.

The default ``Cascade()`` learns from its traffic; the table above judges each question with the
shipped model alone (``learn=False``). Learning is shown on the same questions as a stream, in
shuffled orders (seeds 0-4, averaged): each decision is made before its own answer is compared;
every escalated (or, with ``check_rate``, checked) question then joins the past prompts with
whether SmolLM2's reply agreed with the stand-in's (the correct answer), by the library's
``answers_agree``. The same stream is also run with the process restarted halfway, its memory lost
or read back from its file (``Cascade(memory=...)``). The same is measured on the training answers
with each kind held out from the model (``new_kind_streams``): the case learning is for, a kind of
question the model never saw.

    nice -n 10 python -m benchmarks.cascade_answers greedy samples dev   # the answers (slow on a CPU)
    python -m benchmarks.bench_cascade --cached                          # scores them
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks._common import print_table, write_result
from benchmarks.cascade_answers import answers, dev_questions, load_train
from benchmarks.train_cascade import _auc, graded

QUALITY = 0.95


def _checks(row: dict[str, Any]) -> float:
    """The existing answer checks: a refusal or a calculation that does not add up is 0, else 1."""
    e = row["evidence"]
    return 0.0 if e["a_refusal"] or e["a_wrong"] else 1.0


def _agreement(row: dict[str, Any]) -> float:
    """What ``AgreementScorer(samples=3)`` scores the answer, handed the samples it drew (cached)."""
    from costmw.plugins.router import AgreementScorer

    from costmw import Request, Response

    if not row.get("samples"):
        return float("nan")

    async def drawn(**params: Any) -> Response:
        return Response(text=row["samples"][0], info={"choices": [{"text": t} for t in row["samples"]]})

    request = Request.create([{"role": "user", "content": row["prompt"]}], "smol")
    score = asyncio.run(AgreementScorer(samples=len(row["samples"])).ascore(request, Response(text=row["reply"]),
                                                                             drawn))
    return float("nan") if score is None else float(score)


AGREEMENT = "agreement (AgreementScorer, 3 samples)"
COMBINED = "confidence + agreement (3 samples)"
FIXED = "confidence, not learning (learn=False)"
UNBOUNDED = "confidence, not learning, threshold as counted (no bound)"


def judged(model: Any, row: dict[str, Any]) -> float:
    """The model's P(right) for a row: its evidence, and ``similar_right`` from the row's prompt
    ``vector`` (the prompt's embedding) when the model reads it."""
    features = row["evidence"]
    if model.needs_embedding:
        features = model.with_neighbours([features], row["vector"][None, :])[0]
    return float(model.predict_one(features))


def scorers(model: Any, combined: Any = None) -> dict[str, Callable[[dict[str, Any]], float]]:
    out: dict[str, Callable[[dict[str, Any]], float]] = {
        "logprob (mean over all tokens)": lambda r: math.exp(r["evidence"]["lp_mean"]),
        "tokens (final answer span)": lambda r: math.exp(r["evidence"]["span_mean"]),
        "tokens (span minimum)": lambda r: math.exp(r["evidence"]["span_min"]),
        "answer checks (refusal, arithmetic)": _checks,
        AGREEMENT: _agreement,
    }
    if combined is not None:
        out[COMBINED] = lambda r: judged(combined, r) if r.get("samples") else float("nan")
    out[FIXED] = lambda r: judged(model, r)
    out[UNBOUNDED] = out[FIXED]
    return out


def outcome(scores: np.ndarray, right: np.ndarray, threshold: float) -> dict[str, float]:
    keep = scores >= threshold
    n = len(right)
    share = float(keep.mean())
    cheap_acc = float(right.mean())
    return {"kept": share, "accuracy": float((right[keep].sum() + (~keep).sum()) / n),
            "kept_right": float(right[keep].mean()) if keep.any() else float("nan"),
            "random_accuracy": 1.0 - share * (1.0 - cheap_acc), "threshold": float(threshold)}


def best_share_on_dev(scores: np.ndarray, right: np.ndarray) -> float:
    """The most a scorer could keep at >= 95% right had its threshold been read off this set (hindsight)."""
    from costmw.plugins.router import keep_threshold

    t = keep_threshold(scores.tolist(), right.tolist(), QUALITY)
    return float((scores >= t).mean())


def run(rows_train: Sequence[dict[str, Any]], rows_dev: Sequence[dict[str, Any]], model: Any,
        combined: Any = None) -> dict[str, Any]:
    from costmw.plugins.router import keep_threshold
    from costmw.plugins.router._confidence_data import DEFAULT_CONFIDENCE

    right_dev = np.asarray([r["right"] for r in rows_dev], dtype=bool)
    results: dict[str, Any] = {}
    for name, score in scorers(model, combined).items():
        dev_scores = np.asarray([score(r) for r in rows_dev], dtype=np.float64)
        if np.isnan(dev_scores).any():
            continue
        if name == FIXED:
            threshold = model.threshold_for(QUALITY)
        elif name == UNBOUNDED:
            threshold = model.threshold_for(QUALITY, confidence=0.0)
        elif name == COMBINED:
            threshold = combined.threshold_for(QUALITY)
        else:  # single scorers fit nothing: every training answer they can judge calibrates them
            cal = [(s, r["right"]) for r in rows_train if not math.isnan(s := score(r))]
            threshold = keep_threshold([c[0] for c in cal], [c[1] for c in cal], QUALITY,
                                       confidence=DEFAULT_CONFIDENCE)
        results[name] = {**outcome(dev_scores, right_dev, threshold), "auc": _auc(dev_scores, right_dev),
                         "hindsight_kept": best_share_on_dev(dev_scores, right_dev)}
    results["oracle"] = {"kept": float(right_dev.mean()), "accuracy": 1.0, "kept_right": 1.0,
                         "random_accuracy": 1.0 - float(right_dev.mean()) * (1.0 - float(right_dev.mean())),
                         "threshold": float("nan"), "auc": 1.0, "hindsight_kept": float(right_dev.mean())}
    return results


def judging_cost(rows_dev: Sequence[dict[str, Any]], model: Any) -> dict[str, dict[str, float]]:
    """Per question and scorer: extra generated tokens, extra seconds of generation, judging CPU ms."""
    from costmw.plugins.router import ConfidenceScorer, TokenScorer

    from costmw import Request, Response
    from costmw.embeddings import MiniLMEmbedder

    async def no_samples(**params: Any) -> Response:
        raise AssertionError("this scorer draws no samples")

    def fresh_scorer(model: Any) -> Any:
        """A scorer whose embedder has no prompt cached yet (its model loaded), so the prompt's
        embedding counts in the judging time."""
        embedder = MiniLMEmbedder()
        embedder.embed(["a text to load the model with"])
        return ConfidenceScorer(model, embedder=embedder)

    def cpu_ms(scorer: Any) -> float:
        start = time.perf_counter()
        for r in rows_dev:
            request = Request.create([{"role": "user", "content": r["prompt"]}], "smol")
            response = Response(text=r["reply"], finish_reason=r["finish_reason"])
            response.logprobs = r["logprobs"]
            asyncio.run(scorer.ascore(request, response, no_samples))
        return (time.perf_counter() - start) / max(1, len(rows_dev)) * 1000

    zero = {"extra_tokens": 0.0, "extra_s": 0.0}
    out = {"tokens (final answer span)": {**zero, "judge_ms": cpu_ms(TokenScorer())},
           FIXED: {**zero, "judge_ms": cpu_ms(fresh_scorer(model))}}
    sampled = [r for r in rows_dev if "sample_tokens" in r]
    if sampled:
        start = time.perf_counter()
        for r in sampled:
            _agreement(r)
        out[AGREEMENT] = {"extra_tokens": float(np.mean([r["sample_tokens"] for r in sampled])),
                          "extra_s": float(np.mean([r["judge_s"] for r in sampled])),
                          "judge_ms": (time.perf_counter() - start) / len(sampled) * 1000}
    out["the answer itself"] = {"extra_tokens": float(np.mean([r["completion_tokens"] for r in rows_dev])),
                                "extra_s": float(np.mean([r["answer_s"] for r in rows_dev])), "judge_ms": 0.0}
    return out


def combined_model(rows_train: Sequence[dict[str, Any]]) -> Any:
    """The default features plus agreement, fit (like the default) on the training answers with samples."""
    from costmw.plugins.router._confidence_data import DEFAULT_FEATURES, fit_confidence

    sampled = [r for r in rows_train if r.get("samples")]
    if len(sampled) < 50 or len({r["category"] for r in sampled}) < 5:
        return None
    return fit_confidence(sampled, features=(*DEFAULT_FEATURES, "agree"), by_category=True)


STREAM_SEEDS = (0, 1, 2, 3, 4)
STREAM_CHECK_RATE = 0.05


def learning_stream(rows: Sequence[dict[str, Any]], model: Any, threshold: float, *, seed: int,
                    check_rate: float = 0.0, restart: str = "") -> dict[str, float]:
    """The questions in one shuffled order through a cascade that learns from its traffic (the
    library's ``TrafficMemory`` and ``answers_agree``, as ``ConfidenceScorer(learn=True)`` uses them).
    ``restart``: the process restarts halfway, its memory lost (``"forget"``) or read back from the
    file it was appended to (``"file"``, ``Cascade(memory=...)``)."""
    import tempfile
    from pathlib import Path

    from costmw.plugins.router._cascade import answers_agree
    from costmw.plugins.router._neighbours import NEIGHBOUR_FEATURE, TrafficMemory

    folder = tempfile.TemporaryDirectory() if restart == "file" else None
    path = Path(folder.name) / "traffic" if folder is not None else None
    memory = TrafficMemory(model.neighbours, path=path)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    checks = random.Random(seed + 1000)
    keep = np.zeros(len(rows), dtype=bool)
    agreed_wrongly = 0
    for step, i in enumerate(order):
        if restart and step == len(order) // 2:
            memory.flush()
            memory = TrafficMemory(model.neighbours, path=path)
        row = rows[i]
        features = {**row["evidence"], NEIGHBOUR_FEATURE: float(memory.rate(row["vector"][None, :])[0])}
        kept = model.predict_one(features) >= threshold
        if kept and check_rate and checks.random() < check_rate:
            kept = False  # checked: the strong answer is served and compared
        if not kept:
            agreed = answers_agree(row["reply"], str(row["answer"]))
            agreed_wrongly += int(agreed and not row["right"])
            memory.add(row["vector"], agreed)
        keep[i] = kept
    if folder is not None:
        memory.flush()
        folder.cleanup()
    right = np.asarray([r["right"] for r in rows], dtype=bool)
    n = len(rows)
    second = np.asarray(order[n // 2:])
    return {"kept": float(keep.mean()), "accuracy": float((right[keep].sum() + (~keep).sum()) / n),
            "kept_right": float(right[keep].mean()) if keep.any() else float("nan"),
            "second_half_kept": float(keep[second].mean()),
            "second_half_accuracy": float((right[second] | ~keep[second]).mean()), "agreed_wrongly": agreed_wrongly}


def restart_rows(rows: Sequence[dict[str, Any]], model: Any) -> dict[str, dict[str, float]]:
    """The default's stream with the process restarted halfway: what the second half keeps when
    the memory is lost, read back from its file, or never interrupted (mean of the seeds)."""
    threshold = model.threshold_for(QUALITY, learning=True)
    out = {}
    for name, restart in (("no restart", ""), ("restarted halfway, memory lost (the default)", "forget"),
                          ("restarted halfway, Cascade(memory=file)", "file")):
        runs = [learning_stream(rows, model, threshold, seed=s, restart=restart) for s in STREAM_SEEDS]
        out[name] = {k: float(np.mean([r[k] for r in runs])) for k in ("second_half_kept", "second_half_accuracy")}
    return out


def learning_rows(rows: Sequence[dict[str, Any]], model: Any) -> dict[str, dict[str, float]]:
    """Learning from traffic, without and with checks of kept answers, averaged over the seeds."""
    threshold = model.threshold_for(QUALITY, learning=True)
    out = {}
    for name, rate in (("confidence, learning from escalations (the default)", 0.0),
                       (f"learning from traffic + {STREAM_CHECK_RATE:.0%} of kept checked", STREAM_CHECK_RATE)):
        runs = [learning_stream(rows, model, threshold, seed=s, check_rate=rate) for s in STREAM_SEEDS]
        out[name] = {k: float(np.nanmean([r[k] for r in runs])) for k in runs[0]}
        out[name]["worst_accuracy"] = float(min(r["accuracy"] for r in runs))
    return out


def new_kind_streams(rows_train: Sequence[dict[str, Any]], seeds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """Kinds of question the model never saw, as traffic: for each kind of the training answers, a
    model fit (and calibrated, kinds held out) on the other kinds judges that kind's questions, fixed
    or learning from them as a stream (shuffled, ``seeds``). Rows need a prompt ``vector``."""
    from costmw.plugins.router._confidence_data import fit_confidence

    vectors = np.asarray([r["vector"] for r in rows_train])
    ways: dict[str, float | str | None] = {
        "fixed (learn=False)": None, "learning from escalations (the default)": 0.0,
        f"learning + {STREAM_CHECK_RATE:.0%} of kept checked": STREAM_CHECK_RATE,
        "learning, restarted halfway, memory lost": "forget"}  # with memory=file: the same as the default
    totals = {name: {"questions": 0.0, "kept": 0.0, "kept_wrong": 0.0, "kinds_under": 0} for name in ways}
    per_kind: dict[str, dict[str, float]] = {}
    kinds = sorted({r["category"] for r in rows_train})
    for kind in kinds:
        others = [i for i, r in enumerate(rows_train) if r["category"] != kind]
        mine = [r for r in rows_train if r["category"] == kind]
        model = fit_confidence([rows_train[i] for i in others], by_category=True, embeddings=vectors[others])
        threshold, learning_threshold = model.threshold_for(QUALITY), model.threshold_for(QUALITY, learning=True)
        right = np.asarray([r["right"] for r in mine], dtype=bool)
        for name, rate in ways.items():
            if rate is None:
                keep = np.asarray([judged(model, r) >= threshold for r in mine], dtype=bool)
                runs = [(float(keep.sum()), float((keep & ~right).sum()))]
            else:
                runs = []
                for seed in seeds:
                    one = learning_stream(mine, model, learning_threshold, seed=seed,
                                          check_rate=rate if isinstance(rate, float) else 0.0,
                                          restart=rate if isinstance(rate, str) else "")
                    kept = one["kept"] * len(mine)
                    runs.append((kept, kept - (one["kept_right"] * kept if kept else 0.0)))
            kept, wrong = float(np.mean([k for k, _ in runs])), float(np.mean([w for _, w in runs]))
            t = totals[name]
            t["questions"] += len(mine)
            t["kept"] += kept
            t["kept_wrong"] += wrong
            t["kinds_under"] += int(1.0 - wrong / len(mine) < QUALITY)
            per_kind.setdefault(kind, {"questions": len(mine), "cheap_right": float(right.mean())})[name] = \
                kept / len(mine)
    out: dict[str, Any] = {
        name: {"kept": t["kept"] / t["questions"], "accuracy": 1.0 - t["kept_wrong"] / t["questions"],
               "kinds_under_quality": int(t["kinds_under"]), "kinds": len(kinds)} for name, t in totals.items()}
    out["per_kind_kept"] = per_kind
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same run (answers are cached after the first)")
    parser.add_argument("--cached", action="store_true", help="use only cached answers; never generate")
    parser.add_argument("--samples", action="store_true", help="also draw 3 samples per validation question for "
                                                                "the agreement scorer (slow on a CPU)")
    args = parser.parse_args(argv)
    from costmw.plugins.router import default_confidence_model

    model = default_confidence_model()
    generate = not args.cached
    rows_train = graded(load_train())
    dev = answers(dev_questions(), "dev", generate=generate)
    sampled = {r["prompt"]: r for r in answers(dev_questions(), "dev", phase="samples",
                                               generate=generate and args.samples)}
    if len(sampled) == len(dev):
        dev = [{**r, **{k: sampled[r["prompt"]][k] for k in ("samples", "sample_tokens", "judge_s")}} for r in dev]
    rows_dev = graded(dev)
    if not rows_dev:
        raise SystemExit("no cached answers for the validation set: run python -m benchmarks.cascade_answers")
    if model.needs_embedding:  # the prompts' embeddings, for the similar_right feature
        from costmw.embeddings import resolve_embedder

        vectors = resolve_embedder(model.neighbours.embedder).embed([r["prompt"] for r in rows_dev])
        rows_dev = [{**r, "vector": v} for r, v in zip(rows_dev, vectors, strict=True)]
    results = run(rows_train, rows_dev, model, combined_model(rows_train))
    cost = judging_cost(rows_dev, model)
    priced = {"logprob (mean over all tokens)": "tokens (final answer span)",
              "tokens (span minimum)": "tokens (final answer span)", UNBOUNDED: FIXED,
              COMBINED: AGREEMENT}  # the same work as the scorer named (the combination: samples + model)

    def paid(name: str) -> list[str]:
        c = cost.get(priced.get(name, name))
        return ["-", "-", "-"] if c is None else [f"{c['extra_tokens']:.1f}", f"{c['extra_s']:.2f}",
                                                 f"{c['judge_ms']:.2f}"]

    rows = [[name, f"{r['kept']:.1%}", f"{r['accuracy']:.1%}", f"{r['random_accuracy']:.1%}",
             "-" if math.isnan(r["kept_right"]) else f"{r['kept_right']:.1%}", f"{r['auc']:.3f}",
             f"{r['hindsight_kept']:.1%}",
             *paid(name)] for name, r in results.items()]
    print_table(f"cascade over SmolLM2-135M on {len(rows_dev)} validation questions (cheap right: "
                f"{np.mean([r['right'] for r in rows_dev]):.1%}); strong = always right; thresholds for "
                f"quality {QUALITY} from {len(rows_train)} generated training answers",
                ["scorer", "kept cheap", "final right", "random at same share", "kept right", "AUC",
                 "kept at 95% in hindsight", "extra tokens/q", "extra s/q", "judge ms/q"], rows)
    learning = learning_rows(rows_dev, model) if model.needs_embedding else {}
    if learning:
        print_table(f"the default, as a stream that learns from its traffic (Cascade()); mean of "
                    f"{len(STREAM_SEEDS)} shuffled orders",
                    ["", "kept cheap", "final right", "worst order: final right", "kept right",
                     "kept, second half", "compared as agreeing but wrong"],
                    [[k, f"{v['kept']:.1%}", f"{v['accuracy']:.1%}", f"{v['worst_accuracy']:.1%}",
                      f"{v['kept_right']:.1%}", f"{v['second_half_kept']:.1%}", f"{v['agreed_wrongly']:.1f}"]
                     for k, v in learning.items()])
    restarts = restart_rows(rows_dev, model) if model.needs_embedding else {}
    if restarts:
        print_table("the same stream, the process restarted halfway: the second half of the questions",
                    ["", "kept cheap", "final right"],
                    [[k, f"{v['second_half_kept']:.1%}", f"{v['second_half_accuracy']:.1%}"]
                     for k, v in restarts.items()])
    new_kinds: dict[str, Any] = {}
    if model.needs_embedding:
        from costmw.embeddings import resolve_embedder

        train_vectors = resolve_embedder(model.neighbours.embedder).embed([r["prompt"] for r in rows_train])
        new_kinds = new_kind_streams([{**r, "vector": v} for r, v in zip(rows_train, train_vectors, strict=True)])
        print_table(f"kinds the model never saw, as traffic: each of the {len(rows_train)} training answers' kinds "
                    "judged by a model fit on the other kinds (3 shuffled orders)",
                    ["", "kept cheap", "final right", "kinds below 95% right"],
                    [[k, f"{v['kept']:.1%}", f"{v['accuracy']:.1%}", f"{v['kinds_under_quality']} of {v['kinds']}"]
                     for k, v in new_kinds.items() if k != "per_kind_kept"])
        names = [k for k in new_kinds if k != "per_kind_kept"]
        print_table("the same, kept cheap per kind", ["kind", "questions", "cheap right", *names],
                    [[kind, str(v["questions"]), f"{v['cheap_right']:.0%}", *(f"{v[n]:.0%}" for n in names)]
                     for kind, v in new_kinds["per_kind_kept"].items()])
    print_table("cost per question", ["", "extra tokens", "extra s", "judge ms"],
                [[k, f"{v['extra_tokens']:.1f}", f"{v['extra_s']:.2f}", f"{v['judge_ms']:.2f}"]
                 for k, v in cost.items()])
    out = {"questions": len(rows_dev), "train_questions": len(rows_train), "quality": QUALITY,
           "cheap_right": float(np.mean([r["right"] for r in rows_dev])), "scorers": results, "judging": cost,
           "learning_from_traffic": learning, "restarted_halfway": restarts, "new_kinds_as_traffic": new_kinds}
    write_result("cascade", out)
    return out


if __name__ == "__main__":
    main()
