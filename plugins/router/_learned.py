"""Learned routing: a QualityModel scores the prompt; cheap when the score clears the threshold.

``Learned`` chooses between a cheap and a strong target, by the score or (``per_dollar=True``) by
the expected gain per extra dollar the strong target would cost for this request. ``CostAware``
generalises it to any number of targets: the cheapest one whose predicted quality meets the bar,
by each target's price.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from costmw.embeddings import Embedder, aembed_request
from costmw.plugin_api import ConfigError, Target

from ._calibrate import gain_per_dollar
from ._model import QualityModel
from ._route import Route, RouteContext, estimated_cost, rank_by_cost
from ._strategy import Strategy

__all__ = ["CostAware", "Learned", "extra_cost"]

log = logging.getLogger("costmw.router")

ROUTER_FILE = "router.json"


def _name(t: str | Target | None) -> str | None:
    return t.name if isinstance(t, Target) else t


def _model(spec: QualityModel | str | Path | None, embedder: Embedder | str | None) -> QualityModel:
    if isinstance(spec, QualityModel):
        return spec
    if spec is None:
        return QualityModel(embedder)
    return QualityModel.load(spec, embedder=embedder)


def extra_cost(cheap: Target, strong: Target, prompt_tokens: int, output_tokens: int) -> float:
    """USD the strong target costs more than the cheap one for a call of this size (may be <= 0)."""
    costs = []
    for target in (cheap, strong):
        cost = estimated_cost(target, prompt_tokens, output_tokens)
        if cost is None:
            raise ConfigError(f"per-dollar routing needs the price of target {target.name!r}: give it "
                              "price=(input, output) in USD per 1M tokens")
        costs.append(cost)
    return costs[1] - costs[0]


def _checked_threshold(threshold: float | None, per_dollar: bool) -> float | None:
    if threshold is None:
        return None if per_dollar else 0.5
    value = float(threshold)
    if per_dollar and not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"a per_dollar threshold is an expected gain per extra USD, a finite number >= 0; "
                          f"got {threshold!r}")
    if math.isnan(value):
        raise ConfigError("threshold must be a number, got NaN")
    return value


class _Scoring(Strategy):
    """Shared by the learned strategies: embedding (shared with the cache) and failure handling."""

    def __init__(self) -> None:
        self.failures = 0

    async def _score(self, model: QualityModel, ctx: RouteContext) -> float | None:
        text = ctx.request.last_user_text
        try:
            vector = await aembed_request(ctx.request, model.embedder, text)
            return model.predict_one(text, np.asarray(vector))
        except ConfigError:
            raise
        except Exception as exc:  # an embedder failure must not fail the call
            self.failures += 1
            if self.failures == 1:
                log.warning("router: scoring failed, falling back to the next strategy "
                            "(further failures counted only): %s", exc)
            return None


class Learned(_Scoring):
    """Send a request to ``cheap`` when the model's score (chance cheap answers as well as strong)
    is at least ``threshold``, else to ``strong``.

    With ``per_dollar=True`` the request goes to ``strong`` when the expected gain per extra dollar,
    ``(1 - score) / (strong's cost - cheap's cost)`` for this request's prompt tokens and expected
    answer tokens, is above ``threshold`` (then in gain per USD, and with no default: pass it or
    calibrate), and always when the strong target is not dearer. At equal scores, long (dear)
    requests stay cheap while short ones escalate, which spends less for the same quality.

    ``cheap``/``strong`` default to the cheapest and the dearest of the router's targets. An
    untrained model abstains, so a composed strategy behind it decides.
    """

    name = "learned"
    model: QualityModel
    cheap: str | None
    strong: str | None
    threshold: float | None
    per_dollar: bool

    def __init__(self, model: QualityModel | str | Path | None = None, *, cheap: str | Target | None = None,
                 strong: str | Target | None = None, threshold: float | None = None,
                 per_dollar: bool | None = None, embedder: Embedder | str | None = None,
                 path: str | Path | None = None) -> None:
        super().__init__()
        if path is not None:  # a saved router; arguments given here override what was saved
            saved = Learned.load(path, embedder=embedder)
            if per_dollar is not None and bool(per_dollar) != saved.per_dollar and threshold is None:
                raise ConfigError(f"the router saved at {str(path)!r} has per_dollar={saved.per_dollar}; its "
                                  "threshold is in other units, so pass threshold= when changing per_dollar")
            model = saved.model if model is None else model
            cheap = cheap if cheap is not None else saved.cheap
            strong = strong if strong is not None else saved.strong
            per_dollar = saved.per_dollar if per_dollar is None else per_dollar
            threshold = saved.threshold if threshold is None else threshold
        self.model = _model(model, embedder)
        self.cheap = _name(cheap)
        self.strong = _name(strong)
        self.per_dollar = bool(per_dollar)
        self.threshold = _checked_threshold(threshold, self.per_dollar)

    def pair(self, ctx: RouteContext) -> tuple[Target | None, Target | None]:
        """The cheap and strong targets (by name, else by price among all the router's targets)."""
        return self.pair_among(ctx.all_targets, ctx.prompt_tokens, ctx.output_tokens)

    def pair_among(self, targets: Sequence[Target], prompt_tokens: int,
                   output_tokens: int) -> tuple[Target | None, Target | None]:
        """The cheap and strong targets among ``targets`` for a call of this size."""
        everyone = rank_by_cost(targets, prompt_tokens, output_tokens)
        by_name = {t.name: t for t in targets}
        cheap = by_name.get(self.cheap) if self.cheap else (everyone[0] if everyone else None)
        strong = by_name.get(self.strong) if self.strong else (everyone[-1] if everyone else None)
        if (self.cheap and cheap is None) or (self.strong and strong is None):
            raise ConfigError(f"learned strategy names targets {self.cheap!r}/{self.strong!r}; "
                              f"the router has {sorted(by_name)}")
        return cheap, strong

    async def aroute(self, ctx: RouteContext) -> Route | None:
        if not self.model.fitted:
            return None
        if self.per_dollar and self.threshold is None:
            raise ConfigError("a per_dollar learned strategy needs a threshold in expected gain per USD: "
                              "pass threshold=... or call router.calibrate(...)")
        cheap, strong = self.pair(ctx)
        if cheap is None or strong is None:
            return None
        ok_cheap, ok_strong = ctx.target(cheap.name), ctx.target(strong.name)
        if ok_cheap is None or ok_strong is None:
            only = ok_cheap or ok_strong
            if only is None:
                return None
            other = strong if only is cheap else cheap
            return Route(only, self.name, reason="the only one of the pair allowed",
                         rejected={other.name: ctx.why_not(other.name)})
        score = await self._score(self.model, ctx)
        if score is None:
            return None
        if self.per_dollar:
            return self._per_dollar_route(ctx, cheap, strong, score)
        assert self.threshold is not None
        if score >= self.threshold:
            return Route(cheap, self.name, score=score, threshold=self.threshold,
                         reason="cheap target predicted to answer as well",
                         rejected={strong.name: f"not needed: score {score:.3f} >= threshold {self.threshold:.3f}"})
        return Route(strong, self.name, score=score, threshold=self.threshold,
                     reason="cheap target predicted to fall short",
                     rejected={cheap.name: f"score {score:.3f} < threshold {self.threshold:.3f}"})

    def _per_dollar_route(self, ctx: RouteContext, cheap: Target, strong: Target, score: float) -> Route:
        """Strong when the expected gain per extra dollar is above the threshold; ``score`` is then that gain."""
        assert self.threshold is not None
        threshold = self.threshold
        extra = extra_cost(cheap, strong, ctx.prompt_tokens, ctx.output_tokens)
        gain = float(gain_per_dollar([score], [extra])[0])
        details = {"unit": "expected gain per extra USD", "chance_cheap_ok": round(score, 4),
                   "extra_cost_usd": round(extra, 10)}
        if math.isinf(gain):
            return Route(strong, self.name, threshold=threshold, details=details,
                         reason="strong target costs no more for this request",
                         rejected={cheap.name: f"not cheaper: the strong target costs ${extra:.6f} more"})
        facts = f"chance cheap answers as well {score:.3f}, strong costs ${extra:.6f} more"
        if gain > threshold:
            return Route(strong, self.name, score=gain, threshold=threshold, details=details,
                         reason="expected gain per extra dollar above the threshold",
                         rejected={cheap.name: f"gain {gain:.4g} per USD > threshold {threshold:.4g} ({facts})"})
        return Route(cheap, self.name, score=gain, threshold=threshold, details=details,
                     reason="expected gain per extra dollar not worth the strong target",
                     rejected={strong.name: f"not worth it: gain {gain:.4g} per USD <= threshold "
                                            f"{threshold:.4g} ({facts})"})

    def save(self, path: str | Path) -> Path:
        folder = self.model.save(path)
        meta = {"strategy": self.name, "threshold": self.threshold, "per_dollar": self.per_dollar,
                "cheap": self.cheap, "strong": self.strong}
        (folder / ROUTER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | str | None = None) -> Learned:
        meta = _read_meta(path, cls.name)
        threshold = meta.get("threshold", 0.5)
        return cls(QualityModel.load(path, embedder=embedder), cheap=meta.get("cheap"), strong=meta.get("strong"),
                   threshold=None if threshold is None else float(threshold),
                   per_dollar=bool(meta.get("per_dollar", False)))

    def __repr__(self) -> str:
        if not self.per_dollar:
            return f"Learned(cheap={self.cheap!r}, strong={self.strong!r}, threshold={self.threshold:.3f})"
        threshold = "None" if self.threshold is None else f"{self.threshold:.4g}"
        return f"Learned(cheap={self.cheap!r}, strong={self.strong!r}, threshold={threshold}, per_dollar=True)"


class CostAware(_Scoring):
    """The cheapest target whose predicted quality meets ``bar``, for any number of targets.

    ``models`` maps a target name to the QualityModel that predicts whether that target answers
    well enough. Targets are tried cheapest first (by price for this request's size); a target
    without a model is trusted, so the dearest target usually has none. When no target meets the
    bar, the one with the best prediction is chosen.
    """

    name = "cost_aware"
    models: dict[str, QualityModel]
    bar: float

    def __init__(self, models: Mapping[str, QualityModel | str | Path] | None = None, *, bar: float | None = None,
                 embedder: Embedder | str | None = None, path: str | Path | None = None) -> None:
        super().__init__()
        if path is not None:  # a saved router; arguments given here override what was saved
            saved = CostAware.load(path, embedder=embedder)
            models = {**saved.models, **(models or {})}
            bar = saved.bar if bar is None else bar
        self.models = {str(k): _model(v, embedder) for k, v in (models or {}).items()}
        self.bar = 0.5 if bar is None else float(bar)
        self.embedder = embedder

    def model_for(self, target: str) -> QualityModel:
        if target not in self.models:
            self.models[target] = QualityModel(self.embedder)
        return self.models[target]

    async def aroute(self, ctx: RouteContext) -> Route | None:
        ranked = ctx.by_cost()
        if not ranked or not any(m.fitted for m in self.models.values()):
            return None
        rejected: dict[str, str] = {}
        best: tuple[float, int, Target] | None = None
        for i, target in enumerate(ranked):
            model = self.models.get(target.name)
            if model is None or not model.fitted:
                return Route(target, self.name, reason="cheapest target not predicted to fall short "
                             "(it has no quality model)", threshold=self.bar, rejected=rejected)
            score = await self._score(model, ctx)
            if score is None:
                return None
            if score >= self.bar:
                return Route(target, self.name, score=score, threshold=self.bar,
                             reason="cheapest target predicted to meet the bar", rejected=rejected)
            rejected[target.name] = f"predicted quality {score:.3f} < bar {self.bar:.3f}"
            best = max(best or (score, i, target), (score, i, target), key=lambda x: (x[0], x[1]))
        assert best is not None
        rejected.pop(best[2].name, None)
        return Route(best[2], self.name, score=best[0], threshold=self.bar,
                     reason="no target met the bar; best predicted quality", rejected=rejected)

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        subdirs = {}
        for name, model in self.models.items():
            if model.fitted:
                sub = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                model.save(folder / sub)
                subdirs[name] = sub
        meta = {"strategy": self.name, "bar": self.bar, "models": subdirs}
        (folder / ROUTER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | str | None = None) -> CostAware:
        meta = _read_meta(path, cls.name)
        models = {name: QualityModel.load(Path(path) / sub, embedder=embedder)
                  for name, sub in dict(meta.get("models") or {}).items()}
        return cls(models, bar=float(meta.get("bar", 0.5)), embedder=embedder)

    def __repr__(self) -> str:
        return f"CostAware(models={sorted(self.models)}, bar={self.bar:.3f})"


def _read_meta(path: str | Path, strategy: str) -> dict[str, Any]:
    file = Path(path) / ROUTER_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no saved router at {str(path)!r}: {exc}") from exc
    if meta.get("strategy") != strategy:
        raise ConfigError(f"{str(file)!r} holds a {meta.get('strategy')!r} router, not {strategy!r}")
    return dict(meta)
