"""The command line: each tool runs, prints its report, and bad input exits with a message that says what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from costmw.adapters.make.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_data_prints_what_it_removed(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "pairs.jsonl", [*rows, {"prompt": "hello", "response": ""}])
    result = runner.invoke(app, ["data", str(src), "--out", str(tmp_path / "data"), "--validation", "0.2"])
    assert result.exit_code == 0, result.output
    assert "removed     1  empty" in result.output and "near-duplicates: minhash" in result.output
    assert (tmp_path / "data" / "train.jsonl").exists() and (tmp_path / "data" / "validation.jsonl").exists()


def test_tune_lora_then_quantize(tiny_base: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "pairs.jsonl", rows)
    result = runner.invoke(app, ["tune", "lora", str(tiny_base), str(src), "--out", str(tmp_path / "lora"),
                                 "--steps", "3", "--rank", "2", "--eval-answers", "2", "--price", "0.01,0.02"])
    assert result.exit_code == 0, result.output
    assert "trainable parameters" in result.output and "target written" in result.output
    manifest = json.loads((tmp_path / "lora" / "costmw-target.json").read_text())
    assert manifest["price"] == {"input": 0.01, "output": 0.02}
    result = runner.invoke(app, ["quantize", str(tmp_path / "lora"), "--out", str(tmp_path / "int8")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "int8" / "costmw-target.json").read_text())["quantize"] == "int8"


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", "lora", str(tmp_path / "no-model"), str(tmp_path / "no.jsonl"),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    result = runner.invoke(app, ["prune", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "config.json" in result.output
    result = runner.invoke(app, ["prune", str(tmp_path), "--out", str(tmp_path / "o"), "--amount", "2"])
    assert result.exit_code == 2 and "fraction" in result.output
    result = runner.invoke(app, ["distill", "--out", str(tmp_path / "o"), "--from-ledger", str(tmp_path / "l.db")])
    assert result.exit_code != 0 and "--base" in result.output


def test_distill_below_the_bar_exits_1(tiny_base: Path, tuned_tiny: Path, rows: list[dict[str, Any]],
                                       tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "pairs.jsonl", rows)
    result = runner.invoke(app, ["distill", "--teacher", str(tuned_tiny), "--student", str(tiny_base), "--data",
                                 str(src), "--method", "sequence", "--steps", "1", "--bar", "0.95",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 1, result.output
    assert "nothing registered" in result.output


def test_commands_are_mounted_on_the_costmw_cli() -> None:
    from costmw.cli import app as costmw_app

    result = runner.invoke(costmw_app, ["tune", "--help"])
    assert result.exit_code == 0 and "lora" in result.output and "full" in result.output
    for command in ("data", "distill", "prune", "quantize"):
        assert runner.invoke(costmw_app, [command, "--help"]).exit_code == 0, command
