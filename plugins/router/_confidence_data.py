"""A confidence model for one's own traffic: answer one's prompts with the cheap model, grade, fit.

Each prompt is answered by the cheap target with token log-probabilities (batched when the target
batches). An answer is graded against the prompt's reference answer (``answer`` with ``check``:
number, exact or contains) or, without one, against a strong target's answer to the same prompt
(compared as a learning cascade compares an escalation: :func:`~._cascade.answers_agree`). The
quality thresholds are read off probabilities from models that did not see the answer
(cross-fitting). With the ``similar_right`` feature the prompts are embedded too, and the model
keeps them (float16) with whether each answer was right: a new prompt is judged partly by how the
cheap model did on the most similar of them (see :mod:`._neighbours`); in cross-fitting, held-out
rows are compared only with the other folds' prompts. ``costmw cascade-data`` runs this from the
command line.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from costmw.plugin_api import ConfigError, Request, Response, Target

from ._cascade import answers_agree
from ._confidence import ConfidenceModel
from ._evidence import evidence
from ._neighbours import NEIGHBOUR_FEATURE, NeighbourRate, TrafficMemory, prompt_template
from ._questions import CHECKS, check_reply

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_FEATURES", "NEIGHBOURS_K", "PRIOR_WEIGHT", "answer_prompts",
           "answer_prompts_sync", "calibration_folds", "fit_confidence", "held_out_probabilities", "neighbours_of"]

#: what a confidence model reads by default: the final answer span's token log-probabilities (mean,
#: minimum, top-2 margin), the whole answer's mean, a calculation that does not add up, an answer cut
#: at max_tokens, and the share right among the 10 most similar training prompts (chosen by
#: cross-validation on the generated training questions; no extra samples, so judging costs no extra
#: generation, only the prompt's embedding)
DEFAULT_FEATURES = ("span_mean", "span_min", "span_margin", "lp_mean", "a_wrong", "truncated", NEIGHBOUR_FEATURE)
#: how many similar past prompts ``similar_right`` reads, and its prior's weight (in neighbours)
NEIGHBOURS_K = 10
PRIOR_WEIGHT = 3.0
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
            right = answers_agree(answer.text, judged[i])  # as a learning cascade compares them
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


def neighbours_of(rows: Sequence[Mapping[str, Any]], *, embeddings: Any = None, embedder: Any = "minilm",
                  k: int = NEIGHBOURS_K, prior_weight: float = PRIOR_WEIGHT) -> NeighbourRate:
    """The rows' prompts (embedded by ``embedder``, unless their ``embeddings`` are given) with whether
    each answer was ``right``, grouped by :func:`~._neighbours.prompt_template`."""
    from costmw.embeddings import resolve_embedder

    model = resolve_embedder(embedder)
    prompts = [str(r["prompt"]) for r in rows]
    vectors = model.embed(prompts) if embeddings is None else embeddings
    if len(vectors) != len(rows):
        raise ConfigError(f"{len(rows)} rows but {len(vectors)} embeddings")
    return NeighbourRate(vectors, [bool(r["right"]) for r in rows], templates=[prompt_template(p) for p in prompts],
                         k=k, prior_weight=prior_weight, embedder=model.name)


def _split(rows: Sequence[Mapping[str, Any]], neighbours: NeighbourRate | None, inside: Sequence[int],
           outside: Sequence[int]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Evidence of the rows ``inside`` (fit on) and ``outside`` (judged); ``similar_right`` of a row
    inside leaves out itself and its template, of a row outside it reads the rows inside only."""
    fit = [dict(rows[i]["evidence"]) for i in inside]
    judged = [dict(rows[i]["evidence"]) for i in outside]
    if neighbours is not None:
        seen = neighbours.subset(inside)
        for row, value in zip(fit, seen.own_rates(), strict=True):
            row[NEIGHBOUR_FEATURE] = float(value)
        if outside:
            for row, value in zip(judged, seen.rate(neighbours.vectors[list(outside)]), strict=True):
                row[NEIGHBOUR_FEATURE] = float(value)
    return fit, judged


def fit_confidence(rows: Sequence[Mapping[str, Any]], *, features: Sequence[str] = DEFAULT_FEATURES,
                   folds: int = 5, l2: float = 3.0, seed: int = 0, by_category: bool = False,
                   confidence: float = DEFAULT_CONFIDENCE, embeddings: Any = None,
                   embedder: Any = "minilm") -> ConfidenceModel:
    """A confidence model fit on answered rows (``prompt``, ``evidence``, ``right``), calibrated by
    cross-fitting: each row's calibration probability comes from a model fit on the other ``folds - 1``
    folds (with ``by_category``, folds of whole kinds: see :func:`calibration_folds`), so the
    thresholds are read off answers the model did not see; the model kept is fit on all rows. Its
    thresholds reach a quality target by a one-sided lower bound at ``confidence``. A model that reads
    ``similar_right`` keeps the rows' prompt embeddings (``embeddings``, else computed by ``embedder``)."""
    if folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    neighbours = neighbours_of(rows, embeddings=embeddings, embedder=embedder) if NEIGHBOUR_FEATURE in features \
        else None
    everything = list(range(len(rows)))
    fit_rows, _ = _split(rows, neighbours, everything, [])
    model = ConfidenceModel(features, l2=l2).fit(fit_rows, [bool(r["right"]) for r in rows])
    model.neighbours = neighbours
    model.calibration = list(zip(held_out_probabilities(rows, features=features, folds=folds, l2=l2, seed=seed,
                                                        by_category=by_category, neighbours=neighbours),
                                 [bool(r["right"]) for r in rows], strict=True))
    model.confidence = confidence
    if neighbours is not None:
        model.learning_calibration = list(zip(
            learning_probabilities(rows, features=features, folds=folds, l2=l2, seed=seed, by_category=by_category,
                                   neighbours=neighbours),
            [bool(r["right"]) for r in rows], strict=True))
    model.info.update(calibration=len(rows), calibration_folds=folds, folds_by_category=by_category,
                      confidence=confidence)
    if neighbours is not None:
        model.info.update(neighbours=len(rows), neighbours_k=neighbours.k, prior_weight=neighbours.prior_weight)
    return model


def held_out_probabilities(rows: Sequence[Mapping[str, Any]], *, features: Sequence[str] = DEFAULT_FEATURES,
                           folds: int = 5, l2: float = 3.0, seed: int = 0, by_category: bool = False,
                           neighbours: NeighbourRate | None = None, embeddings: Any = None,
                           embedder: Any = "minilm") -> list[float]:
    """Each row's P(right) from a model fit on the other folds (see :func:`calibration_folds`); its
    ``similar_right`` compares it with the other folds' prompts only (``neighbours``: all rows'
    prompts, as :func:`neighbours_of` makes them)."""
    if NEIGHBOUR_FEATURE in features and neighbours is None:
        neighbours = neighbours_of(rows, embeddings=embeddings, embedder=embedder)
    if NEIGHBOUR_FEATURE not in features:
        neighbours = None
    held_out = [0.0] * len(rows)
    for _, outside, part, judged in _fold_models(rows, features, folds, l2, seed, by_category, neighbours):
        for i, p in zip(outside, part.predict(judged), strict=True):
            held_out[i] = float(p)
    return held_out


def _fold_models(rows: Sequence[Mapping[str, Any]], features: Sequence[str], folds: int, l2: float, seed: int,
                 by_category: bool, neighbours: NeighbourRate | None,
                 ) -> Iterator[tuple[list[int], list[int], ConfidenceModel, list[dict[str, float]]]]:
    """For each fold of :func:`calibration_folds` with rows in it: the rows outside it (fit on), the
    rows in it (judged), the model fit on the former and the latter's evidence (see :func:`_split`)."""
    fold = calibration_folds(rows, folds, seed, by_category=by_category)
    right = [bool(r["right"]) for r in rows]
    for k in range(folds):
        inside = [i for i in range(len(rows)) if fold[i] != k]
        outside = [i for i in range(len(rows)) if fold[i] == k]
        if not outside:
            continue
        fit_rows, judged = _split(rows, neighbours, inside, outside)
        yield inside, outside, ConfidenceModel(features, l2=l2).fit(fit_rows, [right[i] for i in inside]), judged


def learning_probabilities(rows: Sequence[Mapping[str, Any]], *, features: Sequence[str] = DEFAULT_FEATURES,
                           folds: int = 5, l2: float = 3.0, seed: int = 0, by_category: bool = False,
                           neighbours: NeighbourRate) -> list[float]:
    """Each row's P(right) as a cascade that learns from its traffic would give it: from a model fit
    on the other folds (as :func:`held_out_probabilities`), with the fold's rows coming as traffic in
    a shuffled order and each one, once judged, remembered with whether it was right
    (:class:`~._neighbours.TrafficMemory`). Every row is remembered here, where a cascade remembers
    only the answers it compares (escalated or checked, the doubtful ones, fewer of them right), so
    these probabilities run higher than a deployed cascade's and a threshold read off them keeps less
    than it allows, never more."""
    right = [bool(r["right"]) for r in rows]
    out = [0.0] * len(rows)
    vectors = neighbours.vectors.astype(np.float32)
    for k, (inside, outside, part, judged) in enumerate(
            _fold_models(rows, features, folds, l2, seed, by_category, neighbours)):
        memory = TrafficMemory(neighbours.subset(inside), max_prompts=len(outside))
        order = list(range(len(outside)))
        random.Random(seed * 1_000 + k).shuffle(order)
        for j in order:  # judged[j] is outside[j]'s evidence; its similar_right is read from the memory
            i = outside[j]
            out[i] = float(part.predict_one({**judged[j], NEIGHBOUR_FEATURE: float(memory.rate(vectors[i])[0])}))
            memory.add(vectors[i], right[i])
    return out
