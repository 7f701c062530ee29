"""The flywheel in one call: ledger → cleaned data → LoRA student → agreement gate → a target.

An API model's recorded answers are the teacher (sequence-level distillation). The student is a
LoRA adapter on a small local ``base``. It is registered only when its greedy answers agree with the
teacher's on at least ``bar`` of the held-out prompts, which the split kept free of near-duplicates
of the training prompts; below the bar the report says so and no manifest is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._data import clean_dataset
from ._distill import gate_student
from ._evaluate import agreement, generate_answers
from ._lora import train_adapter
from ._result import MakeResult
from ._sft import finish_run
from ._trainer import TrainConfig

__all__ = ["distill_from_ledger"]


def distill_from_ledger(ledger: str | Path, base: str | Path, out: str | Path, *, teacher_model: str | None = None,
                        bar: float = 0.8, match: Any = "exact", near_dup: str = "minhash", validation: float = 0.2,
                        rank: int = 8, steps: int | None = None, epochs: float = 2.0, batch_size: int = 8,
                        lr: float = 2e-4, max_length: int = 256, seed: int = 0, save_every: int = 50,
                        resume: bool = False, progress: bool = True, eval_answers: int = 64,
                        max_new_tokens: int = 32, name: str | None = None, price: Any = None,
                        keep_checkpoints: bool = False) -> MakeResult:
    """Distil the answers recorded in ``ledger`` (only those served by ``teacher_model``, if given) into a
    LoRA student on ``base``; register it at ``out`` only if it agrees with the teacher on at least
    ``bar`` of the held-out prompts (``match``: "exact", "f1" or a scoring function)."""
    out = Path(out)
    if not 0.0 <= bar <= 1.0:
        raise ConfigError(f"the agreement bar must be in [0, 1], got {bar}")
    if not 0.0 < validation < 1.0:
        raise ConfigError(f"the gate needs held-out prompts: validation must be in (0, 1), got {validation}")
    dataset = clean_dataset(ledger, ledger_model=teacher_model, near_dup=near_dup, validation=validation, seed=seed,
                            out=out / "data")
    if not dataset.validation:
        raise ConfigError(f"no held-out prompts after cleaning ({dataset.report.train} for training): the gate "
                          "cannot score the student; record more calls or raise validation")
    cfg = TrainConfig(steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, seed=seed,
                      save_every=save_every, progress=progress, resume=resume)
    model, tokenizer, base_dir, metrics, result = train_adapter(
        base, dataset.train, dataset.validation, out, cfg, rank=rank, alpha=None, dropout=0.05, target_modules=None)
    held = dataset.validation[:eval_answers]
    answers = generate_answers(model, tokenizer, held, max_new_tokens=max_new_tokens)
    metrics.update(technique="distill-ledger", teacher=teacher_model or "every answer in the ledger",
                   held_out_prompts=len(held), agreement=agreement(answers, [ex.answer for ex in held], match),
                   data=dataset.report.to_dict())
    finish_run(out, metrics, keep_checkpoints)
    outcome = gate_student(out, metrics, bar, base=base_dir, adapter=out / "adapter", name=name, price=price,
                    training=result, created_by="costmw distill --from-ledger")
    outcome.message = f"{dataset.report}\n{outcome.message}"
    return outcome
