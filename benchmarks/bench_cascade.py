"""A cascade over SmolLM2-135M on the validation questions: which answers each scorer keeps.

SmolLM2-135M-Instruct (HFTarget, greedy, at most 24 tokens, answers cached by
``benchmarks/cascade_answers.py``) answers ``route_questions_dev.jsonl`` (195 questions, never
trained or tuned on); the strong model is an always-right stand-in. For each scorer alone and for the
default (the shipped confidence model), side by side: the share of questions kept on the cheap model
and the share of final answers right, at the threshold each scorer's calibration (on the generated
training questions, at quality 0.95) sets; random keeping at the same share; the oracle. The cost of
judging is per question: extra generated tokens and seconds (samples for agreement), and the
feature + model time. Goal: >= 95% right with >= 15% kept.

    nice -n 10 python -m benchmarks.bench_cascade   # answers what is not cached (slow on a CPU), then scores
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks._common import print_table, write_result
from benchmarks.cascade_answers import answers, dev_questions, train_questions
from benchmarks.train_cascade import graded

QUALITY = 0.95


def _checks(row: dict[str, Any]) -> float:
    """The existing answer checks: a refusal or a calculation that does not add up is 0, else 1."""
    e = row["evidence"]
    return 0.0 if e["a_refusal"] or e["a_wrong"] else 1.0


def scorers(model: Any) -> dict[str, Callable[[dict[str, Any]], float]]:
    return {
        "logprob (mean over all tokens)": lambda r: math.exp(r["evidence"]["lp_mean"]),
        "tokens (final answer span)": lambda r: math.exp(r["evidence"]["span_mean"]),
        "tokens (span minimum)": lambda r: math.exp(r["evidence"]["span_min"]),
        "answer checks (refusal, arithmetic)": _checks,
        "agreement (3 samples)": lambda r: r["evidence"]["agree"] if r["evidence"]["has_samples"] else float("nan"),
        "confidence (default)": lambda r: float(model.predict_one(r["evidence"])),
    }


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


def run(rows_train: Sequence[dict[str, Any]], rows_dev: Sequence[dict[str, Any]], model: Any) -> dict[str, Any]:
    from costmw.plugins.router import keep_threshold

    cal = range(len(rows_train))  # single scorers fit nothing: every training answer calibrates them
    right_dev = np.asarray([r["right"] for r in rows_dev], dtype=bool)
    results: dict[str, Any] = {}
    for name, score in scorers(model).items():
        dev_scores = np.asarray([score(r) for r in rows_dev], dtype=np.float64)
        if np.isnan(dev_scores).any():
            continue
        if name.startswith("confidence"):
            threshold = model.threshold_for(QUALITY)
        else:  # each scorer's threshold from the training questions' calibration split
            cal_scores = [score(rows_train[i]) for i in cal]
            threshold = keep_threshold(cal_scores, [rows_train[i]["right"] for i in cal], QUALITY)
        results[name] = {**outcome(dev_scores, right_dev, threshold),
                         "hindsight_kept": best_share_on_dev(dev_scores, right_dev)}
    results["oracle"] = {"kept": float(right_dev.mean()), "accuracy": 1.0, "kept_right": 1.0,
                         "random_accuracy": 1.0 - float(right_dev.mean()) * (1.0 - float(right_dev.mean())),
                         "threshold": float("nan"), "hindsight_kept": float(right_dev.mean())}
    return results


def judging_cost(rows_dev: Sequence[dict[str, Any]], model: Any) -> dict[str, float]:
    from costmw.plugins.router import evidence

    start = time.perf_counter()
    for r in rows_dev:
        model.predict_one(evidence(r["prompt"], r["reply"], logprobs=r["logprobs"], finish_reason=r["finish_reason"]))
    per = (time.perf_counter() - start) / max(1, len(rows_dev))
    out = {"default_extra_tokens": 0.0, "default_judge_ms": per * 1000,
           "answer_s": float(np.mean([r["answer_s"] for r in rows_dev])),
           "answer_tokens": float(np.mean([len(r["logprobs"] or ()) for r in rows_dev]))}
    sampled = [r for r in rows_dev if "sample_tokens" in r]
    if sampled:
        out["agreement_extra_tokens"] = float(np.mean([r["sample_tokens"] for r in sampled]))
        out["agreement_extra_s"] = float(np.mean([r["judge_s"] for r in sampled]))
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
    rows_train = graded(answers(train_questions(), "train", generate=generate))
    dev = answers(dev_questions(), "dev", generate=generate)
    sampled = {r["prompt"]: r["samples"] for r in answers(dev_questions(), "dev", phase="samples",
                                                          generate=generate and args.samples)}
    rows_dev = graded(dev, sampled if len(sampled) == len(dev) else None)
    if not rows_dev:
        raise SystemExit("no cached answers for the validation set: run python -m benchmarks.cascade_answers")
    results = run(rows_train, rows_dev, model)
    cost = judging_cost(rows_dev, model)
    rows = [[name, f"{r['kept']:.1%}", f"{r['accuracy']:.1%}", f"{r['random_accuracy']:.1%}",
             "-" if math.isnan(r["kept_right"]) else f"{r['kept_right']:.1%}", f"{r['hindsight_kept']:.1%}"]
            for name, r in results.items()]
    print_table(f"cascade over SmolLM2-135M on {len(rows_dev)} validation questions (cheap right: "
                f"{np.mean([r['right'] for r in rows_dev]):.1%}); strong = always right; thresholds for "
                f"quality {QUALITY} from the training questions",
                ["scorer", "kept cheap", "final right", "random at same share", "kept right",
                 "kept at 95% in hindsight"], rows)
    print_table("cost of judging, per question", ["", "value"], [[k, f"{v:.4g}"] for k, v in cost.items()])
    out = {"questions": len(rows_dev), "train_questions": len(rows_train), "quality": QUALITY,
           "cheap_right": float(np.mean([r["right"] for r in rows_dev])), "scorers": results, "judging": cost}
    write_result("cascade", out)
    return out


if __name__ == "__main__":
    main()
