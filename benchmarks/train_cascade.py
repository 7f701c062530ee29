"""Fit the cascade's default confidence model on SmolLM2-135M's answers to generated questions.

Questions come from :func:`costmw.plugins.router.synthetic_questions` (never from the validation
set), answers from ``benchmarks/cascade_answers.py`` (cached). The quality thresholds are read off
cross-fitted probabilities (5 folds, stratified by kind). Writes ``plugins/router/cascade_local.json``,
the model ``Cascade`` uses for local cheap targets.

    nice -n 10 python -m benchmarks.cascade_answers greedy train   # answers (slow on a busy CPU)
    python -m benchmarks.train_cascade
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.cascade_answers import MAX_TOKENS, answers, train_questions

OUT = Path(__file__).resolve().parents[1] / "plugins" / "router" / "cascade_local.json"


def graded(rows: Sequence[dict[str, Any]], samples: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Answered questions with their ``evidence`` and whether the answer was ``right``."""
    from costmw.plugins.router import check_reply, evidence

    return [{**r, "right": check_reply(r["reply"], r["answer"], r["check"]),
             "evidence": evidence(r["prompt"], r["reply"], logprobs=r["logprobs"], finish_reason=r["finish_reason"],
                                  samples=None if samples is None else samples.get(r["prompt"]))} for r in rows]


def train(*, generate: bool = False) -> Any:
    from costmw.plugins.router._confidence_data import fit_confidence

    rows = graded(answers(train_questions(), "train", generate=generate))
    model = fit_confidence(rows)
    model.info.update(source=f"SmolLM2-135M-Instruct answers (greedy, at most {MAX_TOKENS} tokens) to generated "
                             "questions", questions=len(rows), right=sum(r["right"] for r in rows) / len(rows))
    return model


def main() -> None:
    model = train()
    model.save(OUT)
    print(f"wrote {OUT}: {model.info}")
    for q in (0.9, 0.95, 0.98):
        print(f"  quality {q}: keep above P = {model.threshold_for(q):.3f}")


if __name__ == "__main__":
    main()
