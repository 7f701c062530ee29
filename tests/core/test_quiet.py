"""Quiet by default: loading models, converting GGUF files and using the LangChain cache print
nothing and warn nothing, and the switches costmw flips on the way are put back."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from costmw.plugin_api import ProgressBar, third_party_quiet


def test_loading_the_default_embedder_prints_and_warns_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    from costmw.embeddings import LocalEmbedder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = LocalEmbedder().embed(["how do I reset my password?"])
    assert len(vectors[0]) == 384
    out, err = capfd.readouterr()
    assert out == "" and err == "", err[-500:]
    assert [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))] == []


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a conversion of its own, into its own folder: minutes on a busy machine
def test_converting_a_gguf_file_prints_nothing(smollm2_gguf: Path, tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    from costmw.adapters.local._gguf import converted_model_dir

    folder = converted_model_dir(smollm2_gguf, cache_dir=tmp_path)
    assert (folder / "config.json").exists()
    out, err = capfd.readouterr()
    assert out == "" and err == "", err[-500:]


def test_transformers_progress_switch_is_put_back() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    with third_party_quiet():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    with third_party_quiet():
        pass
    assert not hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()


def test_warnings_outside_the_quiet_section_still_show() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with third_party_quiet():
            warnings.warn("inside", FutureWarning, stacklevel=1)
        warnings.warn("outside", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["outside"]


def test_the_progress_bar_is_silent_off_a_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    with ProgressBar("work", total=3) as bar:
        for _ in range(3):
            bar.update(1, note="step")
    assert not bar.shown
    assert capfd.readouterr() == ("", "")


def test_the_langchain_cache_gives_no_beta_warning() -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.outputs import Generation

    from costmw.integrations.langchain import CostmwCache

    cache = CostmwCache(store="memory", embedder=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.update("What is 2+2?", "model-a", [Generation(text="4")])
        found = cache.lookup("What is 2+2?", "model-a")
    assert found is not None and found[0].text == "4"
    assert [w for w in caught if "beta" in str(w.message)] == []
