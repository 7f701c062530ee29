"""Distillation: a smaller student learns to answer like a teacher.

Two ways: *logit* distillation (the teacher is local; the student matches the teacher's softened
next-token distribution, KL at temperature T, plus the usual cross-entropy on the answer), and
*sequence-level* distillation (the student learns the teacher's answers: those a local teacher
generates, or those an API teacher gave, recorded in the ledger). A student can start as the teacher
with every other decoder layer removed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._arch import decoder_layers, rebuild
from ._evaluate import agreement, generate_answers, measure_speed
from ._examples import Example
from ._lora import lora_model
from ._models import atomic_dir, load_model, model_bytes, resolve_model, save_model
from ._result import MakeResult
from ._sft import clear_manifest, finish_run, get_split, register, run_sft
from ._trainer import LossFn, TrainConfig

__all__ = ["distill", "every_other_layer", "init_student", "kd_loss", "shrink_layers"]

METHODS = ("logits", "sequence")


def every_other_layer(count: int) -> list[int]:
    """Layers 0, 2, 4, ... with the last layer kept in place of the last even one (it shapes the output)."""
    keep = list(range(0, count, 2))
    if count > 1 and keep[-1] != count - 1:
        keep[-1] = count - 1
    return keep


def shrink_layers(model: Any, keep: list[int]) -> Any:
    """A copy of ``model`` with only the decoder layers ``keep`` (in order), config updated to match."""
    prefix, blocks = decoder_layers(model)
    if not keep or any(not 0 <= i < len(blocks) for i in keep):
        raise ConfigError(f"layers to keep must be within 0..{len(blocks) - 1}, got {keep}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = len(keep)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in keep]
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith(prefix + "."):
            index, tail = key[len(prefix) + 1:].split(".", 1)
            if int(index) in keep:
                state[f"{prefix}.{keep.index(int(index))}.{tail}"] = value
        else:
            state[key] = value
    return rebuild(config, state, "cannot rebuild the student")


def init_student(teacher: str | Path, out: str | Path, keep: list[int] | None = None) -> Path:
    """Save a student made from ``teacher`` by keeping every other layer (or the layers ``keep``)."""
    model, tokenizer = load_model(teacher, what="teacher")
    _, blocks = decoder_layers(model)
    return save_model(shrink_layers(model, keep or every_other_layer(len(blocks))), tokenizer, out)


def kd_loss(teacher: Any, temperature: float, alpha: float) -> LossFn:
    """``alpha`` x cross-entropy + (1 - ``alpha``) x T² x KL(teacher_T || student_T), on answer tokens only."""
    import torch
    import torch.nn.functional as F

    def compute(student: Any, batch: dict[str, Any]) -> Any:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits = student(**inputs).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        mask = labels != -100
        s = logits[mask]
        ce = F.cross_entropy(s, labels[mask])
        with torch.no_grad():
            t = teacher(**inputs).logits[:, :-1][mask]
        kl = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                      log_target=True, reduction="batchmean")
        return alpha * ce + (1 - alpha) * temperature**2 * kl

    return compute


def _same_vocab(teacher_tok: Any, student_tok: Any, teacher: Any, student: Any) -> None:
    t_out, s_out = teacher.get_output_embeddings(), student.get_output_embeddings()
    if t_out.weight.shape[0] != s_out.weight.shape[0] or teacher_tok.get_vocab() != student_tok.get_vocab():
        raise ConfigError("logit distillation needs the teacher and student to share a tokenizer; they differ. "
                          "Use method='sequence' (the student learns the teacher's answers instead)")


def _relabel(teacher: Any, tokenizer: Any, examples: list[Example], max_new_tokens: int) -> list[Example]:
    answers = generate_answers(teacher, tokenizer, examples, max_new_tokens=max_new_tokens)
    return [Example(messages=ex.messages, answer=a, meta={**ex.meta, "teacher": True})
            for ex, a in zip(examples, answers) if a.strip()]


def distill(teacher: str | Path | None, data: Any, out: str | Path, *, student: str | Path | None = None,
            keep_layers: list[int] | None = None, method: str = "logits", temperature: float = 2.0,
            alpha: float = 0.5, lora: bool = False, rank: int = 8, validation: Any = 0.1, bar: float | None = None,
            match: Any = "exact", steps: int | None = None, epochs: float = 1.0, batch_size: int = 8,
            lr: float = 1e-4, max_length: int = 256, seed: int = 0, save_every: int = 50, resume: bool = False,
            progress: bool = True, eval_answers: int = 32, max_new_tokens: int = 32, name: str | None = None,
            price: Any = None, keep_checkpoints: bool = False) -> MakeResult:
    """Train a student to answer like ``teacher`` and write a target folder at ``out``.

    ``teacher`` is a local model folder, or None when ``data`` holds an API teacher's answers
    (sequence-level only). ``student`` defaults to the teacher with every other layer kept (or
    ``keep_layers``). With ``bar``, the student must agree with the teacher on at least that share of
    the held-out prompts, or nothing is registered.
    """
    import torch

    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if teacher is None and method == "logits":
        raise ConfigError("logit distillation needs a local teacher; for an API teacher use method='sequence' "
                          "with its answers from the ledger (costmw distill --from-ledger)")
    if teacher is None and student is None:
        raise ConfigError("without a local teacher, pass the student model to train (--student or --base)")
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise ConfigError(f"need 0 <= alpha <= 1 and temperature > 0, got alpha={alpha}, temperature={temperature}")
    if bar is not None and not 0.0 <= bar <= 1.0:
        raise ConfigError(f"the agreement bar must be in [0, 1], got {bar}")
    out = Path(out)
    train_ex, val_ex = get_split(data, validation, seed)
    if bar is not None and not val_ex:
        raise ConfigError("the gate (bar) needs held-out prompts to score; give validation data or a fraction > 0")
    cfg = TrainConfig(steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, seed=seed,
                      save_every=save_every, progress=progress, resume=resume)
    cfg.check()
    torch.manual_seed(seed)
    t_model = t_tok = None
    if teacher is not None:
        t_model, t_tok = load_model(teacher, what="teacher")
        for p in t_model.parameters():
            p.requires_grad_(False)
    if student is None:
        assert t_model is not None
        _, blocks = decoder_layers(t_model)
        keep = keep_layers or every_other_layer(len(blocks))
        s_model, s_tok = shrink_layers(t_model, keep), t_tok
        student_from = f"teacher layers {keep}"
    else:
        if lora and resolve_model(student, "student")[1] is not None:
            raise ConfigError(f"student {str(student)!r} already carries a LoRA adapter; pass its base model")
        s_model, s_tok = load_model(student, what="student")
        student_from = str(student)
    if t_model is not None and method == "sequence":
        train_ex = _relabel(t_model, t_tok, train_ex, max_new_tokens)
    loss_fn = None
    if method == "logits":
        _same_vocab(t_tok, s_tok, t_model, s_model)
        loss_fn = kd_loss(t_model, temperature, alpha)
    if lora:
        s_model = lora_model(s_model, rank=rank, alpha=None, dropout=0.05, target_modules=None)
    fingerprint = {"technique": f"distill-{method}", "teacher": str(teacher), "student": student_from,
                   "lora": lora}
    out.mkdir(parents=True, exist_ok=True)
    result = run_sft(s_model, s_tok, train_ex, val_ex, cfg, out, fingerprint, loss_fn=loss_fn, desc="distill")
    clear_manifest(out)
    metrics: dict[str, Any] = {"technique": f"distill-{method}", "student_from": student_from,
                               "train_examples": len(train_ex), "validation_examples": len(val_ex),
                               **result.to_dict()}
    if lora and student is not None:
        with atomic_dir(out / "adapter") as tmp:
            s_model.save_pretrained(tmp)
        base_dir, adapter = resolve_model(student, "student")[0], out / "adapter"
    else:
        if lora:
            s_model = s_model.merge_and_unload()
        base_dir, adapter = save_model(s_model, s_tok, out / "model"), None
    held = val_ex[:eval_answers]
    metrics.update(_compare(t_model, t_tok, s_model, s_tok, held, match, max_new_tokens))
    finish_run(out, metrics, keep_checkpoints)
    return gate_student(out, metrics, bar, base=base_dir, adapter=adapter, name=name, price=price,
                        training=result, created_by="costmw distill")


def _compare(t_model: Any, t_tok: Any, s_model: Any, s_tok: Any, held: list[Example], match: Any,
             max_new_tokens: int) -> dict[str, Any]:
    """Agreement of the student with the teacher on held-out prompts, and both models' size and speed."""
    if not held:
        return {}
    student_answers = generate_answers(s_model, s_tok, held, max_new_tokens=max_new_tokens)
    if t_model is not None:
        reference = generate_answers(t_model, t_tok, held, max_new_tokens=max_new_tokens)
    else:
        reference = [ex.answer for ex in held]
    labels = [ex.answer for ex in held]
    out: dict[str, Any] = {"held_out_prompts": len(held),
                           "agreement": agreement(student_answers, reference, match),
                           "student_accuracy": agreement(student_answers, labels, match),
                           "student_params": sum(p.numel() for p in s_model.parameters()),
                           "student_bytes": model_bytes(s_model)}
    if t_model is not None:
        speed_on = held[:4]
        teacher_speed, student_speed = measure_speed(t_model, t_tok, speed_on), measure_speed(s_model, s_tok, speed_on)
        out.update(teacher_accuracy=agreement(reference, labels, match),
                   teacher_params=sum(p.numel() for p in t_model.parameters()), teacher_bytes=model_bytes(t_model),
                   teacher_ms_per_prompt=teacher_speed["ms_per_prompt"],
                   teacher_cpu_ms_per_prompt=teacher_speed["cpu_ms_per_prompt"],
                   student_ms_per_prompt=student_speed["ms_per_prompt"],
                   student_cpu_ms_per_prompt=student_speed["cpu_ms_per_prompt"])
    return out


def gate_student(out: Path, metrics: dict[str, Any], bar: float | None, *, base: Path, adapter: Path | None,
          name: str | None, price: Any, training: Any, created_by: str) -> MakeResult:
    """Register the student only when its agreement reaches ``bar`` (always, when there is no bar)."""
    score = metrics.get("agreement")
    if bar is not None:
        metrics["bar"] = bar
    if bar is not None and (score is None or score < bar):
        score, held = score or 0.0, metrics.get("held_out_prompts", 0)
        message = (f"the student agrees with the teacher on {score:.0%} of {held} held-out "
                   f"prompts, below the bar of {bar:.0%}: nothing registered. More data or steps, a larger rank, "
                   "or a bigger student may close the gap.")
        return MakeResult(path=out, manifest=None, metrics=metrics, training=training, passed=False, message=message)
    manifest = register(out, base=base, adapter=adapter, metrics=metrics, name=name, price=price, created_by=created_by)
    agreed = "" if score is None else f"agrees with the teacher on {score:.0%} of held-out prompts; "
    return MakeResult(path=out, manifest=manifest, metrics=metrics, training=training,
                      message=f"student {agreed}registered as a target")
