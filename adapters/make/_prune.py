"""Pruning: remove weights that matter least, then optionally recover quality with a short fine-tune.

*Magnitude* pruning zeroes the smallest weights of every decoder linear layer (sparsity; the file
and the dense kernels stay the same size). *Structured* pruning removes whole MLP channels and/or
attention heads, rebuilding smaller linear layers and updating the config, so the saved model is
smaller and faster and still loads with ``from_pretrained``. Importance comes from calibration
activations when data is given, else from weight norms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._arch import decoder_layers
from ._models import dir_size, load_model, resolve_model, save_model
from ._result import MakeResult
from ._sft import clear_manifest, finish_run, get_split, quality_row, register, run_sft
from ._structured import prune_structured
from ._tokenize import encode_examples
from ._trainer import TrainConfig

__all__ = ["magnitude_prune", "prune"]

METHODS = ("structured", "magnitude")
TARGETS = ("mlp", "heads", "both")


def magnitude_prune(model: Any, amount: float) -> dict[str, Any]:
    """Zero the ``amount`` smallest-magnitude weights of each decoder linear layer; returns the masks."""
    import torch

    _, blocks = decoder_layers(model)
    masks = {}
    for name, module in blocks.named_modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight.data
            k = int(amount * w.numel())
            if k < 1:
                continue
            cutoff = w.abs().flatten().kthvalue(k).values
            mask = w.abs() > cutoff
            w.mul_(mask)
            masks[name] = mask
            module.weight.register_hook(lambda g, m=mask: g * m)  # type: ignore[no-untyped-call]
    return masks


def _measure(model: Any, tokenizer: Any, val_ex: list[Any], val_enc: list[Any], speed_ex: list[Any],
             eval_answers: int, max_new_tokens: int, stage: str, size: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"stage": stage, "params": sum(p.numel() for p in model.parameters()),
                           "nonzero_params": sum(int((p != 0).sum()) for p in model.parameters())}
    if size is not None:
        row["disk_mb"] = size / 2**20
    row.update(quality_row(model, tokenizer, val_ex, val_enc, speed_ex, eval_answers=eval_answers,
                           max_new_tokens=max_new_tokens))
    return row


def prune(model: str | Path, out: str | Path, *, method: str = "structured", amount: float = 0.3,
          target: str = "both", data: Any = None, validation: Any = 0.1, calibration: int = 32,
          recover_steps: int = 0, recover_lr: float = 5e-5, batch_size: int = 8, max_length: int = 256,
          seed: int = 0, save_every: int = 50, resume: bool = False, progress: bool = True, eval_answers: int = 32,
          max_new_tokens: int = 32, speed_prompts: int = 4, name: str | None = None, price: Any = None,
          keep_checkpoints: bool = False) -> MakeResult:
    """Prune ``model`` by ``amount`` (a fraction) and write the smaller model with a manifest at ``out``.

    ``target`` ("mlp", "heads", "both") applies to structured pruning. With ``data``, calibration
    activations rank the channels and heads, the validation split measures quality before and after,
    and ``recover_steps`` of full fine-tuning win back what pruning lost.
    """
    import torch

    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    if not 0.0 < amount < 1.0:
        raise ConfigError(f"amount is the fraction to prune, in (0, 1); got {amount}")
    if recover_steps and data is None:
        raise ConfigError("recovery fine-tuning needs data: pass data (a JSONL or a `costmw data` folder)")
    out = Path(out)
    torch.manual_seed(seed)
    base_dir, _ = resolve_model(model)
    train_ex, val_ex = get_split(data, validation, seed) if data is not None else ([], [])
    net, tokenizer = load_model(model)
    val_enc = encode_examples(tokenizer, val_ex, max_length, what="validation")
    speed_ex = (val_ex or train_ex)[:speed_prompts]
    args = (tokenizer, val_ex, val_enc, speed_ex, eval_answers, max_new_tokens)
    rows = [_measure(net, *args, stage="before", size=dir_size(base_dir))]
    calib = encode_examples(tokenizer, train_ex[:calibration], max_length, what="calibration")
    if method == "magnitude":
        magnitude_prune(net, amount)
        detail: dict[str, Any] = {"sparsity": amount}
    else:
        net, detail = prune_structured(net, amount=amount, target=target, calibration=calib)
    rows.append(_measure(net, *args, stage="pruned", size=None))
    result = None
    if recover_steps:
        for p in net.parameters():
            p.requires_grad_(True)
        cfg = TrainConfig(steps=recover_steps, batch_size=batch_size, lr=recover_lr, max_length=max_length,
                          seed=seed, save_every=save_every, progress=progress, resume=resume)
        fingerprint = {"technique": f"prune-{method}", "base": str(base_dir.resolve()), "amount": amount,
                       "target": target, **{k: v for k, v in detail.items() if not isinstance(v, list)}}
        out.mkdir(parents=True, exist_ok=True)
        result = run_sft(net, tokenizer, train_ex, val_ex, cfg, out, fingerprint, desc="recovery")
    clear_manifest(out)
    save_model(net, tokenizer, out / "model")
    rows[-1]["disk_mb"] = dir_size(out / "model") / 2**20
    if recover_steps:
        rows.append(_measure(net, *args, stage="recovered", size=dir_size(out / "model")))
    metrics: dict[str, Any] = {"technique": f"prune-{method}", "amount": amount,
                               "target": target if method == "structured" else "all linear", **detail,
                               "stages": rows}
    if result is not None:
        metrics["recovery"] = result.to_dict()
    finish_run(out, metrics, keep_checkpoints)
    manifest = register(out, base=out / "model", metrics=metrics, name=name, price=price,
                        created_by=f"costmw prune --method {method}")
    first, last = rows[0], rows[-1]
    message = (f"{method} pruning ({amount:.0%}): parameters {first['params']:,} -> {last['params']:,}, "
               f"non-zero {first['nonzero_params']:,} -> {last['nonzero_params']:,}")
    return MakeResult(path=out, manifest=manifest, metrics=metrics, training=result, message=message)
