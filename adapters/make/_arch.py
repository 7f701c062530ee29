"""Finding a causal LM's decoder layers, picking some of them by a short spec, and building a
model of a changed shape from a state dict."""

from __future__ import annotations

from typing import Any

from costmw.plugin_api import ConfigError

__all__ = ["decoder_layers", "parse_layers", "rebuild"]


def decoder_layers(model: Any) -> tuple[str, Any]:
    """(dotted name, ModuleList) of the model's decoder layers, e.g. ``model.layers`` for llama."""
    import torch

    n = getattr(model.config, "num_hidden_layers", None)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, torch.nn.ModuleList) and (n is None or len(m) == n)]
    if not found:
        raise ConfigError(f"cannot find the decoder layers of this {type(model).__name__}")
    found.sort(key=lambda item: (not item[0].endswith(("layers", ".h", "blocks")), item[0].count(".")))
    return found[0]


def rebuild(config: Any, state: dict[str, Any], what: str) -> Any:
    """A causal LM made from ``config`` holding ``state`` (tied output weights tied again), in eval mode.

    ``what`` heads the ConfigError raised when the weights do not fit the model the config describes.
    """
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ConfigError(f"{what}: missing {sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}")
    if tied:
        model.tie_weights()
    return model.eval()


def parse_layers(spec: str | list[int], count: int) -> list[int]:
    """Layer indices from ``spec``: "all", "last:4", "first:2", "0,1,5", "20-29" (mixable with commas);
    negative numbers count from the end."""
    if isinstance(spec, list):
        picked = list(spec)
    else:
        text = spec.strip().lower()
        picked = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            picked.extend(_part(part, count))
    out = sorted({i + count if i < 0 else i for i in picked})
    bad = [i for i in out if not 0 <= i < count]
    if bad or not out:
        raise ConfigError(f"layers {spec!r} select {bad or 'nothing'}; the model has layers 0..{count - 1}")
    return out


def _part(part: str, count: int) -> list[int]:
    try:
        if part == "all":
            return list(range(count))
        if part.startswith(("last:", "first:")):
            kind, n = part.split(":")
            k = int(n)
            if not 0 < k <= count:
                raise ConfigError(f"layers {part!r}: the model has {count} layers")
            return list(range(count - k, count)) if kind == "last" else list(range(k))
        if "-" in part[1:]:
            lo, hi = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
            return list(range(int(lo), int(hi) + 1))
        return [int(part)]
    except ValueError as exc:
        raise ConfigError(f"cannot read layers {part!r}: use e.g. 'last:4', '0,1,2' or '20-29'") from exc
