"""Mistakes a user makes with local models get errors that say what is wrong and what to do."""

from __future__ import annotations

import builtins
import importlib
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import HFTarget, LlamaCppTarget

from costmw import ConfigError, MissingDependencyError


def test_a_path_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a model directory .*config.json"):
        HFTarget(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        HFTarget(tmp_path / "nothing-here")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="not a GGUF model"):
        HFTarget(text)


def test_a_gguf_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip file")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        LlamaCppTarget(fake)
    with pytest.raises(ConfigError, match="not a GGUF file"):
        HFTarget(tmp_path, gguf_file="model.gguf")
    with pytest.raises(ConfigError, match="does not exist"):
        LlamaCppTarget(tmp_path / "missing.gguf")


def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch, smollm2_gguf: Path) -> None:
    real_import = builtins.__import__

    def no_llama(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "llama_cpp":
            raise ImportError("No module named 'llama_cpp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_llama)
    target = LlamaCppTarget(smollm2_gguf, n_ctx=128, name="no-extra")
    with pytest.raises(MissingDependencyError, match=r'costmw\[gguf\]'):
        target.load()


def test_importing_the_package_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, costmw.adapters.local, costmw.adapters as a; a.HFTarget; a.load;"
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'llama_cpp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert importlib.import_module("costmw.adapters").__dict__["HFTarget"] is HFTarget
