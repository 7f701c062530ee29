"""``costmw cascade-data``: a confidence model for a cascade, fit on one's own prompts and local model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from .._errors import ConfigError

__all__ = ["cascade_data"]


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{n}: each line must be a JSON object with a 'prompt'")
        rows.append(row)
    return rows


def _local(model: str, max_tokens: int) -> Any:
    from costmw.adapters import HFTarget, LlamaCppTarget
    from costmw.adapters.local._gguf import is_gguf

    path = Path(model).expanduser()
    if path.is_file() and is_gguf(path):
        return LlamaCppTarget(path, name="cheap", max_new_tokens=max_tokens, price=(0.0, 0.0))
    return HFTarget(model, name="cheap", max_new_tokens=max_tokens, price=(0.0, 0.0))


def cascade_data(
    prompts: Path = typer.Argument(..., help="JSONL: one {\"prompt\", \"answer\"?, \"check\"?, \"category\"?} "
                                             "per line (check: number, exact or contains)."),
    model: str = typer.Option(..., "--model", "-m", help="The cheap local model: a transformers directory or a "
                                                         "GGUF file (run by llama.cpp)."),
    out: Path = typer.Option(Path("cascade_confidence.json"), "--out", "-o", help="Where to write the fit model."),
    answers: Path | None = typer.Option(None, help="Also write each answer, its grade and evidence (JSONL)."),
    judge: str | None = typer.Option(None, help="A strong model (LiteLLM name) that grades rows without an "
                                                "'answer' by agreeing with the cheap answer."),
    max_tokens: int = typer.Option(64, min=1, help="Longest cheap answer, in tokens."),
    confidence: float = typer.Option(0.95, min=0.0, max=0.999, help="A quality target must be met by the one-sided "
                                                                   "lower bound at this confidence (0: as counted)."),
) -> None:
    """Answer your prompts with a local model, grade the answers and fit the cascade's confidence model.

    Rows with a ``category`` (five kinds or more) are calibrated on whole kinds held out, so the
    thresholds are read off kinds of prompt the model did not see.

    Use the result with ``Cascade(cheap, strong, scorer=ConfidenceScorer("cascade_confidence.json"),
    quality=0.95)``.
    """
    from costmw.plugins.router._confidence_data import answer_prompts_sync, fit_confidence

    console = Console()
    rows = _rows(prompts)
    strong = None
    if judge is not None:
        from costmw.adapters import LiteLLMTarget

        strong = LiteLLMTarget(judge)
    with console.status(f"answering {len(rows)} prompts with {model}..."):
        graded = answer_prompts_sync(_local(model, max_tokens), rows, judge=strong, max_tokens=max_tokens)
    if answers is not None:
        answers.write_text("".join(json.dumps(r) + "\n" for r in graded), encoding="utf-8")
    fitted = fit_confidence(graded, confidence=confidence,
                            by_category=len({r["category"] for r in graded if r.get("category")}) >= 5)
    fitted.info.update(source=str(prompts), model=model, questions=len(graded))
    fitted.save(out)
    right = sum(bool(r["right"]) for r in graded)
    console.print(f"{right} of {len(graded)} cheap answers right; wrote {out}")
    for quality in (0.9, 0.95, 0.98):
        learning = (f" ({fitted.threshold_for(quality, learning=True):.3f} with learn=True)"
                    if fitted.learning_calibration else "")
        console.print(f"  quality {quality}: keep cheap answers above P = {fitted.threshold_for(quality):.3f}"
                      f"{learning}")
