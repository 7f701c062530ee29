"""Augmentation: paraphrases of training prompts, written by a model called through a costmw chain.

Only training prompts are paraphrased, and a paraphrase that comes out close to a validation prompt
is dropped, so augmentation cannot leak the held-out set into training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import ConfigError

from ._dedup import near_duplicate_pairs
from ._examples import Example

if TYPE_CHECKING:
    from ._data import CleanReport

__all__ = ["PARAPHRASE_INSTRUCTION", "augment_examples"]

log = logging.getLogger("costmw.make")

PARAPHRASE_INSTRUCTION = (
    "Rewrite the user's message in different words. Keep its meaning, its language and every fact in it. "
    "Reply with the rewritten message only."
)


def _paraphrase(chain: Any, model: str | None, text: str, variant: int) -> str:
    messages = [{"role": "system", "content": PARAPHRASE_INSTRUCTION},
                {"role": "user", "content": text}]
    params: dict[str, Any] = {"temperature": 0.7 if variant else 0.0}
    response = chain.complete(messages, model=model, metadata={"tags": ["costmw-augment"]}, **params)
    return str(response.text).strip()


def _with_new_user_turn(ex: Example, text: str) -> Example:
    messages = [dict(m) for m in ex.messages]
    for m in reversed(messages):
        if m.get("role") == "user":
            m["content"] = text
            break
    return Example(messages=messages, answer=ex.answer, meta={**ex.meta, "augmented": True})


def augment_examples(train: Sequence[Example], validation: Sequence[Example], *, augment: int, chain: Any,
                     model: str | None, method: str, threshold: float, embedder: Any,
                     report: CleanReport) -> list[Example]:
    """``train`` plus ``augment`` paraphrases of each prompt; failures and leaks are counted, not raised."""
    if chain is None:
        raise ConfigError("augmentation needs a chain (or --augment-model) to write paraphrases")
    if augment < 0:
        raise ConfigError(f"augment must be >= 0, got {augment}")
    fresh: list[Example] = []
    seen = {" ".join(ex.last_user_text.lower().split()) for ex in train}
    for ex in train:
        for variant in range(augment):
            try:
                text = _paraphrase(chain, model, ex.last_user_text, variant)
            except Exception as exc:
                report.augment_failed += 1
                if report.augment_failed == 1:
                    log.warning("costmw data: a paraphrase call failed (further failures counted): %s", exc)
                continue
            key = " ".join(text.lower().split())
            if not text or key in seen:
                report.augment_failed += 1
                continue
            seen.add(key)
            fresh.append(_with_new_user_turn(ex, text))
    if fresh and validation:
        texts = [e.prompt_text for e in validation] + [e.prompt_text for e in fresh]
        pairs = near_duplicate_pairs(texts, method=method, threshold=threshold, embedder=embedder)
        n_val = len(validation)
        leaked = {j - n_val for i, j, _ in pairs if i < n_val <= j}
        report.augment_failed += len(leaked)
        fresh = [e for k, e in enumerate(fresh) if k not in leaked]
    report.augmented = len(fresh)
    return [*train, *fresh]
