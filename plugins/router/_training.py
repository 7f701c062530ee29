"""The router's learning API: fit, predict, calibrate, save/load, and labels from feedback."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from costmw.plugin_api import ConfigError, count_message_tokens, message_text

from ._calibrate import threshold_for_quality, threshold_for_share
from ._learned import ROUTER_FILE, CostAware, Learned, extra_cost
from ._route import DEFAULT_OUTPUT_TOKENS

if TYPE_CHECKING:
    from costmw import Chain
    from costmw.plugin_api import Ledger, Target

    from ._strategy import Strategy

__all__ = ["TrainingMixin"]

Labels = Sequence[float] | Sequence[bool] | np.ndarray


class TrainingMixin:
    """Learning methods of :class:`ModelRouter`; they act on its learned strategy."""

    strategy: Strategy
    _chain: Chain | None

    if TYPE_CHECKING:
        @property
        def targets(self) -> list[Target]: ...

    @property
    def learned(self) -> Learned | CostAware:
        """The router's learned strategy (the first Learned or CostAware in its strategy)."""
        for part in self.strategy.parts():
            if isinstance(part, (Learned, CostAware)):
                return part
        raise ConfigError("this router has no learned strategy: use strategy='learned' or 'cost_aware'")

    def _model(self, target: str | None) -> Any:
        learned = self.learned
        if isinstance(learned, CostAware):
            if target is None:
                raise ConfigError("a cost_aware router has one model per target: pass target=<name>")
            return learned.model_for(target)
        if target is not None and target != learned.cheap:
            raise ConfigError(f"a learned router has one model (for its cheap target), not one for {target!r}")
        return learned.model

    def fit(self, prompts: Sequence[str], labels: Labels | Mapping[str, Labels], *, target: str | None = None,
            embeddings: np.ndarray | None = None, feedback: bool = False) -> Any:
        """Train on prompts and labels: 1/True where the cheap target answered as well as the strong one.

        For a cost_aware router pass ``labels={target_name: labels}`` (or ``target=``). With
        ``feedback=True`` the labels recorded through ``chain.feedback`` are added.
        """
        prompts = list(prompts)
        if isinstance(labels, Mapping):
            for name, values in labels.items():
                self.fit(prompts, values, target=name, embeddings=embeddings, feedback=feedback)
            return self
        y = [float(v) for v in np.asarray(labels, dtype=np.float64).ravel()]
        if feedback:
            extra_prompts, extra_labels = self.feedback_data(target=target)
            prompts, y = prompts + extra_prompts, y + extra_labels
            embeddings = None if extra_prompts else embeddings
        self._model(target).fit(prompts, y, embeddings=embeddings)
        return self

    def predict(self, prompts: Sequence[str], *, target: str | None = None,
                embeddings: np.ndarray | None = None) -> np.ndarray:
        """Per prompt, the chance in [0, 1] that the cheap target (or ``target``) answers well enough."""
        result: np.ndarray = self._model(target).predict(list(prompts), embeddings=embeddings)
        return result

    def calibrate(self, prompts: Sequence[str], *, strong_share: float | None = None, quality: float | None = None,
                  labels: Labels | None = None, strong_labels: Labels | None = None, target: str | None = None,
                  embeddings: np.ndarray | None = None, output_tokens: int | Sequence[int] | None = None,
                  extra_cost: Sequence[float] | np.ndarray | None = None) -> float:
        """Set the threshold from a calibration sample and return it.

        ``strong_share``: send that share of these prompts to the strong target. ``quality``: the
        fewest strong calls whose accuracy is ``quality`` times the all-strong accuracy, judged with
        ``labels`` (cheap target correct) and ``strong_labels`` (strong target correct; default all).

        For a ``per_dollar`` learned strategy the threshold is in expected gain per extra USD and
        ``quality`` is met at the lowest cost instead. Each prompt's extra cost is priced as the
        router prices a request: the pair's prices at the prompt's tokens (one user message, the
        strong target's tokenizer) and ``output_tokens`` answer tokens (one number or one per
        prompt; default 256, as for a request without ``max_tokens``), unless ``extra_cost`` gives
        it in USD per prompt.
        """
        if (strong_share is None) == (quality is None):
            raise ConfigError("calibrate needs exactly one of strong_share=... or quality=...")
        prompts = list(prompts)
        extra = self._calibration_costs(prompts, output_tokens, extra_cost)
        scores = self.predict(prompts, target=target, embeddings=embeddings)
        if strong_share is not None:
            threshold = threshold_for_share(scores, strong_share, extra_cost=extra)
        else:
            if labels is None:
                raise ConfigError("calibrate(quality=...) needs labels= (whether the cheap target was correct)")
            assert quality is not None
            threshold = threshold_for_quality(scores, quality, labels, strong_labels, extra_cost=extra)
        learned = self.learned
        if isinstance(learned, CostAware):
            learned.bar = threshold
        else:
            learned.threshold = threshold
        return threshold

    def _calibration_costs(self, prompts: list[str], output_tokens: int | Sequence[int] | None,
                           given: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
        """Per prompt, USD the strong target costs more (None unless the strategy routes per dollar)."""
        learned = self.learned
        if not (isinstance(learned, Learned) and learned.per_dollar):
            if given is not None or output_tokens is not None:
                raise ConfigError("extra_cost= and output_tokens= apply only to a learned strategy with "
                                  "per_dollar=True")
            return None
        if given is not None:
            if output_tokens is not None:
                raise ConfigError("pass extra_cost= or output_tokens=, not both")
            extra = np.asarray(given, dtype=np.float64).ravel()
            if len(extra) != len(prompts):
                raise ConfigError(f"{len(prompts)} prompts but {len(extra)} extra costs")
            return extra
        outputs = _per_prompt(output_tokens, len(prompts))
        targets = self.targets
        if len(targets) < 2:
            raise ConfigError("per-dollar calibration prices each prompt with the router's targets: build the "
                              "router with Target objects (or put it in a chain first), or pass extra_cost=")
        by_name = {t.name: t for t in targets}
        model = by_name[learned.strong].model if learned.strong in by_name else None
        costs = []
        for prompt, out in zip(prompts, outputs, strict=True):
            tokens = count_message_tokens([{"role": "user", "content": prompt}], model)
            cheap, strong = learned.pair_among(targets, tokens, out)
            assert cheap is not None and strong is not None
            costs.append(extra_cost(cheap, strong, tokens, out))
        return np.asarray(costs, dtype=np.float64)

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the learned strategy (model weights as .npy, settings as JSON) into the folder ``path``."""
        return self.learned.save(path)

    @classmethod
    def load(cls, path: str | Path, targets: Sequence[Any] = (), **options: Any) -> Any:
        """A router whose strategy is the learned one saved at ``path`` (``options`` as in the constructor)."""
        kind = str(_read_any(path).get("strategy"))
        strategy: Strategy = Learned.load(path) if kind == Learned.name else CostAware.load(path)
        return cls(targets, strategy, **options)  # type: ignore[call-arg]

    # -- feedback ----------------------------------------------------------------------
    def feedback_data(self, target: str | None = None, ledger: Ledger | None = None) -> tuple[list[str], list[float]]:
        """Prompts and labels from ``chain.feedback``: answers ``target`` (default: the cheap one) served.

        Needs a ledger that keeps prompt text (``Ledger(store_text=True)``).
        """
        ledger = ledger or (self._chain.ledger if self._chain is not None else None)
        if ledger is None:
            raise ConfigError("feedback_data needs the chain's ledger: use the router in a chain, or pass ledger=")
        if not ledger.store_text:
            raise ConfigError("feedback needs prompts: build the chain with Ledger(store_text=True)")
        if target is None:
            learned = self.learned
            target = learned.cheap if isinstance(learned, Learned) else None
        labels = {f["request_id"]: 1.0 if f["good"] else 0.0 for f in ledger.feedback()}
        prompts: list[str] = []
        values: list[float] = []
        for row in ledger.rows():
            served = (row.info.get("route") or {}).get("served")
            if row.request_id not in labels or not row.prompt or (target is not None and served != target):
                continue
            user = [m for m in row.prompt if m.get("role") == "user"]
            if user:
                prompts.append(message_text(user[-1]))
                values.append(labels[row.request_id])
        return prompts, values


def _per_prompt(output_tokens: int | Sequence[int] | None, n: int) -> list[int]:
    """Answer tokens per prompt from one number, one per prompt, or the router's default."""
    if output_tokens is None:
        return [DEFAULT_OUTPUT_TOKENS] * n
    values = [output_tokens] * n if isinstance(output_tokens, (int, np.integer)) else list(output_tokens)
    if len(values) != n or any(int(v) < 0 for v in values):
        raise ConfigError(f"output_tokens must be a count >= 0 or one per prompt ({n}), got {output_tokens!r}")
    return [int(v) for v in values]


def _read_any(path: str | Path) -> dict[str, Any]:
    file = Path(path) / ROUTER_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no saved router at {str(path)!r}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("strategy") not in (Learned.name, CostAware.name):
        raise ConfigError(f"{str(file)!r} does not hold a learned or cost_aware router")
    return meta
