"""costmw's files live in the platform's user cache folder, the first use says where, and
``costmw cache info|clear`` show and empty it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costmw.cli import app
from costmw.plugin_api import cache_root, semantic_cache_path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own, with the answers' file in its default place."""
    monkeypatch.setenv("COSTMW_CACHE_DIR", str(tmp_path / "costmw-cache"))
    monkeypatch.delenv("COSTMW_SEMANTIC_CACHE", raising=False)
    return tmp_path / "costmw-cache"


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG convention is Linux's")
def test_without_settings_the_folder_is_the_users_cache_directory(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("COSTMW_CACHE_DIR", raising=False)
    monkeypatch.delenv("COSTMW_SEMANTIC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "costmw"
    assert semantic_cache_path() == tmp_path / "xdg" / "costmw" / "semantic_cache.db"


def test_the_default_semantic_cache_is_in_the_cache_folder_not_the_working_directory(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from costmw.plugins.cache import SemanticCache

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with caplog.at_level(logging.INFO, logger="costmw"):
        cache = SemanticCache(embedder=None)
        SemanticCache(embedder=None)
    assert Path(cache.storage.path) == root / "semantic_cache.db"  # type: ignore[attr-defined]
    assert list(work.iterdir()) == []
    said = [r.getMessage() for r in caplog.records if "semantic cache at" in r.getMessage()]
    assert len(said) == 1 and str(root / "semantic_cache.db") in said[0]


def test_the_semantic_cache_file_can_be_moved_on_its_own(root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTMW_SEMANTIC_CACHE", str(tmp_path / "elsewhere" / "answers.db"))
    assert semantic_cache_path() == tmp_path / "elsewhere" / "answers.db"
    assert cache_root() == root


def test_cache_info_shows_the_folder_and_its_contents(root: Path) -> None:
    from costmw.plugins.cache import Entry, SQLiteStore

    fresh = CliRunner().invoke(app, ["cache", "info"])
    assert fresh.exit_code == 0, fresh.output
    assert "not created yet" in fresh.output and "(empty)" in fresh.output
    store = SQLiteStore()
    store.put(Entry(key="k", group="g", scope="s", text="q", response={"text": "a"}))
    store.close()
    (root / "onnx").mkdir()
    (root / "onnx" / "model.onnx").write_bytes(b"x" * 2048)
    shown = CliRunner().invoke(app, ["cache", "info"])
    assert shown.exit_code == 0, shown.output
    assert str(root) in shown.output and "1 entries" in shown.output
    assert "onnx/" in shown.output and "2.0 KB" in shown.output


def test_cache_clear_removes_answers_and_with_all_everything(root: Path) -> None:
    from costmw.plugins.cache import SQLiteStore

    SQLiteStore().close()
    (root / "gguf").mkdir()
    (root / "gguf" / "model.bin").write_bytes(b"x")
    cleared = CliRunner().invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert not (root / "semantic_cache.db").exists() and (root / "gguf" / "model.bin").exists()
    assert "nothing to remove" in CliRunner().invoke(app, ["cache", "clear"]).output
    everything = CliRunner().invoke(app, ["cache", "clear", "--all"])
    assert everything.exit_code == 0, everything.output
    assert root.exists() and list(root.iterdir()) == []
