"""Chat-template formatting and tokenisation with the loss only on the answer tokens.

The prompt is formatted with the tokenizer's chat template (``add_generation_prompt=True``), exactly
as a target formats it at inference time, and tokenised on its own; the answer tokens follow. Prompt
positions get the label -100, so training learns to answer, not to repeat prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from costmw.plugin_api import ConfigError, Message, message_text

from ._examples import Example

__all__ = ["Encoded", "collate", "encode_examples", "format_prompt", "micro_batches"]

IGNORE = -100


@dataclass(slots=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def _plain_prompt(messages: Sequence[Message]) -> str:
    parts = [f"### {m.get('role', 'user').capitalize()}:\n{message_text(m)}\n" for m in messages]
    return "".join(parts) + "### Assistant:\n"


def format_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The prompt text the model sees: its chat template, or a plain "### Role:" layout without one."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
    return _plain_prompt(messages)


def _answer_text(tokenizer: Any, ex: Example, prompt: str) -> str:
    eos = getattr(tokenizer, "eos_token", None) or ""
    if getattr(tokenizer, "chat_template", None):
        full = str(tokenizer.apply_chat_template(
            [*ex.messages, {"role": "assistant", "content": ex.answer}], tokenize=False))
        if full.startswith(prompt):
            tail = full[len(prompt):]
            cut = tail.rfind(eos) if eos else -1
            return tail[:cut + len(eos)] if cut >= 0 else tail
    return ex.answer + eos


def encode_example(tokenizer: Any, ex: Example, max_length: int) -> Encoded | None:
    """Token ids and labels for one example, or None when no answer token fits in ``max_length``.

    Long prompts lose their oldest tokens first; the answer keeps at most half the window."""
    prompt = format_prompt(tokenizer, ex.messages)
    p_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    a_ids = list(tokenizer(_answer_text(tokenizer, ex, prompt), add_special_tokens=False)["input_ids"])
    if not a_ids:
        return None
    if len(p_ids) + len(a_ids) > max_length:
        a_ids = a_ids[:max(1, max_length // 2, max_length - len(p_ids))]
        p_ids = p_ids[len(p_ids) - (max_length - len(a_ids)):] if max_length > len(a_ids) else []
    return Encoded(input_ids=p_ids + a_ids, labels=[IGNORE] * len(p_ids) + a_ids)


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_length: int,
                    what: str = "training") -> list[Encoded]:
    """Encode every example; fails with a clear message when there is nothing to learn from."""
    if max_length < 8:
        raise ConfigError(f"max_length must be at least 8 tokens, got {max_length}")
    out = [e for e in (encode_example(tokenizer, ex, max_length) for ex in examples) if e is not None]
    if not out and what == "training":
        raise ConfigError(f"the {what} set is empty after encoding ({len(examples)} examples given); "
                          "add examples with non-empty answers")
    return out


def micro_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Example indices for each micro-batch of one epoch, shuffled deterministically by (seed, epoch)."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask and labels (-100 on padding)."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
