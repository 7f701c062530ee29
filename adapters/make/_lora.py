"""LoRA fine-tuning: a small adapter learns a team's task on top of a frozen causal LM.

Writes ``<out>/adapter`` (peft format) and a ``costmw-target.json`` of kind "hf" whose ``base`` is the
model and ``adapter`` the LoRA folder, so :func:`costmw.adapters.load` serves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, missing_extra

from ._examples import Example
from ._models import atomic_dir, load_model, resolve_model
from ._result import MakeResult
from ._sft import answer_metrics, clear_manifest, finish_run, get_split, register, run_sft
from ._trainer import TrainConfig, TrainResult

__all__ = ["LORA_TARGETS", "default_lora_targets", "tune_lora"]

_ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
# Attention projections per architecture: where LoRA buys the most per trainable parameter.
LORA_TARGETS: dict[str, list[str]] = {
    **{t: _ATTN for t in ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "gemma", "gemma2",
                          "gemma3_text", "olmo", "olmo2", "granite", "smollm3", "starcoder2", "cohere")},
    "phi3": ["qkv_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "gpt2": ["c_attn"],
    "gpt_bigcode": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "falcon": ["query_key_value"],
    "bloom": ["query_key_value"],
    "mpt": ["Wqkv"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj"],
}


def default_lora_targets(model: Any) -> list[str]:
    """Module names to adapt: the architecture's attention projections, else every linear layer
    except the output head."""
    import torch

    known = LORA_TARGETS.get(getattr(model.config, "model_type", ""))
    if known:
        return list(known)
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and not n.endswith(("lm_head", "embed_out"))}
    if not names:
        raise ConfigError("the model has no linear layers LoRA could adapt; pass target_modules")
    try:
        from transformers.pytorch_utils import Conv1D

        names |= {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, Conv1D)}
    except ImportError:
        pass
    return sorted(names)


def lora_model(model: Any, *, rank: int, alpha: float | None, dropout: float, target_modules: list[str] | None) -> Any:
    """Wrap ``model`` with fresh LoRA adapters (only they train)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise missing_extra("peft", "local", exc) from exc
    if rank < 1:
        raise ConfigError(f"LoRA rank must be at least 1, got {rank}")
    targets = target_modules or default_lora_targets(model)
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise ConfigError(f"target modules {missing} are not in this model; it has e.g. {sorted(present)[:12]}")
    config = LoraConfig(r=rank, lora_alpha=int(alpha) if alpha is not None else 2 * rank, lora_dropout=dropout,
                        target_modules=targets, task_type="CAUSAL_LM",
                        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2")
    return get_peft_model(model, config)


def train_adapter(base: str | Path, train_ex: list[Example], val_ex: list[Example], out: Path, cfg: TrainConfig, *,
                  rank: int, alpha: float | None, dropout: float,
                  target_modules: list[str] | None) -> tuple[Any, Any, Path, dict[str, Any], TrainResult]:
    """Train a LoRA adapter and save it to ``<out>/adapter``: (model, tokenizer, base folder, metrics, run)."""
    import torch

    base_dir, adapter = resolve_model(base)
    if adapter is not None:
        raise ConfigError(f"{str(base)!r} already carries a LoRA adapter; tune from its base model {str(base_dir)!r}")
    cfg.check()
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_model(base_dir)
    model = lora_model(model, rank=rank, alpha=alpha, dropout=dropout, target_modules=target_modules)
    targets = sorted(model.peft_config["default"].target_modules)
    fingerprint = {"technique": "lora", "base": str(base_dir.resolve()), "rank": rank, "targets": targets}
    out.mkdir(parents=True, exist_ok=True)
    result = run_sft(model, tokenizer, train_ex, val_ex, cfg, out, fingerprint, desc="lora")
    clear_manifest(out)
    with atomic_dir(out / "adapter") as tmp:
        model.save_pretrained(tmp)
    metrics: dict[str, Any] = {"technique": "lora", "rank": rank, "target_modules": targets,
                               "train_examples": len(train_ex), "validation_examples": len(val_ex),
                               **result.to_dict()}
    return model, tokenizer, base_dir, metrics, result


def tune_lora(base: str | Path, data: Any, out: str | Path, *, validation: Any = 0.1, rank: int = 8,
              alpha: float | None = None, dropout: float = 0.05, target_modules: list[str] | None = None,
              steps: int | None = None, epochs: float = 1.0, batch_size: int = 8, grad_accum: int = 1,
              lr: float = 2e-4, max_length: int = 256, seed: int = 0, save_every: int = 50, resume: bool = False,
              progress: bool = True, eval_answers: int = 32, max_new_tokens: int = 32, name: str | None = None,
              price: Any = None, keep_checkpoints: bool = False) -> MakeResult:
    """Fine-tune ``base`` with LoRA on ``data`` and write a target folder at ``out``.

    ``alpha`` defaults to twice the rank; ``target_modules`` to the architecture's attention
    projections. Loss is on answer tokens only; the validation split is scored by loss and by
    greedy answers (``eval_answers`` of them). ``resume`` continues from the last checkpoint.
    """
    out = Path(out)
    resolve_model(base)
    train_ex, val_ex = get_split(data, validation, seed)
    cfg = TrainConfig(steps=steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                      max_length=max_length, seed=seed, save_every=save_every, progress=progress, resume=resume)
    model, tokenizer, base_dir, metrics, result = train_adapter(
        base, train_ex, val_ex, out, cfg, rank=rank, alpha=alpha, dropout=dropout, target_modules=target_modules)
    metrics.update(answer_metrics(model, tokenizer, val_ex, limit=eval_answers, max_new_tokens=max_new_tokens))
    finish_run(out, metrics, keep_checkpoints)
    manifest = register(out, base=base_dir, adapter=out / "adapter", metrics=metrics, name=name, price=price,
                        created_by="costmw tune lora")
    message = (f"LoRA r={rank} on {', '.join(metrics['target_modules'])}: {result.trainable_params:,} trainable "
               f"parameters ({metrics['trainable_pct']:.2f}% of {result.total_params:,})")
    return MakeResult(path=out, manifest=manifest, metrics=metrics, training=result, message=message)
