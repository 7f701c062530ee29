"""Structured pruning of llama-like decoders: drop MLP channels and attention heads for real.

Every layer keeps the same number of channels and heads (the config holds one value for all
layers), but each layer chooses its own by importance: a channel's mean absolute activation at the
input of ``down_proj`` times the norm of its ``down_proj`` column, and a head's mean output norm at
the input of ``o_proj`` times the norm of its ``o_proj`` columns (weight norms alone without
calibration data). With grouped-query attention the same number of query heads goes from every
key/value group, so the grouping stays valid.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from costmw.plugin_api import ConfigError

from ._arch import decoder_layers, rebuild
from ._tokenize import Encoded

__all__ = ["prune_structured"]

_NEEDED = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _check(blocks: Any) -> None:
    names = {n for n, _ in blocks[0].named_modules()}
    missing = [n for n in _NEEDED if n not in names]
    if missing:
        raise ConfigError(f"structured pruning supports llama-like models (q/k/v/o_proj, gate/up/down_proj); this "
                          f"one lacks {missing}. Use method='magnitude'")


def _activation_stats(model: Any, blocks: Any, calibration: Sequence[Encoded], heads: int,
                      head_dim: int) -> tuple[list[Any], list[Any]]:
    """Per layer: summed |activation| per MLP channel, summed output norm per attention head."""
    import torch

    mlp = [torch.zeros(b.mlp.down_proj.in_features) for b in blocks]
    att = [torch.zeros(heads) for _ in blocks]
    hooks = []
    for i, b in enumerate(blocks):
        def on_down(_m: Any, args: tuple[Any, ...], i: int = i) -> None:
            mlp[i] += args[0].detach().abs().flatten(0, -2).sum(0)

        def on_o(_m: Any, args: tuple[Any, ...], i: int = i) -> None:
            x = args[0].detach().flatten(0, -2).view(-1, heads, head_dim)
            att[i] += x.norm(dim=-1).sum(0)

        hooks += [b.mlp.down_proj.register_forward_pre_hook(on_down),
                  b.self_attn.o_proj.register_forward_pre_hook(on_o)]
    try:
        with torch.no_grad():
            for e in calibration:
                model(input_ids=torch.tensor([e.input_ids]))
    finally:
        for h in hooks:
            h.remove()
    return mlp, att


def _keep(scores: Any, n_keep: int) -> list[int]:
    return sorted(scores.topk(n_keep).indices.tolist())


def _rows(t: Any, idx: Any) -> Any:
    return t.index_select(0, idx).clone()


def prune_structured(model: Any, *, amount: float, target: str,
                     calibration: Sequence[Encoded] = ()) -> tuple[Any, dict[str, Any]]:
    """A smaller copy of ``model`` without ``amount`` of its MLP channels and/or attention heads."""
    import torch

    prefix, blocks = decoder_layers(model)
    _check(blocks)
    cfg = model.config
    heads, kv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    group = heads // kv
    inter = blocks[0].mlp.down_proj.in_features
    cut_mlp = round(amount * inter) if target in ("mlp", "both") else 0
    cut_per_group = round(amount * group) if target in ("heads", "both") and group > 1 else 0
    cut_kv = round(amount * kv) if target in ("heads", "both") and group == 1 else 0
    if cut_mlp >= inter or cut_per_group >= group or (cut_kv and cut_kv >= kv):
        raise ConfigError(f"amount {amount} would remove every channel or head; use a smaller amount")
    if calibration:
        mlp_act, head_act = _activation_stats(model, blocks, calibration, heads, head_dim)
    state = dict(model.state_dict())
    for i, b in enumerate(blocks):
        p = f"{prefix}.{i}."
        down_norm = b.mlp.down_proj.weight.detach().norm(dim=0)
        o_cols = b.self_attn.o_proj.weight.detach().view(-1, heads, head_dim).norm(dim=(0, 2))
        if calibration:
            mlp_score, head_score = mlp_act[i] * down_norm, head_act[i] * o_cols
        else:
            gate_up = b.mlp.gate_proj.weight.detach().norm(dim=1) * b.mlp.up_proj.weight.detach().norm(dim=1)
            q_rows = b.self_attn.q_proj.weight.detach().view(heads, head_dim, -1).norm(dim=(1, 2))
            mlp_score, head_score = gate_up * down_norm, q_rows * o_cols
        if cut_mlp:
            keep = torch.tensor(_keep(mlp_score, inter - cut_mlp))
            for name in ("mlp.gate_proj", "mlp.up_proj"):
                for kind in ("weight", "bias"):
                    if p + f"{name}.{kind}" in state:
                        state[p + f"{name}.{kind}"] = _rows(state[p + f"{name}.{kind}"], keep)
            state[p + "mlp.down_proj.weight"] = state[p + "mlp.down_proj.weight"][:, keep].clone()
        if cut_per_group or cut_kv:
            kept_heads, kept_kv = _pick_heads(head_score, kv, group, cut_per_group, cut_kv)
            _slice_attention(state, p, kept_heads, kept_kv, head_dim)
    config = copy.deepcopy(cfg)
    config.intermediate_size = inter - cut_mlp
    config.num_key_value_heads = kv - cut_kv
    config.num_attention_heads = (kv - cut_kv) * (group - cut_per_group)
    config.head_dim = head_dim
    smaller = rebuild(config, state, "pruned weights do not fit the smaller model")
    detail = {"intermediate_size": [inter, config.intermediate_size],
              "attention_heads": [heads, config.num_attention_heads],
              "key_value_heads": [kv, config.num_key_value_heads],
              "importance": "calibration activations" if calibration else "weight norms"}
    return smaller, detail


def _pick_heads(score: Any, kv: int, group: int, cut_per_group: int, cut_kv: int) -> tuple[list[int], list[int]]:
    """Query heads and key/value heads to keep: the best of each group, or the best whole groups."""
    if cut_kv:
        kept_kv = _keep(score, kv - cut_kv)
        return kept_kv, kept_kv
    kept: list[int] = []
    for g in range(kv):
        local = _keep(score[g * group:(g + 1) * group], group - cut_per_group)
        kept += [g * group + h for h in local]
    return kept, list(range(kv))


def _slice_attention(state: dict[str, Any], p: str, kept_heads: list[int], kept_kv: list[int], head_dim: int) -> None:
    import torch

    def span(heads: list[int]) -> Any:
        return torch.tensor([h * head_dim + d for h in heads for d in range(head_dim)])

    q_idx, kv_idx = span(kept_heads), span(kept_kv)
    for name, idx in (("q_proj", q_idx), ("k_proj", kv_idx), ("v_proj", kv_idx)):
        for kind in ("weight", "bias"):
            key = f"{p}self_attn.{name}.{kind}"
            if key in state:
                state[key] = _rows(state[key], idx)
    key = f"{p}self_attn.o_proj.weight"
    state[key] = state[key][:, q_idx].clone()
