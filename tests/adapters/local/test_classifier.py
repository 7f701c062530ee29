"""ClassifierTarget: label tasks answered by a small sequence classifier, batched in one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import ClassifierTarget

from costmw import ConfigError, Request


def review(text: str) -> Request:
    return Request.create([{"role": "system", "content": "Classify the review."},
                           {"role": "user", "content": text}], "gpt-4o-mini")


async def test_answers_with_a_label_and_its_scores(tiny_classifier: Path) -> None:
    target = ClassifierTarget(tiny_classifier, price=(0.01, 0.01))
    response = await target.acomplete(review("the food was great"))
    assert response.text in ("negative", "positive")
    scores = response.info["scores"]
    assert set(scores) == {"negative", "positive"} and sum(scores.values()) == pytest.approx(1.0)
    assert response.text == max(scores, key=scores.__getitem__)
    assert response.usage.prompt_tokens == len(target._ready().tokenizer("the food was great")["input_ids"])
    assert response.usage.completion_tokens >= 1 and response.cost_usd > 0


async def test_labels_option_renames_the_classes(tiny_classifier: Path) -> None:
    named = ClassifierTarget(tiny_classifier, labels=["bad", "good"])
    plain = ClassifierTarget(tiny_classifier)
    a = await named.acomplete(review("the service was slow"))
    b = await plain.acomplete(review("the service was slow"))
    assert {"negative": "bad", "positive": "good"}[b.text] == a.text


async def test_a_batch_is_one_forward_pass(tiny_classifier: Path) -> None:
    target = ClassifierTarget(tiny_classifier).load()
    texts = ["great", "the food was great, the service was slow and the room was cold", "slow"]
    singles = [await target.acomplete(review(t)) for t in texts]
    entry = target._ready()
    calls: list[int] = []
    original = entry.model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    entry.model.forward = counting
    try:
        batch = await target.abatch([review(t) for t in texts])
    finally:
        del entry.model.forward
    assert calls == [3]
    for one, many in zip(singles, batch, strict=True):
        assert not isinstance(many, BaseException)
        assert many.text == one.text
        assert many.info["scores"] == pytest.approx(one.info["scores"], abs=1e-4)


def test_label_mistakes_are_reported(tiny_classifier: Path, tiny_lm: Path) -> None:
    with pytest.raises(ConfigError, match="3 labels given but the model .* has 2 classes"):
        ClassifierTarget(tiny_classifier, labels=["a", "b", "c"])
    with pytest.raises(ConfigError, match="distinct"):
        ClassifierTarget(tiny_classifier, labels=["a", "a"])
    with pytest.raises(ConfigError, match="list of label names"):
        ClassifierTarget(tiny_classifier, labels="positive")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a sequence classifier .*LlamaForCausalLM"):
        ClassifierTarget(tiny_lm)
    with pytest.raises(ConfigError, match="does not exist"):
        ClassifierTarget(tiny_lm.parent / "missing-model")
