"""The learned cache verifier: the shipped model, its operating points, its data generators, and a
few steps of its training on a tiny random model."""

from __future__ import annotations

import asyncio
import builtins
import itertools
import math
import random
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from costmw.plugins.cache._learned import DEFAULT_MODEL_DIR, LearnedVerifier, wilson_upper
from costmw.plugins.cache._protocol import CacheVerdict, CacheVerifier

from costmw import ConfigError, MissingDependencyError

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

SHIPPED = DEFAULT_MODEL_DIR.joinpath("model.onnx").is_file()
needs_model = pytest.mark.skipif(not SHIPPED, reason="no verifier model in plugins/cache/data/verifier")


@pytest.fixture(scope="module")
def verifier() -> LearnedVerifier:
    return LearnedVerifier()


@needs_model
def test_the_shipped_model_follows_the_protocol(verifier: LearnedVerifier) -> None:
    assert isinstance(verifier, CacheVerifier)
    verdict = verifier.check("How do I reset my password?", "How can I reset my password?")
    assert isinstance(verdict, CacheVerdict)
    assert 0.0 <= verdict.probability <= 1.0
    assert verdict.reason == "model"


@needs_model
def test_a_typo_paraphrase_scores_above_a_changed_detail(verifier: LearnedVerifier) -> None:
    cached = "How many calories are in 100 grams of rice?"
    probs = verifier.predict([
        ("how many calroies are in 100 grams of rice", cached),
        ("How many calories are in 500 grams of rice?", cached),
        ("How many calories are in 100 grams of salmon?", cached),
    ])
    assert probs[0] > probs[1]
    assert probs[0] > probs[2]


@needs_model
def test_obvious_pairs_fall_on_the_right_side(verifier: LearnedVerifier) -> None:
    same = verifier.check("What is the capital of France?", "Which city is the capital of France?")
    other = verifier.check("Convert 10 miles to kilometers.", "Convert 10 kilometers to miles.")
    assert same.probability > other.probability
    assert not other.ok


@needs_model
def test_a_score_does_not_depend_on_the_other_pairs_in_the_batch(verifier: LearnedVerifier) -> None:
    pair = ("How do I reset my password?", "How can I reset my password?")
    long = ("Could you walk me through every step of setting up two-factor authentication on my work account "
            "after I replaced my phone last week?", "How do I set up two-factor authentication?")
    alone = verifier.raw_scores([pair])
    fresh = LearnedVerifier()  # no remembered scores: the pair is padded next to the long one
    together = fresh.raw_scores([long, pair, long])
    assert together[1] == pytest.approx(alone[0], abs=1e-4)
    assert together[0] == pytest.approx(together[2])


def test_batches_cover_every_pair_once_with_similar_lengths() -> None:
    from costmw.plugins.cache._train._fit import _batches

    lengths = [random.Random(i).randrange(5, 60) for i in range(1000)]
    batches = _batches(lengths, 32, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # a shuffled batch would span about 50 tokens
    assert batches == _batches(lengths, 32, random.Random(0))


@needs_model
def test_threshold_never_rises_as_the_allowed_error_grows(verifier: LearnedVerifier) -> None:
    limits = [verifier.threshold_for(e) for e in (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3)]
    assert all(a >= b for a, b in itertools.pairwise(limits))
    assert verifier.threshold == verifier.threshold_for(0.02)
    assert math.isfinite(verifier.threshold_for(0.05))


def test_max_error_out_of_range_is_a_config_error() -> None:
    for bad in (0, 1, -0.1, 2.0):
        with pytest.raises(ConfigError, match="max_error"):
            LearnedVerifier(max_error=bad, model_dir=DEFAULT_MODEL_DIR)


def test_a_folder_without_the_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.onnx"):
        LearnedVerifier(model_dir=tmp_path)


@needs_model
async def test_acheck_many_runs_off_the_loop_and_matches_check(verifier: LearnedVerifier,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = verifier.predict

    def spy(pairs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(pairs)

    monkeypatch.setattr(verifier, "predict", spy)
    query = "whats the capital of france"
    candidates = ["What is the capital of France?", "What is the capital of Spain?", "What is France's population?"]
    many = await verifier.acheck_many(query, candidates)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()  # one forward pass, in a worker
    single = [verifier.check(query, c) for c in candidates]
    assert [v.ok for v in many] == [v.ok for v in single]
    assert [v.probability for v in many] == pytest.approx([v.probability for v in single], abs=1e-4)
    assert await verifier.acheck_many(query, []) == []


@needs_model
def test_version_changes_when_a_model_file_changes(tmp_path: Path) -> None:
    copy = tmp_path / "verifier"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    before = LearnedVerifier(model_dir=copy).version
    assert before == LearnedVerifier(model_dir=copy).version
    cal = copy / "calibration.json"
    cal.write_text(cal.read_text(encoding="utf-8").replace('"labels"', ' "labels"', 1), encoding="utf-8")
    assert LearnedVerifier(model_dir=copy).version != before


@needs_model
def test_behind_the_guards_the_error_rate_is_counted_on_the_pairs_they_let_through(tmp_path: Path) -> None:
    import json

    from costmw.plugins.cache._verifiers import GuardedVerifier

    copy = tmp_path / "verifier"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    same = [[f"How do I renew passport form {i}?", f"how can i renew passport form {i}"] for i in range(200)]
    # look-alikes the model scores as high as the true pairs, which the number guard refuses
    changed = [[f"What is {i}% of 80?", f"What is {i}% of 90?"] for i in range(40)]
    other = [[f"Who wrote book {i}?", f"Where is city {i}?"] for i in range(200)]
    calibration = {"platt": {"a": 1.0, "b": 0.0}, "max_length": 48,
                   "scores": [3.0] * 240 + [-3.0] * 200, "labels": [1] * 200 + [0] * 240,
                   "pairs": same + changed + other}
    (copy / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    alone = LearnedVerifier(model_dir=copy)
    assert alone.threshold_for(0.02) == math.inf  # 40 wrong of 240 served: nothing is safe to serve
    guarded = LearnedVerifier(model_dir=copy)
    GuardedVerifier(guarded)
    assert guarded.threshold_for(0.02) == pytest.approx(1 / (1 + math.exp(-3.0)))  # 0 wrong of 200
    # a calibration file without the pairs' texts (older models) is used whole
    del calibration["pairs"]
    (copy / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    older = LearnedVerifier(model_dir=copy)
    GuardedVerifier(older)
    assert older.threshold_for(0.02) == math.inf


@needs_model
def test_a_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_onnxruntime(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(MissingDependencyError, match=r"costmw\[onnx\]"):
        LearnedVerifier().check("a question", "another question")


def test_the_error_bound_is_above_the_observed_rate() -> None:
    assert 0.02 < wilson_upper(0, 100) < 0.035
    assert wilson_upper(5, 1000) > 0.005
    assert wilson_upper(5, 1000) < wilson_upper(5, 500)
    assert wilson_upper(0, 0) == 1.0


# ---- data generators -------------------------------------------------------------------------


def test_generators_are_deterministic_for_a_seed() -> None:
    from costmw.plugins.cache._train._generate import ask_pairs, group_pairs, seed_questions
    from costmw.plugins.cache._train._seeds import GROUPS, TOPICS

    def run(seed: int) -> list[Any]:
        rng = random.Random(seed)
        qs = seed_questions(rng, GROUPS, 20)
        return qs + list(group_pairs(GROUPS[:10], rng, 2)) + list(ask_pairs(TOPICS[:5], rng, 2))

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_generated_negatives_really_differ() -> None:
    from costmw.plugins.cache._train._generate import format_pairs, group_pairs, negate, situation_pairs, swap_number
    from costmw.plugins.cache._train._seeds import GROUPS

    rng = random.Random(0)
    pairs = list(group_pairs(GROUPS, rng, 3))
    pairs += list(format_pairs(["How do I boil an egg?"], rng, 20))
    pairs += list(situation_pairs(["Is ibuprofen safe?"], rng, 20))
    negatives = [p for p in pairs if p.label == 0]
    assert len(negatives) > 100
    assert all(p.a.strip().lower() != p.b.strip().lower() for p in negatives)
    assert {"entity", "number", "direction", "format", "situation"} <= {p.kind for p in negatives}
    assert swap_number("Convert 10 miles to km", rng) != "Convert 10 miles to km"
    assert swap_number("no digits here", rng) is None
    assert negate("Is aspirin safe for children?", rng) in ("Is not aspirin safe for children?",
                                                           "Isn't aspirin safe for children?")


def test_noise_keeps_numbers_and_code() -> None:
    from costmw.plugins.cache._train._noise import chat_speak, typos

    rng = random.Random(1)
    for _ in range(50):
        text = typos("How do I call `pandas.read_csv` with 250 rows in my_table?", rng, rate=1.0)
        assert "`pandas.read_csv`" in text and "250" in text and "my_table" in text
        assert "`DataFrame.groupBy`" in chat_speak("What does `DataFrame.groupBy` do for you?", rng)


def test_mock_data_split_is_by_origin_and_stable() -> None:
    from costmw.plugins.cache._train import mock_data_split

    rows = [{"origin": f"origin {i}", "similar": f"para {i}"} for i in range(200)]
    train, held = mock_data_split(rows)
    assert len(train) + len(held) == 200 and 60 < len(held) < 140
    assert mock_data_split(list(reversed(rows)))[1] == list(reversed(held))
    assert not {r["origin"] for r in train} & {r["origin"] for r in held}


# ---- training, a few steps on a tiny random BERT ------------------------------------------------


def test_a_tiny_training_run_exports_a_working_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("onnx")
    from costmw.plugins.cache._train import DataSources, TrainConfig, train_verifier

    tokenizer = DEFAULT_MODEL_DIR / "tokenizer.json"
    if not tokenizer.is_file():
        from costmw.embeddings import bundled_minilm_path

        base_dir = bundled_minilm_path()
        if base_dir is None:
            pytest.skip("no tokenizer.json to build a tiny model on")
        tokenizer = base_dir / "tokenizer.json"
    base = tmp_path / "tiny"
    base.mkdir()
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    transformers.BertModel(config).save_pretrained(str(base))
    shutil.copy(tokenizer, base / "tokenizer.json")
    cfg = TrainConfig(layers=1, max_length=32, epochs=1, batch_size=64, data_scale=0.05, hard_negatives=0, max_steps=3)
    out = tmp_path / "model"
    manifest = train_verifier(out, cfg, base=base, sources=DataSources(tmp_path / "no-repo"))
    assert manifest["train_pairs"] > 100 and 0.0 <= manifest["calibration_auc"] <= 1.0
    assert manifest["steps"] == 3 and manifest["kind"] == "cross-encoder"
    assert {p.name for p in out.iterdir()} == {"model.onnx", "tokenizer.json", "calibration.json", "manifest.json"}
    verifier = LearnedVerifier(model_dir=out)
    probs = verifier.predict([("a question", "a question"), ("one", "two")])
    assert probs.shape == (2,) and ((probs >= 0) & (probs <= 1)).all()
    verdicts = asyncio.run(verifier.acheck_many("a question", ["a question", "two"]))
    assert verdicts[0].probability == pytest.approx(float(probs[0]), abs=1e-6)


def test_training_loads_its_models_without_third_party_progress_bars(capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from costmw.plugins.cache._train._fit import _minilm_embed, base_model_dir, cross_encoder

    model = cross_encoder(base_model_dir(), layers=2, dropout=0.1)
    embed = _minilm_embed(base_model_dir())
    assert embed(["a question"]).shape == (1, 384) and sum(p.numel() for p in model.parameters()) > 0
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "it/s" not in out + err, err[-300:]
