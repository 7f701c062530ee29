"""Measuring a model: loss on answer tokens, greedy answers, agreement with references, and speed."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from costmw.plugin_api import ConfigError

from ._examples import Example
from ._tokenize import Encoded, collate, format_prompt

__all__ = ["agreement", "answer_loss", "generate_answers", "measure_speed", "normalise_answer"]

_PUNCT = re.compile(r"[^\w\s]")


def normalise_answer(text: str) -> str:
    """Lower case, punctuation and extra spaces removed: "Billing." and "billing" agree."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _f1(a: str, b: str) -> float:
    x, y = normalise_answer(a).split(), normalise_answer(b).split()
    if not x or not y:
        return float(x == y)
    common = sum(min(x.count(w), y.count(w)) for w in set(x))
    if not common:
        return 0.0
    p, r = common / len(x), common / len(y)
    return 2 * p * r / (p + r)


def agreement(predictions: Sequence[str], references: Sequence[str],
              match: str | Callable[[str, str], float] = "exact") -> float:
    """Mean agreement of ``predictions`` with ``references``: "exact" (after normalising), "f1"
    (token overlap), or a function ``(prediction, reference) -> score in [0, 1]``."""
    if len(predictions) != len(references):
        raise ConfigError("predictions and references differ in length")
    if not references:
        return 0.0
    if callable(match):
        score = match
    elif match == "exact":
        def score(a: str, b: str) -> float:
            return float(normalise_answer(a) == normalise_answer(b))
    elif match == "f1":
        score = _f1
    else:
        raise ConfigError(f"match must be 'exact', 'f1' or a function, got {match!r}")
    return sum(float(score(p, r)) for p, r in zip(predictions, references)) / len(references)


def answer_loss(model: Any, encoded: Sequence[Encoded], pad_id: int, batch_size: int = 8) -> float | None:
    """Mean cross-entropy per answer token over ``encoded`` (None when it is empty)."""
    import torch

    if not encoded:
        return None
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = collate(encoded[start:start + batch_size], pad_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            mask = labels != -100
            picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total += float(-(picked * mask).sum())
            tokens += int(mask.sum())
    model.train(was_training)
    return total / max(tokens, 1)


def generate_answers(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_new_tokens: int = 32,
                     batch_size: int = 8) -> list[str]:
    """Greedy answers for the prompts of ``examples`` (left-padded batches)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(examples), batch_size):
            prompts = [format_prompt(tokenizer, ex.messages) for ex in examples[start:start + batch_size]]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            for row in ids[:, enc["input_ids"].shape[1]:]:
                out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def measure_speed(model: Any, tokenizer: Any, examples: Sequence[Example], *, new_tokens: int = 16,
                  repeats: int = 2) -> dict[str, float]:
    """Greedy generation of ``new_tokens`` for each prompt, one at a time, best of ``repeats``:
    wall ms per prompt, CPU ms per prompt (steadier on a busy machine), and tokens/s."""
    import torch

    prompts = [format_prompt(tokenizer, ex.messages) for ex in examples]
    if not prompts:
        raise ConfigError("speed needs at least one prompt")
    wall: list[float] = []
    cpu: list[float] = []
    model.eval()
    with torch.no_grad():
        enc0 = tokenizer(prompts[0], return_tensors="pt", add_special_tokens=False)
        model.generate(**enc0, max_new_tokens=2, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for p in prompts:
            enc = tokenizer(p, return_tensors="pt", add_special_tokens=False)
            best_wall, best_cpu = float("inf"), float("inf")
            for _ in range(max(1, repeats)):
                t0, c0 = time.perf_counter(), time.process_time()
                model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id)
                best_wall = min(best_wall, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            wall.append(best_wall)
            cpu.append(best_cpu)
    total = sum(wall)
    return {"ms_per_prompt": 1000 * total / len(wall), "cpu_ms_per_prompt": 1000 * sum(cpu) / len(cpu),
            "tokens_per_s": new_tokens * len(wall) / total if total else 0.0}
