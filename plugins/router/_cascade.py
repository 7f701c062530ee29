"""Cascades: the cheap target answers first; a scorer judges the answer; a low score escalates.

Scorers return a number in [0, 1] (1 = keep the cheap answer) or None when they cannot judge
(no log-probabilities in the answer, say). Several scorers combine by their lowest opinion.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import random
import re
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from costmw.embeddings import Embedder, aembed_request, embedded_already, resolve_embedder
from costmw.plugin_api import ConfigError, Request, Response, Target

from ._answer import REFUSAL, check_arithmetic, final_answer
from ._confidence import ConfidenceModel, default_confidence_model
from ._evidence import answer_span, evidence, token_stats
from ._model import QualityModel
from ._neighbours import NEIGHBOUR_FEATURE, TrafficMemory
from ._route import Route, RouteContext
from ._rules import request_tags
from ._strategy import Strategy

__all__ = ["AgreementScorer", "ArithmeticScorer", "Cascade", "ConfidenceScorer", "LogprobScorer", "RefusalScorer",
           "Scorer", "TokenScorer", "TrainedScorer", "as_scorer", "draw_samples"]

Sample = Callable[..., Awaitable[Response]]  # sample(**params): one more cheap answer

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORDS = re.compile(r"\w+")


class Scorer:
    """Judges a cheap answer: ``ascore`` returns [0, 1] or None; ``params`` are added to the cheap call."""

    name = "scorer"
    params: Mapping[str, Any] = {}

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        raise NotImplementedError


class RefusalScorer(Scorer):
    """0 for an empty answer (no text, no tool calls) or one that opens with a refusal, else 1."""

    name = "refusal"

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        if response.tool_calls:
            return 1.0
        text = response.text.strip()
        return 0.0 if not text or REFUSAL.search(text) else 1.0


def answer_key(text: str) -> str:
    """What two answers must share to agree: the last number if there is one, else the words."""
    numbers = _NUMBER.findall(text.replace(",", ""))
    if numbers:
        return str(float(numbers[-1]))
    return " ".join(w.lower() for w in _WORDS.findall(text))


def agreement(a: str, b: str) -> float:
    """1 when the answers agree (same final number, or same words), else their word overlap."""
    ka, kb = answer_key(a), answer_key(b)
    if ka == kb:
        return 1.0
    if _NUMBER.fullmatch(ka.replace(".0", "")) or _NUMBER.fullmatch(kb.replace(".0", "")):
        return 0.0
    wa, wb = set(ka.split()), set(kb.split())
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


class AgreementScorer(Scorer):
    """Draws ``samples`` more cheap answers (at ``temperature``) and scores their agreement with the first."""

    name = "agreement"

    def __init__(self, samples: int = 1, temperature: float = 0.7) -> None:
        if samples < 1:
            raise ConfigError(f"agreement scorer needs samples >= 1, got {samples}")
        self.samples = samples
        self.temperature = temperature

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        others = await draw_samples(sample, self.samples, self.temperature)
        return float(min(agreement(response.text, other) for other in others))


async def draw_samples(sample: Sample, count: int, temperature: float) -> list[str]:
    """``count`` more answers to the request, asked for in one call (``n=count``: a local target
    answers them in one batched forward pass); a target that returns fewer is asked again for the rest."""
    first = await sample(temperature=temperature, n=count)
    texts = [str(c.get("text", "")) for c in first.info.get("choices") or ()] or [first.text]
    while len(texts) < count:
        texts.append((await sample(temperature=temperature)).text)
    return texts[:count]


class TokenScorer(Scorer):
    """The probability the model gave its final answer: the geometric mean of the token probabilities
    over the answer's final span (its last number, or a short reply whole); needs ``logprobs``."""

    name = "tokens"
    params: Mapping[str, Any] = {"logprobs": True}

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        if response.logprobs is None:
            return None
        stats = token_stats(response.logprobs, response.text)
        return math.exp(stats["span_mean"]) if stats["has_logprobs"] else None


class ConfidenceScorer(Scorer):
    """P(the cheap answer is right) from a :class:`ConfidenceModel` over the answer's own evidence:
    token log-probabilities, agreement of extra samples (when the model reads them), answer checks.

    The score is a calibrated probability, so a cascade can set its threshold from a quality target
    (``Cascade(..., quality=0.95)``) through :meth:`threshold_for`. Without ``model`` it is the model
    shipped with costmw, fit on SmolLM2-135M's answers to generated questions. A model that reads
    ``similar_right`` (how the cheap model did on the most similar past prompts) embeds the prompt
    with ``embedder`` (default: the one the model's past prompts were embedded with, shared with the
    cache and the router, so a prompt is embedded once per request).

    With ``learn``, it learns from the prompts both models answered (:meth:`observe`, called by the
    cascade) and ``check_rate`` of kept answers; ``memory`` names a file that keeps what it learned
    across restarts (see :class:`~._neighbours.TrafficMemory`).
    """

    name = "confidence"

    def __init__(self, model: ConfidenceModel | str | Path | None = None, *, samples: int = 3,
                 temperature: float = 0.7, embedder: Embedder | str | None = None, learn: bool = False,
                 check_rate: float = 0.0, max_prompts: int = 10_000,
                 compare: Callable[[str, str], bool] | None = None, seed: int | None = None,
                 memory: str | os.PathLike[str] | None = None) -> None:
        self.model = model if isinstance(model, ConfidenceModel) else (
            ConfidenceModel.load(model) if model is not None else default_confidence_model())
        self.embedder: Embedder | None = None
        if self.model.needs_embedding and self.model.neighbours is not None:
            space = self.model.neighbours.embedder
            self.embedder = resolve_embedder(embedder if embedder is not None else space)
            if self.embedder.name != space:
                raise ConfigError(f"this confidence model's past prompts were embedded by {space!r}, not by "
                                  f"{self.embedder.name!r}: use that embedder")
        if samples < 1:
            raise ConfigError(f"confidence scorer needs samples >= 1, got {samples}")
        self.samples, self.temperature = samples, temperature
        self.params = {"logprobs": True, "top_logprobs": 2}
        self.traffic: TrafficMemory | None = None
        self.check_rate = _check_rate(check_rate, learn)
        _check_memory(memory, learn)
        if learn:
            if self.model.neighbours is None or self.embedder is None:
                raise ConfigError("learn=True needs a confidence model that reads similar_right (past prompts); "
                                  "this one does not")
            self.traffic = TrafficMemory(self.model.neighbours, max_prompts, path=memory)
        if compare is not None and not callable(compare):
            raise ConfigError(f"compare must be a function (cheap answer, strong answer) -> bool, got {compare!r}")
        self.compare: Callable[[str, str], bool] = compare if compare is not None else answers_agree
        self._rng = random.Random(seed)
        #: what learning from traffic has seen: answers compared, of them the cheap ones that agreed,
        #: kept answers sent to the strong model to be checked, and prompts read from ``memory``
        self.stats = {"observed": 0, "agreed": 0, "checked": 0,
                      "remembered": self.traffic.loaded if self.traffic is not None else 0}

    def threshold_for(self, quality: float) -> float:
        """The threshold for ``quality``: read off the answers as a learning cascade scores them when
        this scorer learns and the model has them, else off its held-out calibration answers."""
        return self.model.threshold_for(quality, learning=self.traffic is not None)

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        if response.tool_calls or (response.logprobs is None and self.model.needs_logprobs):
            return None  # no opinion: this model was fit on answers that came with log-probabilities
        others = await draw_samples(sample, self.samples, self.temperature) if self.model.needs_samples else None
        row = evidence(request.last_user_text, response.text, logprobs=response.logprobs, samples=others,
                       finish_reason=response.finish_reason)
        if self.embedder is not None:
            vector = await aembed_request(request, self.embedder)
            if self.traffic is not None:
                row = {**row, NEIGHBOUR_FEATURE: float(self.traffic.rate(vector[None, :], request.tenant)[0])}
            else:
                row = self.model.with_neighbours([row], vector[None, :])[0]
        return self.model.predict_one(row)

    def wants_check(self) -> bool:
        """Whether to send this kept answer's prompt to the strong model too (``check_rate`` of them)."""
        if self.check_rate <= 0.0 or self._rng.random() >= self.check_rate:
            return False
        self.stats["checked"] += 1
        return True

    def observe(self, request: Request, cheap: Response, strong: Response) -> bool | None:
        """Learn from one prompt both models answered: remember it, and whether the cheap answer
        agreed with the strong one (``compare``). None when not learning or the prompt was not embedded
        (the scorer had no opinion on it)."""
        if self.traffic is None or self.embedder is None or cheap.tool_calls or strong.tool_calls:
            return None
        vector = embedded_already(request, self.embedder)
        if vector is None:
            return None
        right = bool(self.compare(cheap.text, strong.text))
        self.traffic.add(vector, right, request.tenant)
        self.stats["observed"] += 1
        self.stats["agreed"] += int(right)
        return right


def _check_rate(rate: Any, learn: bool) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
        raise ConfigError(f"check_rate must be a share in [0, 1), got {rate!r}")
    if rate and not learn:
        raise ConfigError("check_rate needs learn=True (checked answers are what the scorer learns from)")
    return float(rate)


def _check_memory(memory: Any, learn: bool) -> None:
    if memory is None:
        return
    if not isinstance(memory, (str, os.PathLike)) or not str(memory):
        raise ConfigError(f"memory must be a file path, got {memory!r}")
    if not learn:
        raise ConfigError("memory needs learn=True (it is where what the scorer learns is kept)")
    if Path(memory).is_dir():
        raise ConfigError(f"memory must be a file path, and {str(memory)!r} is a folder")


def answers_agree(cheap: str, strong: str) -> bool:
    """Whether a cheap answer says what the strong one does: the same final answer (last number, a
    clock time or ratio compared whole, or the same words); a cheap answer of at most three words found
    word for word in the strong one ("Paris" in "The capital of France is Paris."); or a strong answer
    of at most three words (not a number) found word for word in the cheap answer's final answer span
    (its last sentence, :func:`~._evidence.answer_span`) with no negation there that the strong answer
    lacks ("The capital of Chile is Santiago." agrees with "Santiago"; "It is not Santiago." does not).
    Anything else counts as disagreeing, so the cheap model is never credited with an answer it did
    not give. What is compared is what the answers say, not their format: a sentence around a label
    agrees with the label alone (the confidence model reads a reply that ignores the asked format)."""
    a, b = answer_key(cheap), answer_key(strong)
    if not a:
        return False
    ta, tb = _last_time(cheap), _last_time(strong)
    if ta is not None or tb is not None:  # a clock time or a ratio is one value: "2:45" is not "3:45"
        return ta == tb
    if a == b:
        return True
    if _NUMBER.fullmatch(a.replace(".0", "")) or _NUMBER.fullmatch(b.replace(".0", "")):
        return False
    words = a.split()
    if len(words) <= 3 and f" {a} " in f" {b} ":
        return True
    return _states_short_answer(cheap, b)


# closed-class words that turn a statement around; a stated answer next to one is not taken as given
_NEGATED = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot)\b|n't\b|n’t\b", re.IGNORECASE)


def _states_short_answer(text: str, short: str) -> bool:
    """Whether ``text``'s final answer span holds ``short`` (the words of an answer of at most three
    words) word for word, not negated there unless ``short`` is itself negated."""
    wanted = short.split()
    if not wanted or len(wanted) > 3:
        return False
    start, end = answer_span(text)
    span = text[start:end]
    if f" {short} " not in f" {answer_key(span)} ":
        return False
    return not _NEGATED.search(span) or bool(_NEGATED.search(short))


_VALUE = re.compile(r"\d+(?::\d+)+|\d+(?:\.\d+)?")  # a clock time or ratio whole, else a number


def _last_time(text: str) -> tuple[int, ...] | None:
    """The last value written with colons (a clock time, a ratio) as its parts, if the text ends on one."""
    values = _VALUE.findall(text.replace(",", ""))
    if not values or ":" not in values[-1]:
        return None
    return tuple(int(part) for part in values[-1].split(":"))


def token_logprobs(response: Response) -> list[float]:
    """The answer tokens' log-probabilities: ``response.logprobs``, else those in the provider's raw answer."""
    if response.logprobs is not None:
        return [float(t["logprob"]) for t in response.logprobs]
    return _raw_logprobs(response.raw)


def _raw_logprobs(raw: Any) -> list[float]:
    try:
        choice = raw.choices[0] if not isinstance(raw, Mapping) else raw["choices"][0]
        lp: Any = choice.logprobs if not isinstance(choice, Mapping) else choice.get("logprobs")
        content = lp.get("content") if isinstance(lp, Mapping) else getattr(lp, "content", None)
        return [float(t.logprob if not isinstance(t, Mapping) else t["logprob"]) for t in content or ()]
    except (AttributeError, IndexError, KeyError, TypeError):
        return []


class LogprobScorer(Scorer):
    """The geometric mean of the answer's token probabilities, where the target reports them."""

    name = "logprob"
    params: Mapping[str, Any] = {"logprobs": True}

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        values = token_logprobs(response)
        return math.exp(sum(values) / len(values)) if values else None


class TrainedScorer(Scorer):
    """A QualityModel that judges the cheap answer; train it with :meth:`fit` on answers and labels.

    By default the model reads the prompt's embedding (shared with the cache and the router, so
    it costs nothing more), the prompt's text features and checks of the answer: its worked
    arithmetic, its final answer, the prompt's numbers it uses, hedges (see ``answer_features``).
    A QualityModel made without ``answers=True`` reads the prompt and answer as one text instead.
    """

    name = "trained"

    def __init__(self, model: QualityModel | str | Path | None = None, *, embedder: Embedder | str | None = None,
                 path: str | Path | None = None) -> None:
        spec = path if model is None else model
        self.model = spec if isinstance(spec, QualityModel) else (
            QualityModel.load(spec, embedder=embedder) if spec is not None else QualityModel(embedder, answers=True))

    @staticmethod
    def text(prompt: str, answer: str) -> str:
        return f"{prompt}\n\nAnswer: {answer}"

    def fit(self, prompts: Sequence[str], answers: Sequence[str], labels: Sequence[float], *,
            embeddings: Any = None) -> TrainedScorer:
        """Learn from the cheap target's ``answers`` to ``prompts``; a label is 1 when the answer was good enough.

        ``embeddings`` are the prompts' embeddings when already computed (ignored by a model that
        reads prompt and answer as one text).
        """
        if len(answers) != len(prompts):
            raise ConfigError(f"fit got {len(prompts)} prompts but {len(answers)} answers")
        if self.model.use_answers:
            self.model.fit(prompts, labels, answers=answers, embeddings=embeddings)
        else:
            self.model.fit([self.text(p, a) for p, a in zip(prompts, answers, strict=True)], labels)
        return self

    def predict(self, prompts: Sequence[str], answers: Sequence[str], *, embeddings: Any = None) -> Any:
        """The chance, per answer, that it is as good as the strong target's would be."""
        if self.model.use_answers:
            return self.model.predict(prompts, answers=answers, embeddings=embeddings)
        return self.model.predict([self.text(p, a) for p, a in zip(prompts, answers, strict=True)])

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        import asyncio

        if not self.model.fitted:
            return None
        prompt = request.last_user_text
        if self.model.use_answers:
            vector = await aembed_request(request, self.model.embedder, prompt)
            return self.model.predict_one(prompt, vector, response.text)
        text = self.text(prompt, response.text)
        return float((await asyncio.to_thread(self.model.predict, [text]))[0])


class ArithmeticScorer(Scorer):
    """Re-computes the answer's worked calculations (``12 * 3 = 36``, ``<<12*3=36>>``); no model needed.

    0 when a calculation does not add up, or when ``require_final`` and the answer gives no
    final number; 1 when every calculation checks out; None (no opinion) when there is nothing
    to check.
    """

    name = "arithmetic"

    def __init__(self, require_final: bool = False) -> None:
        self.require_final = require_final

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        text = response.text
        check = check_arithmetic(text)
        if check.wrong or (self.require_final and final_answer(text) is None):
            return 0.0
        return 1.0 if check.checked else None


class _FunctionScorer(Scorer):
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "function")

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        value = self.fn(request, response)
        if inspect.isawaitable(value):
            value = await value
        return None if value is None else float(value)


class _Lowest(Scorer):
    """Several scorers: the lowest opinion wins; scorers without an opinion are skipped."""

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        self.scorers = list(scorers)
        self.name = "+".join(s.name for s in self.scorers)
        self.params = {k: v for s in self.scorers for k, v in s.params.items()}

    async def ascore(self, request: Request, response: Response, sample: Sample) -> float | None:
        opinions = [await s.ascore(request, response, sample) for s in self.scorers]
        known = [o for o in opinions if o is not None]
        return min(known) if known else None


_SCORERS: dict[str, Callable[..., Scorer]] = {
    "refusal": RefusalScorer, "agreement": AgreementScorer, "logprob": LogprobScorer, "trained": TrainedScorer,
    "arithmetic": ArithmeticScorer, "tokens": TokenScorer, "confidence": ConfidenceScorer,
}


def as_scorer(spec: Any) -> Scorer:
    """A scorer from an object, a function ``fn(request, response) -> float``, a name, a dict or a list."""
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = str(options.pop("name", ""))
        if name not in _SCORERS:
            raise ConfigError(f"unknown cascade scorer {name!r}; known: {', '.join(sorted(_SCORERS))}")
        try:
            return _SCORERS[name](**options)
        except TypeError as exc:
            raise ConfigError(f"scorer {name!r}: {exc}") from exc
    if isinstance(spec, Sequence):
        return _Lowest([as_scorer(s) for s in spec])
    if callable(spec):
        return _FunctionScorer(spec)
    raise ConfigError(f"scorer must be a Scorer, a function, a name or a list, got {type(spec).__name__}")


_LOCAL_KINDS = frozenset({"hf", "llamacpp"})


def is_local(target: Target) -> bool:
    """Whether ``target`` is a model in this process that reports token log-probabilities."""
    return getattr(target, "kind", "") in _LOCAL_KINDS


class Cascade(Strategy):
    """Call ``cheap`` first; when ``scorer`` rates its answer below the threshold, call ``strong``.

    The threshold is ``threshold`` (a raw score), or, with ``quality``, the one a calibrated scorer
    (``"confidence"``) reads off its calibration set so that at least ``quality`` of final answers are
    right (escalated answers counted as right; for the shipped model, by a 95% lower bound). Without
    ``scorer``, a local cheap target (``HFTarget``, ``LlamaCppTarget``) is judged by the shipped
    confidence model at ``quality=0.95``; any other cheap target by the refusal check at
    ``threshold=0.5``.

    Both calls are paid for and both are costed on the response and in the ledger. ``cheap`` and
    ``strong`` default to the cheapest and the dearest target. With ``tags`` the cascade handles
    only requests tagged with one of them (``metadata={"tags": [...]}``) and abstains on others.

    The default scorer of a local cheap target learns from this cascade's own traffic (``learn``,
    on unless ``learn=False``): every escalation compares the cheap answer with the strong one
    (:func:`answers_agree`), and the prompt joins the past prompts the ``similar_right`` feature
    reads, so kinds of question the cheap model gets right come to be kept and kinds it gets wrong
    to be escalated. ``check_rate`` also sends that share of kept answers to the strong model (paid,
    and its answer is served) so that kept answers are learned from too. What it learns lives in the
    process unless ``memory`` names a file: it is then appended there and read back when the
    cascade starts again (processes may share the file). With a scorer of your own, pass these to
    ``ConfidenceScorer`` instead.
    """

    name = "cascade"

    def __init__(self, cheap: str | Target | None = None, strong: str | Target | None = None, *,
                 scorer: Any = None, threshold: float | None = None, quality: float | None = None,
                 tags: Sequence[str] | str = (), learn: bool | None = None, check_rate: float = 0.0,
                 memory: str | os.PathLike[str] | None = None) -> None:
        if scorer is not None and (learn is not None or check_rate or memory is not None):
            raise ConfigError("cascade: learn=, check_rate= and memory= set up the default scorer; with scorer= "
                              "of your own, pass them to it: ConfidenceScorer(learn=True, check_rate=..., memory=...)")
        self.learn = True if learn is None else bool(learn)
        self.check_rate = _check_rate(check_rate, self.learn)
        _check_memory(memory, self.learn)
        self.memory = memory
        if threshold is not None and quality is not None:
            raise ConfigError("cascade: give threshold= (a raw score) or quality= (a calibrated target), not both")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"cascade threshold must be in [0, 1], got {threshold}")
        if quality is not None and not 0.0 < quality <= 1.0:
            raise ConfigError(f"cascade quality must be in (0, 1], got {quality}")
        self.cheap = cheap.name if isinstance(cheap, Target) else cheap
        self.strong = strong.name if isinstance(strong, Target) else strong
        self.scorer = None if scorer is None else as_scorer(scorer)
        self.quality = quality
        self.threshold = None if threshold is None else float(threshold)
        if self.scorer is not None and quality is not None:
            self.threshold = _calibrated(self.scorer, quality)
        self.tags = frozenset([tags] if isinstance(tags, str) else (str(t) for t in tags))
        self._auto: tuple[Scorer, float] | None = None
        self._auto_lock = threading.Lock()  # one default scorer, however many first calls come at once

    def judge(self, cheap: Target) -> tuple[Scorer, float]:
        """The scorer and threshold for answers of ``cheap``."""
        if self.scorer is not None:
            return self.scorer, 0.5 if self.threshold is None else self.threshold
        if not is_local(cheap):
            return _REFUSAL, 0.5 if self.threshold is None else self.threshold
        with self._auto_lock:
            if self._auto is None:
                scorer = ConfidenceScorer(learn=self.learn, check_rate=self.check_rate, memory=self.memory)
                self._auto = scorer, (self.threshold if self.threshold is not None else
                                      _calibrated(scorer, self.quality if self.quality is not None else 0.95))
            return self._auto

    async def aroute(self, ctx: RouteContext) -> Route | None:
        if self.tags and not (request_tags(ctx.request) & self.tags):
            return None  # not a request this cascade is for: the next strategy decides
        ranked = ctx.by_cost(ctx.all_targets)
        by_name = {t.name: t for t in ctx.all_targets}
        cheap = by_name.get(self.cheap) if self.cheap else (ranked[0] if ranked else None)
        strong = by_name.get(self.strong) if self.strong else (ranked[-1] if ranked else None)
        if cheap is None or strong is None:
            raise ConfigError(f"cascade names targets {self.cheap!r}/{self.strong!r}; the router has {sorted(by_name)}")
        ok_cheap, ok_strong = ctx.target(cheap.name), ctx.target(strong.name)
        if ok_cheap is not None and ok_strong is not None and ok_cheap is not ok_strong:
            if self.scorer is None and self._auto is None and is_local(ok_cheap):
                # the first call builds the default scorer: its model, and the memory file it reads back
                scorer, threshold = await asyncio.to_thread(self.judge, ok_cheap)
            else:
                scorer, threshold = self.judge(ok_cheap)
            return Route(ok_cheap, self.name, threshold=threshold, escalate_to=ok_strong, scorer=scorer,
                         reason=f"cheap first, escalate when the {scorer.name} score < threshold")
        only = ok_cheap or ok_strong
        if only is None:
            return None
        other = strong if only is cheap else cheap
        rejected = {} if other is only else {other.name: ctx.why_not(other.name)}
        return Route(only, self.name, reason="no cascade: the only one of the pair allowed", rejected=rejected)

    def __repr__(self) -> str:
        scorer = "auto" if self.scorer is None else self.scorer.name
        return f"Cascade(cheap={self.cheap!r}, strong={self.strong!r}, scorer={scorer!r})"


def _calibrated(scorer: Scorer, quality: float) -> float:
    threshold_for = getattr(scorer, "threshold_for", None)
    if threshold_for is None:
        raise ConfigError(f"cascade quality= needs a calibrated scorer (such as 'confidence'); {scorer.name!r} "
                          "gives raw scores: set threshold= instead")
    return float(threshold_for(quality))


_REFUSAL = RefusalScorer()
