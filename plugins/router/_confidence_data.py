"""A confidence model for one's own traffic: answer one's prompts with the cheap model, grade, fit.

Each prompt is answered by the cheap target with token log-probabilities (batched when the target
batches). An answer is graded against the prompt's reference answer (``answer`` with ``check``:
number, exact or contains) or, without one, against a strong target's answer to the same prompt
(the two agree on their final number or final words). The quality thresholds are read off
probabilities from models that did not see the answer (cross-fitting). ``costmw cascade-data``
runs this from the command line.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from costmw.plugin_api import ConfigError, Request, Response, Target

from ._confidence import ConfidenceModel
from ._evidence import answer_key, evidence
from ._questions import CHECKS, check_reply

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_FEATURES", "answer_prompts", "answer_prompts_sync", "calibration_folds",
           "fit_confidence", "held_out_probabilities"]

#: what a confidence model reads by default: the final answer span's token log-probabilities (mean,
#: minimum, top-2 margin), the whole answer's mean, a calculation that does not add up, an answer cut
#: at max_tokens (chosen by cross-validation on the generated training questions; no extra samples,
#: so judging costs no extra generation)
DEFAULT_FEATURES = ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated")
#: the one-sided confidence at which a fit model's thresholds must reach a quality target
DEFAULT_CONFIDENCE = 0.95


def _request(prompt: str, max_tokens: int, **params: Any) -> Request:
    return Request.create([{"role": "user", "content": prompt}], "cascade-data",
                          params={"max_tokens": max_tokens, **params})


async def _answers(target: Target, requests: Sequence[Request], batch: int) -> list[Response]:
    out: list[Response] = []
    for i in range(0, len(requests), batch):
        group = requests[i:i + batch]
        if target.capabilities.batching:
            results = await target.abatch(group)
        else:
            results = [await target.acomplete(r) for r in group]
        for r in results:
            if isinstance(r, BaseException):
                raise r
            out.append(r)
    return out


def _checked(rows: Sequence[Mapping[str, Any]]) -> None:
    for i, row in enumerate(rows):
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ConfigError(f"row {i}: needs a non-empty 'prompt'")
        if row.get("check", "contains") not in CHECKS:
            raise ConfigError(f"row {i}: check must be one of {', '.join(CHECKS)}, got {row.get('check')!r}")


async def answer_prompts(cheap: Target, rows: Sequence[Mapping[str, Any]], *, judge: Target | None = None,
                         max_tokens: int = 64, batch: int = 8) -> list[dict[str, Any]]:
    """The cheap target's answer to each row's ``prompt``, with its evidence and ``right`` (graded
    against ``answer``/``check``, or against ``judge``'s answer where a row has no ``answer``)."""
    _checked(rows)
    if judge is None and any("answer" not in r for r in rows):
        raise ConfigError("rows without a reference 'answer' need a judge (a strong target) to grade against")
    prompts = [str(r["prompt"]) for r in rows]
    answers = await _answers(cheap, [_request(p, max_tokens, logprobs=True, top_logprobs=2) for p in prompts], batch)
    missing = [i for i, r in enumerate(rows) if "answer" not in r]
    judged: dict[int, str] = {}
    if missing and judge is not None:
        strong = await _answers(judge, [_request(prompts[i], max_tokens) for i in missing], batch)
        judged = {i: s.text for i, s in zip(missing, strong, strict=True)}
    out = []
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        if i in judged:
            right = answer_key(answer.text) == answer_key(judged[i])
        else:
            right = check_reply(answer.text, str(row["answer"]), str(row.get("check", "contains")))
        out.append({**row, "reply": answer.text, "right": right,
                    "evidence": evidence(prompts[i], answer.text, logprobs=answer.logprobs,
                                         finish_reason=answer.finish_reason)})
    return out


def answer_prompts_sync(cheap: Target, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`answer_prompts` from synchronous code."""
    return asyncio.run(answer_prompts(cheap, rows, **kwargs))


def calibration_folds(rows: Sequence[Mapping[str, Any]], folds: int = 5, seed: int = 0, *,
                      by_category: bool = False) -> list[int]:
    """A fold number for each row. By default rows are dealt in turn within each ``category`` (when
    rows have one) after a seeded shuffle, so every fold holds a share of every kind. With
    ``by_category`` (and at least ``folds`` categories) whole categories go to one fold each, so a
    row's held-out probability comes from a model that saw no question of its kind."""
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_kind.setdefault(str(r.get("category", "")), []).append(i)
    rng = random.Random(seed)
    fold = [0] * len(rows)
    if by_category and len(by_kind) >= folds:
        kinds = sorted(by_kind)
        rng.shuffle(kinds)
        for n, kind in enumerate(kinds):
            for i in by_kind[kind]:
                fold[i] = n % folds
        return fold
    dealt = 0
    for members in by_kind.values():
        rng.shuffle(members)
        for i in members:
            fold[i] = dealt % folds
            dealt += 1
    return fold


def fit_confidence(rows: Sequence[Mapping[str, Any]], *, features: Sequence[str] = DEFAULT_FEATURES,
                   folds: int = 5, l2: float = 3.0, seed: int = 0, by_category: bool = False,
                   confidence: float = DEFAULT_CONFIDENCE) -> ConfidenceModel:
    """A confidence model fit on answered rows (``evidence``, ``right``), calibrated by cross-fitting:
    each row's calibration probability comes from a model fit on the other ``folds - 1`` folds (with
    ``by_category``, folds of whole kinds: see :func:`calibration_folds`), so the thresholds are read
    off answers the model did not see; the model kept is fit on all rows. Its thresholds reach a
    quality target by a one-sided lower bound at ``confidence``."""
    if folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    model = ConfidenceModel(features, l2=l2).fit([r["evidence"] for r in rows], [bool(r["right"]) for r in rows])
    model.calibration = list(zip(held_out_probabilities(rows, features=features, folds=folds, l2=l2, seed=seed,
                                                        by_category=by_category),
                                 [bool(r["right"]) for r in rows], strict=True))
    model.confidence = confidence
    model.info.update(calibration=len(rows), calibration_folds=folds, folds_by_category=by_category,
                      confidence=confidence)
    return model


def held_out_probabilities(rows: Sequence[Mapping[str, Any]], *, features: Sequence[str] = DEFAULT_FEATURES,
                           folds: int = 5, l2: float = 3.0, seed: int = 0, by_category: bool = False) -> list[float]:
    """Each row's P(right) from a model fit on the other folds (see :func:`calibration_folds`)."""
    fold = calibration_folds(rows, folds, seed, by_category=by_category)
    evidence_rows = [r["evidence"] for r in rows]
    right = [bool(r["right"]) for r in rows]
    held_out = [0.0] * len(rows)
    for k in range(folds):
        inside = [i for i in range(len(rows)) if fold[i] != k]
        outside = [i for i in range(len(rows)) if fold[i] == k]
        if not outside:
            continue
        part = ConfidenceModel(features, l2=l2).fit([evidence_rows[i] for i in inside], [right[i] for i in inside])
        for i, p in zip(outside, part.predict([evidence_rows[i] for i in outside]), strict=True):
            held_out[i] = float(p)
    return held_out
