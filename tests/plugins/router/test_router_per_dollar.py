"""Learned routing by expected gain per extra dollar: routing, calibration, save/load, bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import (
    Learned,
    QualityModel,
    escalation_order,
    gain_per_dollar,
    routing_curve,
    sends_to_strong,
    threshold_for_quality,
    threshold_for_share,
)

from costmw import Chain, ConfigError
from costmw.embeddings import HashingEmbedder


def pair() -> tuple[MockTarget, MockTarget]:
    """A cheap and a strong target with room for long prompts (the fixtures' cheap one has 50 tokens)."""
    return MockTarget(name="cheap", price=(0.1, 0.4)), MockTarget(name="strong", price=(10.0, 30.0))


def constant_model(chance: float) -> QualityModel:
    """A trained model that gives every prompt the same score."""
    model = QualityModel(HashingEmbedder(64), features=False)
    model.coef = np.zeros(64)
    model.intercept = math.log(chance / (1 - chance))
    return model


def hard_and_easy(n: int = 80) -> tuple[list[str], np.ndarray]:
    """Hard questions (label 0) of every length, and short easy ones (label 1)."""
    prompts, labels = [], []
    for i in range(n):
        if i % 2:
            prompts.append(f"say hello to friend{i}")
            labels.append(1.0)
        else:
            prompts.append(f"prove theorem{i} holds " + "in detail " * (i % 7) * 20)
            labels.append(0.0)
    return prompts, np.array(labels)


def test_same_score_long_prompt_stays_cheap_short_one_escalates(make_chain: Callable[..., Chain]) -> None:
    cheap, strong = pair()
    router = ModelRouter([cheap, strong], strategy=Learned(constant_model(0.6), per_dollar=True, threshold=100.0))
    chain = make_chain(router)
    short = chain.complete(ask("is 7 prime?"), model="strong", max_tokens=10).info["route"]
    long = chain.complete(ask("is 7 prime? " + "Context sentence here. " * 400), model="strong",
                          max_tokens=10).info["route"]
    assert short["served"] == "strong" and long["served"] == "cheap"
    assert short["chance_cheap_ok"] == long["chance_cheap_ok"] == 0.6
    assert short["unit"] == long["unit"] == "expected gain per extra USD"
    assert short["threshold"] == long["threshold"] == 100.0
    assert short["score"] > 100.0 >= long["score"]  # the score is the gain per extra USD
    assert long["score"] == pytest.approx(0.4 / long["extra_cost_usd"], rel=1e-3)
    assert "per USD > threshold" in short["rejected"]["cheap"]
    assert "not worth it" in long["rejected"]["strong"]
    # the same score without per_dollar sends both the same way
    plain = make_chain(ModelRouter(list(pair()), strategy=Learned(constant_model(0.6), threshold=0.7)))
    assert plain.complete(ask("is 7 prime?"), model="strong").info["route"]["served"] == "strong"
    assert plain.complete(ask("is 7 prime? " + "Context. " * 400), model="strong").info["route"]["served"] == "strong"


def test_strong_target_that_is_not_dearer_is_chosen(make_chain: Callable[..., Chain]) -> None:
    cheap = MockTarget(name="cheap", price=(1.0, 1.0))
    strong = MockTarget(name="strong", price=(1.0, 1.0))
    strategy = Learned(constant_model(0.99), cheap="cheap", strong="strong", per_dollar=True, threshold=1e9)
    info = make_chain(ModelRouter([cheap, strong], strategy=strategy)).complete(ask(), model="x").info["route"]
    assert info["served"] == "strong" and info["score"] is None
    assert info["reason"] == "strong target costs no more for this request"
    assert info["extra_cost_usd"] == 0.0


def test_gain_per_dollar_and_escalation_order() -> None:
    scores = np.array([0.5, 0.5, 0.9, 0.2])
    extra = np.array([0.01, 0.001, 0.001, 0.0])
    gain = gain_per_dollar(scores, extra)
    np.testing.assert_allclose(gain[:3], [50.0, 500.0, 100.0])
    assert np.isinf(gain[3])
    assert escalation_order(scores, extra).tolist() == [3, 1, 2, 0]
    assert escalation_order(scores).tolist() == [3, 0, 1, 2]
    assert sends_to_strong(scores, 100.0, extra).tolist() == [False, True, False, True]
    assert sends_to_strong(scores, 1e9, extra).tolist() == [False, False, False, True]
    assert sends_to_strong(scores, 0.5).tolist() == [False, False, False, True]
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        threshold = threshold_for_share(scores, share, extra_cost=extra)
        assert threshold >= 0 and sends_to_strong(scores, threshold, extra).sum() == max(1, round(4 * share))
    with pytest.raises(ConfigError, match="4 scores but 3 extra costs"):
        gain_per_dollar(scores, extra[:3])
    with pytest.raises(ConfigError, match="finite"):
        gain_per_dollar(scores, [0.1, np.nan, 0.1, 0.1])


def constructed() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short prompts the cheap target gets half right, long ones (ten times dearer) it gets 40% right."""
    i = np.arange(50)
    scores = np.concatenate([0.50 + 0.001 * i, 0.35 + 0.001 * i])
    extra = np.concatenate([np.full(50, 0.001), np.full(50, 0.01)])
    cheap_ok = np.concatenate([i % 2, (i % 5 < 2).astype(int)]).astype(float)
    return scores, extra, cheap_ok


def test_per_dollar_calibration_meets_quality_for_less_money() -> None:
    scores, extra, cheap_ok = constructed()
    by_share = sends_to_strong(scores, threshold_for_quality(scores, 0.9, cheap_ok))
    by_dollar = sends_to_strong(scores, threshold_for_quality(scores, 0.9, cheap_ok, extra_cost=extra), extra)
    for mask in (by_share, by_dollar):
        assert np.where(mask, 1.0, cheap_ok).mean() >= 0.9
    assert extra[by_dollar].sum() < 0.8 * extra[by_share].sum()
    assert by_dollar.sum() > by_share.sum()  # more strong calls, each cheaper
    curve = routing_curve(scores, cheap_ok, extra_cost=extra)
    assert curve[0] == cheap_ok.mean() and curve[-1] == 1.0
    assert curve[50] == pytest.approx(cheap_ok.mean() + 0.25)  # the short prompts go first


def test_router_calibrates_with_the_prices_it_routes_by(make_chain: Callable[..., Chain]) -> None:
    cheap, strong = pair()
    router = ModelRouter([cheap, strong], strategy=Learned(embedder=HashingEmbedder(128), per_dollar=True))
    prompts, labels = hard_and_easy()
    router.fit(prompts, labels)
    sample, sample_labels = hard_and_easy(60)
    threshold = router.calibrate(sample, quality=0.9, labels=sample_labels, output_tokens=20)
    assert router.learned.threshold == threshold > 0
    chain = make_chain(router)
    served = [chain.complete(ask(p), model="strong", max_tokens=20).info["route"] for p in sample]
    extra = np.array([s["extra_cost_usd"] for s in served])
    to_strong = np.array([s["served"] == "strong" for s in served])
    assert np.all(to_strong == sends_to_strong(router.predict(sample), threshold, extra))
    assert np.where(to_strong, 1.0, sample_labels).mean() >= 0.9
    assert router.calibrate(sample, quality=0.9, labels=sample_labels, extra_cost=extra) == threshold
    share = router.calibrate(sample, strong_share=0.5, output_tokens=20)
    assert np.mean(sends_to_strong(router.predict(sample), share, extra)) == pytest.approx(0.5, abs=0.05)


def test_save_and_load_keep_the_mode(tmp_path: Path) -> None:
    cheap, strong = pair()
    router = ModelRouter([cheap, strong], strategy=Learned(embedder=HashingEmbedder(128), per_dollar=True,
                                                           threshold=250.0))
    prompts, labels = hard_and_easy()
    router.fit(prompts, labels)
    folder = router.save(tmp_path / "router")
    meta = json.loads((folder / "router.json").read_text())
    assert meta["per_dollar"] is True and meta["threshold"] == 250.0
    loaded = ModelRouter.load(folder, [cheap, strong])
    assert loaded.learned.per_dollar and loaded.learned.threshold == 250.0
    np.testing.assert_allclose(loaded.predict(prompts), router.predict(prompts), rtol=1e-6)
    configured = ModelRouter([cheap, strong], strategy={"name": "learned", "path": str(folder), "threshold": 90})
    assert configured.learned.per_dollar and configured.learned.threshold == 90.0
    with pytest.raises(ConfigError, match="pass threshold= when changing per_dollar"):
        Learned(path=folder, per_dollar=False)
    assert Learned(path=folder, per_dollar=False, threshold=0.4).threshold == 0.4
    assert "per_dollar=True" in repr(loaded.learned)


def test_bad_input_fails_clearly(make_chain: Callable[..., Chain]) -> None:
    with pytest.raises(ConfigError, match="finite number >= 0"):
        Learned(per_dollar=True, threshold=-1.0)
    cheap, strong = pair()
    uncalibrated = make_chain(ModelRouter([cheap, strong], strategy=Learned(constant_model(0.5), per_dollar=True)))
    with pytest.raises(ConfigError, match="needs a threshold"):
        uncalibrated.complete(ask(), model="strong")
    unpriced = MockTarget(name="strong", price=None)
    chain = make_chain(ModelRouter([cheap, unpriced], strategy=Learned(constant_model(0.5), cheap="cheap",
                                                                       strong="strong", per_dollar=True,
                                                                       threshold=1.0)))
    with pytest.raises(ConfigError, match="price of target 'strong'"):
        chain.complete(ask(), model="strong")
    prompts, labels = hard_and_easy()
    by_name = ModelRouter(["cheap", "strong"], strategy=Learned(embedder=HashingEmbedder(128), per_dollar=True))
    by_name.fit(prompts, labels)
    with pytest.raises(ConfigError, match="pass extra_cost="):
        by_name.calibrate(prompts, strong_share=0.3)
    with pytest.raises(ConfigError, match="80 prompts but 2 extra costs"):
        by_name.calibrate(prompts, strong_share=0.3, extra_cost=[0.1, 0.2])
    plain = ModelRouter([cheap, strong], strategy=Learned(embedder=HashingEmbedder(128)))
    plain.fit(prompts, labels)
    with pytest.raises(ConfigError, match="per_dollar=True"):
        plain.calibrate(prompts, strong_share=0.3, extra_cost=np.ones(80))
