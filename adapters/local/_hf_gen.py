"""One ``generate`` call for a batch of chat requests: left padding, per-row limits and stop text,
token-by-token streaming, and the answers cut back into one response per request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from costmw.plugin_api import ContextWindowError, Message, Request, Response, Usage

from ._base import GenParams, chat_messages, cut_at_stop, stop_holdback, token_entry

__all__ = ["Batch", "render_prompt", "run_generate", "token_logprobs"]

_FALLBACK_ROLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def render_prompt(tokenizer: Any, messages: Sequence[Message], chat_template: str | None) -> tuple[str, bool]:
    """The prompt text, and whether the tokenizer should add its special tokens itself."""
    plain = chat_messages(messages)
    if chat_template is not None or getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True,
                                             chat_template=chat_template)
        return str(text), False
    lines = [f"{_FALLBACK_ROLES.get(m['role'], m['role'])}: {m['content']}" for m in plain]
    return "\n".join([*lines, "Assistant:"]), True


@dataclass
class Batch:
    """The requests of one generate call, with everything needed to run and split it."""

    requests: Sequence[Request]
    params: Sequence[GenParams]
    adapters: list[str | None]  # peft adapter name of each row (None: the base model)
    labels: list[str | None]  # the adapter names the caller used
    cancel: threading.Event = field(default_factory=threading.Event)
    on_text: Callable[[str], None] | None = None  # streaming (a batch of one)


def _stopping(torch: Any, tokenizer: Any, batch: Batch, prompt_len: int) -> Any:
    from transformers import StoppingCriteria

    limits = [p.max_tokens for p in batch.params]
    stops = [p.stop for p in batch.params]
    window = max((len(s) for row in stops for s in row), default=0) + 4

    class RowStops(StoppingCriteria):  # type: ignore[misc]
        """Ends each row at its own max_tokens or stop text; ends every row when cancelled."""

        def __init__(self) -> None:
            self.done_at: dict[int, int] = {}

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            made = input_ids.shape[1] - prompt_len
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if batch.cancel.is_set():
                return done | True
            for i in range(input_ids.shape[0]):
                hit = made >= limits[i]
                if not hit and stops[i] and made > 0:
                    tail = tokenizer.decode(input_ids[i, -min(made, window):], skip_special_tokens=True)
                    hit = any(s in tail for s in stops[i])
                if hit:
                    done[i] = True
                    self.done_at.setdefault(i, made)
            return done

    return RowStops()


class _TextStream:
    """A streamer for ``generate``: decodes the growing answer and hands each new piece of text on,
    holding back what may still become a stop sequence or an unfinished character."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], emit: Callable[[str], None]) -> None:
        self.tokenizer, self.stops, self.emit = tokenizer, stops, emit
        self.ids: list[int] = []
        self.sent = ""
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate first passes the prompt
            self.prompt_seen = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        visible, hit = cut_at_stop(text, self.stops)
        if not hit:
            visible = visible[: len(visible) - stop_holdback(visible, self.stops)].rstrip("\ufffd")
        if len(visible) > len(self.sent) and visible.startswith(self.sent):
            self.emit(visible[len(self.sent):])
            self.sent = visible

    def end(self) -> None:
        return None


def _generate_kwargs(tokenizer: Any, model: Any, p: GenParams, max_new: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": p.sampling,
                              "pad_token_id": tokenizer.pad_token_id}
    eos = getattr(model.generation_config, "eos_token_id", None)
    kwargs["eos_token_id"] = eos if eos is not None else tokenizer.eos_token_id
    if p.sampling:
        kwargs["temperature"] = p.temperature
        if p.top_p is not None:
            kwargs["top_p"] = p.top_p
        if p.top_k is not None:
            kwargs["top_k"] = p.top_k
    else:  # greedy: clear sampling defaults a model's generation config may carry
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if p.repetition_penalty is not None:
        kwargs["repetition_penalty"] = p.repetition_penalty
    return kwargs


def run_generate(entry: Any, batch: Batch, *, chat_template: str | None, context_window: int | None,
                 model_label: Callable[[str | None], str], target_name: str) -> list[Response]:
    """Run one padded ``generate`` call for ``batch`` and split it into responses. Holds the model lock."""
    import torch

    from ._hf_load import adapter_scope

    tokenizer, first = entry.tokenizer, batch.params[0]
    rendered = [render_prompt(tokenizer, r.messages, chat_template) for r in batch.requests]
    enc = tokenizer([t for t, _ in rendered], return_tensors="pt", padding=True,
                    add_special_tokens=rendered[0][1])
    prompt_len = int(enc["input_ids"].shape[1])
    max_new = max(p.max_tokens for p in batch.params)
    if context_window:
        if prompt_len >= context_window:
            raise ContextWindowError(f"target {target_name!r}: prompt of {prompt_len} tokens does not fit its "
                                     f"context window of {context_window}", target=target_name,
                                     request=batch.requests[0])
        max_new = min(max_new, context_window - prompt_len)
    kwargs = _generate_kwargs(tokenizer, entry.model, first, max_new)
    want_logprobs = any(p.logprobs for p in batch.params)
    if want_logprobs:  # the raw logits, so log-probabilities are the model's own, not the sampler's
        kwargs.update(output_logits=True, return_dict_in_generate=True)
    stopper = _stopping(torch, tokenizer, batch, prompt_len)
    kwargs["stopping_criteria"] = [stopper]
    if batch.on_text is not None:
        kwargs["streamer"] = _TextStream(tokenizer, first.stop, batch.on_text)
    device = next(entry.model.parameters()).device
    inputs = {k: v.to(device) for k, v in enc.items()}
    with entry.lock, adapter_scope(entry, batch.adapters) as extra, torch.inference_mode():
        if first.seed is not None:
            torch.manual_seed(first.seed)
        out = entry.model.generate(**inputs, **kwargs, **extra)
    logits = None
    if want_logprobs:
        out, logits = out.sequences, out.logits
    eos = kwargs["eos_token_id"]
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    responses = []
    for i, p in enumerate(batch.params):
        ids = out[i, prompt_len:].tolist()[: p.max_tokens]
        end = next((j for j, t in enumerate(ids) if t in eos_ids), None)
        made = stopper.done_at.get(i, len(ids))  # a row that ended at its end token stops counting there,
        if end is not None:  # though the stopping check keeps seeing it while other rows go on
            made = min(made, end + 1)
        text, hit = cut_at_stop(tokenizer.decode(ids[:end], skip_special_tokens=True), p.stop)
        finish = "stop" if hit or end is not None or (i in stopper.done_at and made < p.max_tokens) else "length"
        info: dict[str, Any] = {"batch_size": len(batch.requests)}
        if batch.labels[i] is not None:
            info["adapter"] = batch.labels[i]
        response = Response(text=text, finish_reason=finish, model=model_label(batch.labels[i]),
                            usage=Usage(int(enc["attention_mask"][i].sum()), int(min(made, p.max_tokens))),
                            info=info)
        if p.logprobs and logits is not None:
            kept = ids[:end] if not hit else ids[:_tokens_covering(tokenizer, ids, len(text))]
            response.logprobs = token_logprobs(torch, tokenizer, logits, i, kept, p.top_logprobs)
        responses.append(response)
    return responses


def _tokens_covering(tokenizer: Any, ids: Sequence[int], chars: int) -> int:
    """How many of ``ids`` it takes to write the first ``chars`` characters of their text."""
    for n in range(len(ids) + 1):
        if len(tokenizer.decode(ids[:n], skip_special_tokens=True)) >= chars:
            return n
    return len(ids)


def _piece(tokenizer: Any, ids: Sequence[int], j: int, token: int) -> str:
    """The text ``token`` adds at position ``j``: decoded after the token before it, so a leading
    space that a tokenizer drops at the start of a text is kept."""
    if j == 0:
        return str(tokenizer.decode([token], skip_special_tokens=True))
    before = tokenizer.decode([ids[j - 1]], skip_special_tokens=True)
    both = tokenizer.decode([ids[j - 1], token], skip_special_tokens=True)
    return str(both[len(before):]) if both.startswith(before) else str(tokenizer.decode([token]))


def token_logprobs(torch: Any, tokenizer: Any, logits: Sequence[Any], row: int, ids: Sequence[int],
                   top: int) -> list[dict[str, Any]]:
    """OpenAI-style ``logprobs.content`` of one row's answer tokens, from ``generate``'s per-step logits."""
    if not ids:
        return []
    steps = torch.stack([logits[j][row] for j in range(len(ids))]).float()
    logp = torch.log_softmax(steps, dim=-1)
    chosen = logp.gather(1, torch.tensor(list(ids), device=logp.device).unsqueeze(1)).squeeze(1).tolist()
    tokens = [_piece(tokenizer, ids, j, t) for j, t in enumerate(ids)]
    alternatives: list[list[tuple[str, float]]] = [[] for _ in ids]
    if top:
        values, indices = logp.topk(top, dim=-1)
        for j, (vals, idx) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
            alternatives[j] = [(_piece(tokenizer, ids, j, t), v) for t, v in zip(idx, vals, strict=True)]
    return [token_entry(t, v, a) for t, v, a in zip(tokens, chosen, alternatives, strict=True)]
