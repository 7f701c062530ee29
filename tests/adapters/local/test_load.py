"""costmw.adapters.load: a directory's costmw-target.json manifest becomes the right target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from costmw.adapters import ClassifierTarget, HFTarget, LlamaCppTarget, load, write_manifest

from costmw import ConfigError, Price, Request


def ask(text: str) -> Request:
    return Request.create([{"role": "user", "content": text}], "t", params={"max_tokens": 6})


async def test_a_tuned_model_directory_loads_as_an_hf_target_with_its_adapter(
        tiny_lm: Path, lora_a: Path, tmp_path: Path) -> None:
    made = tmp_path / "sql-tuned"
    shutil.copytree(lora_a, made / "adapter")
    write_manifest(made, kind="hf", base=tiny_lm, adapter=made / "adapter", price={"input": 0.05, "output": 0.1},
                   metrics={"accuracy": 0.91}, created_by="test")
    stored = json.loads((made / "costmw-target.json").read_text())
    assert stored["adapter"] == "adapter"  # paths inside the directory are stored relative to it
    target = load(made)
    assert isinstance(target, HFTarget)
    assert target.name == "sql-tuned" and target.price == Price(0.05, 0.1)
    assert target.metrics == {"accuracy": 0.91} and target.manifest is not None
    expected = await HFTarget(tiny_lm, lora=lora_a).acomplete(ask("the cat"))
    assert (await target.acomplete(ask("the cat"))).text == expected.text


async def test_moving_the_directory_keeps_it_loadable(tiny_lm: Path, tmp_path: Path) -> None:
    made = tmp_path / "distilled"
    shutil.copytree(tiny_lm, made)
    write_manifest(made, kind="hf", base=made, quantize="int8", hourly_usd=0.5, options={"max_new_tokens": 4})
    moved = tmp_path / "elsewhere"
    made.rename(moved)
    target = load(moved, name="renamed")
    assert isinstance(target, HFTarget)
    assert target.name == "renamed" and target.quantize == "int8" and target.hourly_usd == 0.5
    assert target.max_new_tokens == 4
    response = await target.acomplete(Request.create([{"role": "user", "content": "hi"}], "t"))
    assert 1 <= response.usage.completion_tokens <= 4


def test_classifier_and_llamacpp_manifests(tiny_classifier: Path, tmp_path: Path, smollm2_gguf: Path) -> None:
    write_manifest(tmp_path / "c", kind="classifier", base=tiny_classifier, labels=["bad", "good"])
    classifier = load(tmp_path / "c")
    assert isinstance(classifier, ClassifierTarget) and classifier.labels == ["bad", "good"]
    write_manifest(tmp_path / "g", kind="llamacpp", base=smollm2_gguf, price=[0.01, 0.02], options={"n_ctx": 256})
    gguf = load(tmp_path / "g", price=(0.0, 0.0))
    assert isinstance(gguf, LlamaCppTarget) and gguf.n_ctx == 256 and gguf.price == Price(0.0, 0.0)


def test_manifest_mistakes_are_clear(tiny_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no costmw-target.json"):
        load(tiny_lm)
    with pytest.raises(ConfigError, match="kind must be one of"):
        write_manifest(tmp_path / "x", kind="onnx", base=tiny_lm)
    write_manifest(tmp_path / "y", kind="hf", base=tiny_lm, options={"temperature_boost": 2})
    with pytest.raises(ConfigError, match="not accepted by the 'hf' target.*temperature_boost"):
        load(tmp_path / "y")
    write_manifest(tmp_path / "z", kind="hf", base=tmp_path / "gone")
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "z")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "costmw-target.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(tmp_path / "bad")


def test_local_kinds_in_a_chain_config(tiny_lm: Path, tiny_classifier: Path, tmp_path: Path) -> None:
    from costmw import Chain
    write_manifest(tmp_path / "m", kind="hf", base=tiny_lm, price=[0.1, 0.2])
    chain = Chain.from_config({"targets": [
        {"kind": "hf", "name": "local", "path_or_name": str(tiny_lm), "quantize": "int8", "max_new_tokens": 3},
        {"kind": "classifier", "name": "sentiment", "path": str(tiny_classifier)},
        {"kind": "dir", "path": str(tmp_path / "m"), "name": "made"},
    ]})
    local, sentiment, made = (chain.targets[n] for n in ("local", "sentiment", "made"))
    assert isinstance(local, HFTarget) and local.quantize == "int8" and local.max_new_tokens == 3
    assert isinstance(sentiment, ClassifierTarget)
    assert isinstance(made, HFTarget) and made.price == Price(0.1, 0.2)
    with pytest.raises(ConfigError, match="unknown option 'lora_rank'"):
        Chain.from_config({"targets": [{"kind": "hf", "path_or_name": str(tiny_lm), "lora_rank": 8}]})
    chain.close()


def test_a_manifest_cannot_turn_on_trust_remote_code(tiny_lm: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    made = tmp_path / "untrusted"
    shutil.copytree(tiny_lm, made)
    write_manifest(made, kind="hf", base=made, options={"trust_remote_code": True})
    target = load(made)
    assert isinstance(target, HFTarget) and target.trust_remote_code is False
    assert any("trust_remote_code" in r.getMessage() for r in caplog.records)
    trusted = load(made, trust_remote_code=True)  # the caller's own argument is what turns it on
    assert isinstance(trusted, HFTarget) and trusted.trust_remote_code is True
