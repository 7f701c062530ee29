"""The supervised fine-tuning steps the tools share: get a split, train, measure, write the manifest."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._evaluate import agreement, answer_loss, generate_answers, measure_speed
from ._examples import Example, load_examples
from ._models import write_json
from ._tokenize import encode_examples
from ._trainer import LossFn, TrainConfig, TrainResult, train

__all__ = ["answer_metrics", "finish_run", "get_split", "register", "run_sft"]


def get_split(data: Any, validation: Any = 0.1, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, validation) examples. ``data`` may carry its own split (a Dataset, a folder from
    ``costmw data``); otherwise ``validation`` is a fraction held out by near-duplicate clusters,
    or a separate JSONL path / list."""
    from ._data import split_only

    has_split = (hasattr(data, "validation") or
                 (isinstance(data, (str, Path)) and Path(data).is_dir() and (Path(data) / "train.jsonl").exists()))
    train_ex = load_examples(data, "train")
    if not train_ex:
        raise ConfigError("the training data is empty; run `costmw data` first or point at a non-empty file")
    if isinstance(validation, (str, Path)) or (isinstance(validation, Sequence) and not isinstance(validation, str)):
        return train_ex, load_examples(validation)
    if has_split:
        val_path = Path(data) / "validation.jsonl" if isinstance(data, (str, Path)) else None
        val = load_examples(data, "validation") if val_path is None or val_path.exists() else []
        return train_ex, val
    frac = float(validation or 0.0)
    if frac and len(train_ex) >= 10:
        return split_only(train_ex, frac, seed)
    return train_ex, []


def run_sft(model: Any, tokenizer: Any, train_ex: Sequence[Example], val_ex: Sequence[Example], cfg: TrainConfig,
            out: Path, fingerprint: dict[str, Any], *, loss_fn: LossFn | None = None,
            desc: str = "training") -> TrainResult:
    """Encode both splits and train ``model`` (its trainable parameters) with checkpoints under ``out``."""
    train_enc = encode_examples(tokenizer, train_ex, cfg.max_length)
    val_enc = encode_examples(tokenizer, val_ex, cfg.max_length, what="validation")
    return train(model, train_enc, val_enc, cfg, out, pad_id=int(tokenizer.pad_token_id),
                 fingerprint=fingerprint, loss_fn=loss_fn, desc=desc)


def answer_metrics(model: Any, tokenizer: Any, examples: Sequence[Example], *, limit: int = 32,
                   max_new_tokens: int = 32, references: Sequence[str] | None = None) -> dict[str, Any]:
    """Greedy answers on up to ``limit`` examples, scored against their answers (or ``references``)."""
    chosen = list(examples[:limit])
    if not chosen:
        return {}
    refs = list(references[:limit]) if references is not None else [ex.answer for ex in chosen]
    preds = generate_answers(model, tokenizer, chosen, max_new_tokens=max_new_tokens)
    return {"answers_scored": len(chosen), "agreement_exact": agreement(preds, refs, "exact"),
            "agreement_f1": agreement(preds, refs, "f1")}



def quality_row(model: Any, tokenizer: Any, val_ex: Sequence[Example], val_enc: Sequence[Any], speed_ex: Sequence[Any],
                *, eval_answers: int, max_new_tokens: int) -> dict[str, Any]:
    """How a made model does: answer loss on ``val_enc`` (None without data), greedy-answer metrics
    on up to ``eval_answers`` of ``val_ex``, and its speed on ``speed_ex`` when given."""
    row: dict[str, Any] = {"val_loss": answer_loss(model, list(val_enc), int(tokenizer.pad_token_id))}
    row.update(answer_metrics(model, tokenizer, val_ex, limit=eval_answers, max_new_tokens=max_new_tokens))
    row.pop("answers_scored", None)
    if speed_ex:
        speed = measure_speed(model, tokenizer, list(speed_ex))
        row.update(ms_per_prompt=speed["ms_per_prompt"], cpu_ms_per_prompt=speed["cpu_ms_per_prompt"])
    return row

def register(out: Path, *, base: Path, adapter: Path | None = None, metrics: dict[str, Any], name: str | None,
             price: Any, created_by: str, quantize: str | None = None, options: dict[str, Any] | None = None) -> Path:
    """Write the target manifest (last, so a folder with a manifest always holds a whole model)."""
    from ..local._manifest import write_manifest

    fields: dict[str, Any] = {"metrics": metrics, "created_by": created_by}
    if adapter is not None:
        fields["adapter"] = adapter.resolve()
    if quantize is not None:
        fields["quantize"] = quantize
    if price is not None:
        fields["price"] = _price_dict(price)
    if options:
        fields["options"] = options
    return write_manifest(out, kind="hf", base=base.resolve(), name=name, **fields)


def _price_dict(price: Any) -> dict[str, float]:
    if isinstance(price, dict):
        return {"input": float(price["input"]), "output": float(price["output"])}
    if isinstance(price, (tuple, list)) and len(price) == 2:
        return {"input": float(price[0]), "output": float(price[1])}
    if isinstance(price, (int, float)):
        return {"input": float(price), "output": float(price)}
    raise ConfigError(f"price must be (input, output) USD per 1M tokens, got {price!r}")


def finish_run(out: Path, metrics: dict[str, Any], keep_checkpoints: bool) -> None:
    """Write ``training.json`` and drop the checkpoints once the model is safely saved."""
    write_json(out / "training.json", metrics)
    if not keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)


def clear_manifest(out: Path) -> None:
    """Remove an old manifest before a run replaces the model it describes."""
    (out / "costmw-target.json").unlink(missing_ok=True)
