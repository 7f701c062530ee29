"""The learned router: fit, predict, calibrate, route by threshold, save/load, cost-aware, feedback."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import CostAware, Learned, QualityModel, threshold_for_quality

from costmw import Chain, ConfigError
from costmw.embeddings import HashingEmbedder

HARD = ["prove the integral of {} converges", "derive the eigenvalues of matrix {}",
        "solve the differential equation {}"]
EASY = ["what is the capital of {}", "say hello to {}", "translate thanks into {}"]


def data(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = random.Random(seed)
    prompts, labels = [], []
    for i in range(n):
        hard = i % 2 == 0
        prompts.append(rng.choice(HARD if hard else EASY).format(f"item{rng.randint(0, 999)}"))
        labels.append(0.0 if hard else 1.0)
    return prompts, np.array(labels)


def learned_router(cheap: MockTarget, strong: MockTarget, **kw: object) -> ModelRouter:
    return ModelRouter([cheap, strong], strategy=Learned(embedder=HashingEmbedder(128), **kw))  # type: ignore[arg-type]


def test_fit_and_predict_probabilities(cheap: MockTarget, strong: MockTarget) -> None:
    router = learned_router(cheap, strong)
    prompts, labels = data()
    router.fit(prompts, labels)
    test_prompts, test_labels = data(40, seed=1)
    scores = router.predict(test_prompts)
    assert scores.shape == (40,) and scores.dtype.kind == "f"
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[test_labels == 1].min() > scores[test_labels == 0].max()  # separable toy data
    with pytest.raises(ConfigError, match="labels"):
        router.fit(prompts[:3], labels[:3])
    with pytest.raises(ConfigError, match="120 prompts but 2 labels"):
        router.fit(prompts, labels[:2])


def test_calibrate_by_share_and_quality(cheap: MockTarget, strong: MockTarget) -> None:
    router = learned_router(cheap, strong)
    prompts, labels = data()
    router.fit(prompts, labels)
    calib, calib_labels = data(100, seed=2)
    threshold = router.calibrate(calib, strong_share=0.3)
    share = float(np.mean(router.predict(calib) < threshold))
    assert share == pytest.approx(0.3, abs=0.02)
    assert router.learned.threshold == threshold
    threshold = router.calibrate(calib, quality=0.95, labels=calib_labels)
    strong_mask = router.predict(calib) < threshold
    quality = float(np.mean(np.where(strong_mask, 1.0, calib_labels)))
    assert quality >= 0.95
    assert strong_mask.mean() <= 0.55  # the hard half, give or take ties
    with pytest.raises(ConfigError, match="exactly one"):
        router.calibrate(calib)
    with pytest.raises(ConfigError, match="labels="):
        router.calibrate(calib, quality=0.9)


def test_threshold_for_quality_uses_both_targets_correctness() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.9])
    cheap_ok = np.array([0, 1, 0, 1])
    strong_ok = np.array([1, 1, 0, 1])
    threshold = threshold_for_quality(scores, 1.0, cheap_ok, strong_ok)
    assert np.sum(scores < threshold) == 1  # only the first needs the strong target; the third fails both


def test_routes_by_threshold_and_explains(make_chain: Callable[..., Chain], cheap: MockTarget,
                                          strong: MockTarget) -> None:
    router = learned_router(cheap, strong, threshold=0.5)
    router.fit(*data())
    chain = make_chain(router)
    easy = chain.complete(ask("what is the capital of item5"), model="strong")
    hard = chain.complete(ask("prove the integral of item5 converges"), model="strong")
    assert easy.served_by == "target:cheap" and hard.served_by == "target:strong"
    e, h = easy.info["route"], hard.info["route"]
    assert e["strategy"] == h["strategy"] == "learned"
    assert e["score"] >= 0.5 > h["score"] and e["threshold"] == 0.5
    assert "not needed" in e["rejected"]["strong"] and "< threshold" in h["rejected"]["cheap"]
    assert chain.ledger.rows()[0].info["route"]["score"] == e["score"]


def test_untrained_model_abstains(make_chain: Callable[..., Chain], cheap: MockTarget, strong: MockTarget) -> None:
    chain = make_chain(learned_router(cheap, strong))
    info = chain.complete(ask(), model="strong").info["route"]
    assert info["strategy"] == "requested" and info["served"] == "strong"


def test_embedder_failure_steps_aside(make_chain: Callable[..., Chain], cheap: MockTarget, strong: MockTarget,
                                      caplog: pytest.LogCaptureFixture) -> None:
    class Broken(HashingEmbedder):
        def _embed(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("embedder down")

    embedder = HashingEmbedder(128)
    router = ModelRouter([cheap, strong], strategy=Learned(embedder=embedder))
    router.fit(*data())
    router.learned.model._embedder = Broken(128)
    chain = make_chain(router)
    for _ in range(2):
        assert chain.complete(ask("what is the capital of x"), model="strong").info["route"]["strategy"] == "requested"
    assert router.learned.failures == 2
    assert sum("scoring failed" in r.message for r in caplog.records) == 1


def test_save_and_load_round_trip(tmp_path: Path, cheap: MockTarget, strong: MockTarget) -> None:
    router = learned_router(cheap, strong, threshold=0.42)
    prompts, labels = data()
    router.fit(prompts, labels)
    folder = router.save(tmp_path / "router")
    assert sorted(p.name for p in folder.iterdir()) == ["quality.json", "quality_coef.npy", "quality_scale.npy",
                                                       "router.json"]
    meta = json.loads((folder / "router.json").read_text())
    assert meta["threshold"] == 0.42 and meta["strategy"] == "learned"
    loaded = ModelRouter.load(folder, [cheap, strong])
    assert loaded.learned.threshold == 0.42
    np.testing.assert_allclose(loaded.predict(prompts), router.predict(prompts), rtol=1e-6)
    again = ModelRouter([cheap, strong], strategy={"name": "learned", "path": str(folder)})
    np.testing.assert_allclose(again.predict(prompts[:5]), router.predict(prompts[:5]), rtol=1e-6)
    with pytest.raises(ConfigError, match="no saved router"):
        ModelRouter.load(tmp_path / "missing")
    (folder / "quality.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigError, match="format"):
        QualityModel.load(folder)


def test_cost_aware_picks_cheapest_target_meeting_the_bar(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                          mid: MockTarget, strong: MockTarget, tmp_path: Path) -> None:
    router = ModelRouter([strong, mid, cheap], strategy=CostAware(embedder=HashingEmbedder(128), bar=0.5))
    prompts, labels = data()
    mid_labels = np.ones_like(labels)
    mid_labels[:10] = 0.0  # mid fails a few hard ones only
    router.fit(prompts, {"cheap": labels, "mid": np.where(np.arange(len(labels)) % 4 == 0, 0.0, 1.0)})
    chain = make_chain(router)
    easy = chain.complete(ask("say hello to item3"), model="strong").info["route"]
    assert easy["served"] == "cheap" and easy["strategy"] == "cost_aware"
    hard = chain.complete(ask("prove the integral of item3 converges"), model="strong").info["route"]
    assert hard["served"] in ("mid", "strong") and "predicted quality" in hard["rejected"]["cheap"]
    router.save(tmp_path / "ca")
    loaded = ModelRouter.load(tmp_path / "ca", [strong, mid, cheap])
    np.testing.assert_allclose(loaded.predict(prompts, target="mid"), router.predict(prompts, target="mid"))
    with pytest.raises(ConfigError, match="target=<name>"):
        router.predict(prompts)


def test_feedback_becomes_training_data(make_chain: Callable[..., Chain], cheap: MockTarget,
                                        strong: MockTarget) -> None:
    router = learned_router(cheap, strong, threshold=0.0)  # everything goes to the cheap target
    prompts, labels = data()
    router.fit(prompts, labels)
    chain = make_chain(router, store_text=True)
    good = chain.complete(ask("what is the capital of Peru"), model="strong")
    bad = chain.complete(ask("prove the integral of x converges"), model="strong")
    chain.feedback(good.request_id, good=True)
    chain.feedback(bad.request_id, good=False)
    fb_prompts, fb_labels = router.feedback_data()
    assert sorted(zip(fb_prompts, fb_labels, strict=True)) == [
        ("prove the integral of x converges", 0.0), ("what is the capital of Peru", 1.0)]
    assert router.stats()["counts"]["feedback_good"] == 1
    router.fit(prompts, labels, feedback=True)
    assert router.learned.model.info["n"] == len(prompts) + 2
    plain = make_chain(learned_router(cheap, strong))
    plain.complete(ask(), model="strong")
    with pytest.raises(ConfigError, match="store_text"):
        plain.plugins[0].feedback_data()  # type: ignore[attr-defined]
