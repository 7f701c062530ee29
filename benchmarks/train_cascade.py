"""Fit the cascade's default confidence model on SmolLM2-135M's answers to generated questions.

Questions come from :func:`costmw.plugins.router.synthetic_questions` (never from the validation
set); answers, with token log-probabilities, from ``benchmarks/cascade_answers.py``, committed in
``benchmarks/data/cascade_train.jsonl``. The quality thresholds are read off held-out probabilities:
5 folds of whole question kinds, so each answer is judged by a model that saw no question of its
kind, as a user's new traffic would be; a quality target must be met by the one-sided 95% lower
bound of the share right. Writes ``plugins/router/cascade_local.json``, the model ``Cascade`` uses
for local cheap targets, with the training prompts' MiniLM embeddings (float16) for its
``similar_right`` feature.

    python -m benchmarks.train_cascade              # fit on the committed answers
    python -m benchmarks.train_cascade --compare    # feature sets side by side (held-out kinds, random folds)

To regenerate the answers from nothing (slow on a busy CPU):

    nice -n 10 python -m benchmarks.cascade_answers greedy samples train export
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cascade_answers import MAX_TOKENS, MORE_PER_KIND, MORE_SEED, TRAIN_PER_KIND, TRAIN_SEED, load_train

OUT = Path(__file__).resolve().parents[1] / "plugins" / "router" / "cascade_local.json"
QUALITY = 0.95
#: feature sets compared by ``--compare`` (on the training answers only)
CANDIDATES: dict[str, tuple[str, ...]] = {
    "span only": ("span_mean", "span_min"),
    "span + margin": ("span_mean", "span_min", "span_margin"),
    "answer evidence": ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated"),
    "similar prompts only": ("similar_right",),
    "answer evidence + similar prompts (default)": ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong",
                                                    "truncated", "similar_right"),
    "answer evidence + format": ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated",
                                 "ignores_format", "asks_number", "asks_short"),
    "answer evidence + length": ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated",
                                 "log_tokens", "a_log_chars", "a_length_ratio"),
    "answer evidence + answer checks": ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated",
                                        "a_final_in_prompt", "a_has_number", "a_hedges", "a_repeats",
                                        "ignores_format"),
    "all token stats": ("lp_mean", "lp_min", "lp_q10", "lp_q25", "lp_median", "span_mean", "span_min", "span_first",
                        "span_margin", "log_tokens", "a_wrong", "truncated"),
    "all token stats + similar prompts": ("lp_mean", "lp_min", "lp_q10", "lp_q25", "lp_median", "span_mean",
                                          "span_min", "span_first", "span_margin", "log_tokens", "a_wrong", "truncated",
                                          "similar_right"),
}


def graded(rows: Sequence[Mapping[str, Any]], samples: Mapping[str, Sequence[str]] | None = None, *,
           with_samples: bool = True) -> list[dict[str, Any]]:
    """Answered questions with their ``evidence`` and whether the answer was ``right``; samples come
    from ``samples`` (by prompt) or the row's own ``samples`` (unless ``with_samples`` is false)."""
    from costmw.plugins.router import check_reply, evidence

    def drawn(r: Mapping[str, Any]) -> Sequence[str] | None:
        if not with_samples:
            return None
        return r.get("samples") if samples is None else samples.get(r["prompt"])

    return [{**r, "right": check_reply(r["reply"], r["answer"], r["check"]),
             "evidence": evidence(r["prompt"], r["reply"], logprobs=r["logprobs"], finish_reason=r["finish_reason"],
                                  samples=drawn(r))} for r in rows]


def train(rows: Sequence[Mapping[str, Any]] | None = None) -> Any:
    from costmw.plugins.router._confidence_data import fit_confidence

    answered = graded(load_train() if rows is None else rows, with_samples=False)
    model = fit_confidence(answered, by_category=True)
    model.info.update(source=f"SmolLM2-135M-Instruct answers (greedy, at most {MAX_TOKENS} tokens) to generated "
                             "questions", questions=len(answered), per_kind=TRAIN_PER_KIND, seed=TRAIN_SEED,
                      more_per_kind=MORE_PER_KIND, more_seed=MORE_SEED,
                      kinds=len({r["category"] for r in answered}),
                      right=sum(r["right"] for r in answered) / len(answered))
    return model


def _auc(scores: np.ndarray, right: np.ndarray) -> float:
    """The chance a right answer scores above a wrong one (ties count half)."""
    good, bad = scores[right], scores[~right]
    if not len(good) or not len(bad):
        return float("nan")
    wins = (good[:, None] > bad[None, :]).sum() + 0.5 * (good[:, None] == bad[None, :]).sum()
    return float(wins / (len(good) * len(bad)))


def compare(rows: Sequence[Mapping[str, Any]], *, by_category: bool = True,
            seeds: Sequence[int] = (0, 1, 2)) -> list[list[str]]:
    """Held-out AUC, log loss and share kept at quality 0.95 for each candidate feature set, averaged
    over fold seeds: 5 folds of whole kinds (``by_category``), else 5 random folds (every kind in every
    fold). ``similar_right`` of a held-out row reads only the other folds' prompts."""
    from costmw.plugins.router import keep_threshold
    from costmw.plugins.router._confidence_data import DEFAULT_CONFIDENCE, held_out_probabilities, neighbours_of

    right = np.asarray([bool(r["right"]) for r in rows])
    neighbours = neighbours_of(rows)
    table = []
    for name, features in CANDIDATES.items():
        scores = []
        for seed in seeds:
            p = np.asarray(held_out_probabilities(rows, features=features, by_category=by_category, seed=seed,
                                                  neighbours=neighbours))
            loss = float(-np.mean(np.where(right, np.log(np.clip(p, 1e-9, 1)), np.log(np.clip(1 - p, 1e-9, 1)))))
            kept = [float((p >= keep_threshold(p.tolist(), right.tolist(), QUALITY, confidence=c)).mean())
                    for c in (0.0, DEFAULT_CONFIDENCE)]
            scores.append([_auc(p, right), loss, *kept])
        auc, loss, kept_raw, kept_bound = np.mean(scores, axis=0)
        table.append([name, str(len(features)), f"{auc:.3f}", f"{loss:.3f}", f"{kept_raw:.1%}", f"{kept_bound:.1%}"])
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="compare feature sets instead of writing the model")
    args = parser.parse_args(argv)
    if args.compare:
        from benchmarks._common import print_table

        rows = graded(load_train(), with_samples=False)
        for by_category, how in ((True, "5 folds of whole kinds"), (False, "5 random folds")):
            print_table(f"feature sets on {len(rows)} training answers, held out: {how}, mean of 3 fold seeds "
                        f"(quality {QUALITY})", ["features", "n", "AUC", "log loss", "kept (as counted)",
                                                 "kept (95% bound)"], compare(rows, by_category=by_category))
        return
    model = train()
    model.save(OUT)
    print(f"wrote {OUT}: {model.info}")
    for q in (0.9, 0.95, 0.98):
        print(f"  quality {q}: keep above P = {model.threshold_for(q):.3f} "
              f"({model.threshold_for(q, learning=True):.3f} for a cascade that learns from its traffic)")


if __name__ == "__main__":
    main()
