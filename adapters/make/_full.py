"""Full fine-tuning of selected decoder layers, for when LoRA is not enough (and to compare with it).

Every weight of the chosen layers trains (optionally the final norm and the embeddings too); the
rest stays frozen. The whole model is saved under ``<out>/model`` with a manifest whose base is it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._arch import decoder_layers, parse_layers
from ._models import load_model, save_model
from ._result import MakeResult
from ._sft import answer_metrics, clear_manifest, finish_run, get_split, register, run_sft
from ._trainer import TrainConfig

__all__ = ["freeze_except", "tune_full"]


def freeze_except(model: Any, layers: str | list[int], *, train_norm: bool = True,
                  train_embeddings: bool = False) -> list[int]:
    """Freeze every parameter except those of ``layers`` (and the final norm / embeddings if asked)."""
    prefix, blocks = decoder_layers(model)
    chosen = parse_layers(layers, len(blocks))
    for p in model.parameters():
        p.requires_grad_(False)
    for i in chosen:
        for p in blocks[i].parameters():
            p.requires_grad_(True)
    if train_embeddings:
        model.get_input_embeddings().weight.requires_grad_(True)
        head = model.get_output_embeddings()
        if head is not None:
            head.weight.requires_grad_(True)
    if train_norm:
        for name, p in model.named_parameters():
            if not name.startswith(prefix) and "norm" in name.split(".")[-2]:
                p.requires_grad_(True)
    return chosen


def tune_full(base: str | Path, data: Any, out: str | Path, *, layers: str | list[int] = "last:2",
              train_norm: bool = True, train_embeddings: bool = False, validation: Any = 0.1,
              steps: int | None = None, epochs: float = 1.0, batch_size: int = 8, grad_accum: int = 1,
              lr: float = 5e-5, max_length: int = 256, seed: int = 0, save_every: int = 50, resume: bool = False,
              progress: bool = True, eval_answers: int = 32, max_new_tokens: int = 32, name: str | None = None,
              price: Any = None, keep_checkpoints: bool = False) -> MakeResult:
    """Fine-tune every weight of the decoder ``layers`` of ``base`` ("last:4", "0,1", "20-29", "all")."""
    import torch

    out = Path(out)
    train_ex, val_ex = get_split(data, validation, seed)
    cfg = TrainConfig(steps=steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                      max_length=max_length, seed=seed, save_every=save_every, progress=progress, resume=resume)
    cfg.check()
    torch.manual_seed(seed)
    model, tokenizer = load_model(base)
    chosen = freeze_except(model, layers, train_norm=train_norm, train_embeddings=train_embeddings)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError("no parameter selected for training")
    fingerprint = {"technique": "full", "base": str(Path(base).resolve()), "layers": chosen,
                   "train_embeddings": train_embeddings}
    out.mkdir(parents=True, exist_ok=True)
    result = run_sft(model, tokenizer, train_ex, val_ex, cfg, out, fingerprint, desc="full")
    clear_manifest(out)
    save_model(model, tokenizer, out / "model")
    metrics: dict[str, Any] = {"technique": "full", "layers": chosen, "train_examples": len(train_ex),
                               "validation_examples": len(val_ex), **result.to_dict()}
    metrics.update(answer_metrics(model, tokenizer, val_ex, limit=eval_answers, max_new_tokens=max_new_tokens))
    finish_run(out, metrics, keep_checkpoints)
    manifest = register(out, base=out / "model", metrics=metrics, name=name, price=price,
                        created_by="costmw tune full")
    message = (f"full fine-tuning of layers {chosen}: {result.trainable_params:,} trainable parameters "
               f"({metrics['trainable_pct']:.2f}% of {result.total_params:,})")
    return MakeResult(path=out, manifest=manifest, metrics=metrics, training=result, message=message)
