"""Dynamic int8 for CPU: int8 weights, activations quantized per token on the fly, int8 products.

Plain dynamic quantization (one activation scale per tensor) hurts small language models: a few
tokens (the first, above all) and a few channels (the input of the MLP's down projection) carry
outliers that crush the int8 range of everything else. Two steps keep perplexity within about
one percent of fp32:

- one activation scale per token, so an outlier token costs only itself;
- *smoothing* (the SmoothQuant idea): per input channel, divide the activation by ``s`` and
  multiply the weight's column by ``s``, folding ``1/s`` exactly into the layer that produced the
  activation (a norm's weight, or the rows of the up projection). Scales come from one forward
  pass on a short built-in calibration text.

Weights are int8 per output channel; products run as int8 x int8 -> int32 (``torch._int_mm``).
The token embedding is stored as int8 rows too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["quantize_int8", "weight_bytes"]

_CALIBRATION = (
    "A user asked how to sort a list in Python, and the assistant answered: use sorted(items), or "
    "items.sort() to sort in place. Prices rose 3.5% in March while exports fell to $12 billion. "
    "The committee will meet on Tuesday, 14 May, to review the budget. Q: What is the capital of "
    "Italy? A: Rome. def add(a, b):\n    return a + b\n1, 2, 3, 5, 8, 13, 21, 34. Dear team, thank "
    "you for your patience; the release is delayed until the tests pass on every platform."
)
# decoder layouts whose norms multiply by their weight, so dividing it is exact
_SMOOTHABLE = frozenset({"llama", "mistral", "qwen2", "qwen3", "smollm3"})


def _make_modules() -> tuple[type[Any], type[Any]]:
    import torch
    from torch import nn

    class Int8Linear(nn.Module):
        """nn.Linear with per-channel int8 weights and per-token int8 activations."""

        qweight: torch.Tensor
        scale: torch.Tensor
        bias: torch.Tensor | None

        def __init__(self, linear: nn.Linear) -> None:
            super().__init__()
            w = linear.weight.detach().float()
            scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-8)
            self.register_buffer("qweight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scale", scale)
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, self.in_features).float()
            x_scale = (flat.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-8)
            xq = torch.round(flat / x_scale).to(torch.int8)
            y = torch._int_mm(xq, self.qweight.t()).float() * x_scale * self.scale
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    class Int8Embedding(nn.Module):
        """Embedding rows stored as int8 with one scale per row; looked-up rows are dequantized."""

        qweight: torch.Tensor
        scale: torch.Tensor

        def __init__(self, embedding: nn.Embedding) -> None:
            super().__init__()
            w = embedding.weight.detach().float()
            scale = (w.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-8)
            self.register_buffer("qweight", torch.round(w / scale).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scale", scale)
            self.num_embeddings, self.embedding_dim = w.shape
            self.padding_idx = embedding.padding_idx

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.qweight[ids].float() * self.scale[ids]

    return Int8Linear, Int8Embedding


_modules: tuple[type[Any], type[Any]] | None = None


def _classes() -> tuple[type[Any], type[Any]]:
    global _modules
    if _modules is None:
        _modules = _make_modules()
    return _modules


def _input_maxima(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Per-channel max |input| of every nn.Linear over the calibration text."""
    import torch

    stats: dict[str, Any] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, inputs: tuple[Any, ...], _output: Any) -> None:
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
            stats[name] = torch.maximum(stats[name], x) if name in stats else x
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    try:
        ids = tokenizer(_CALIBRATION, return_tensors="pt").input_ids
        with torch.inference_mode():
            model(ids.to(model.device))
    finally:
        for h in handles:
            h.remove()
    return stats


def _smooth(model: Any, tokenizer: Any, alpha: float) -> bool:
    """Migrate activation outliers into the weights; exact in fp32. False when the layout is unknown."""
    import torch

    if getattr(model.config, "model_type", None) not in _SMOOTHABLE or tokenizer is None:
        return False
    stats = _input_maxima(model, tokenizer)

    def scales(act: Any, weights: list[Any]) -> Any:
        w = torch.stack([x.detach().abs().amax(dim=0) for x in weights]).amax(dim=0)
        return ((act.clamp(min=1e-5) ** alpha) / (w.clamp(min=1e-5) ** (1 - alpha))).clamp(min=1e-5)

    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            attn, mlp, prefix = layer.self_attn, layer.mlp, f"model.layers.{i}."
            qkv = [attn.q_proj, attn.k_proj, attn.v_proj]
            s = scales(stats[prefix + "self_attn.q_proj"], [p.weight for p in qkv])
            layer.input_layernorm.weight.div_(s)
            for p in qkv:
                p.weight.mul_(s)
            s = scales(stats[prefix + "mlp.gate_proj"], [mlp.gate_proj.weight, mlp.up_proj.weight])
            layer.post_attention_layernorm.weight.div_(s)
            for p in (mlp.gate_proj, mlp.up_proj):
                p.weight.mul_(s)
            s = scales(stats[prefix + "mlp.down_proj"], [mlp.down_proj.weight])
            mlp.up_proj.weight.div_(s[:, None])
            if mlp.up_proj.bias is not None:
                mlp.up_proj.bias.div_(s)
            mlp.down_proj.weight.mul_(s)
    return True


def _replace(model: Any, name: str, module: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _int_mm_works(torch: Any) -> bool:
    try:
        torch._int_mm(torch.ones(2, 64, dtype=torch.int8), torch.ones(64, 8, dtype=torch.int8))
    except (RuntimeError, AttributeError):
        return False
    return True


def quantize_int8(model: Any, tokenizer: Any = None, *, smooth_alpha: float = 0.5,
                  skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Quantize ``model`` in place (every nn.Linear not named in ``skip``, and the embedding).

    Returns what was done: layers quantized and whether smoothing applied.
    """
    import torch

    from costmw.plugin_api import ConfigError

    if not _int_mm_works(torch):
        raise ConfigError("quantize='int8' needs int8 matrix products (torch._int_mm), which this torch lacks; "
                          "upgrade torch (>= 2.2) or use a GGUF model with LlamaCppTarget")
    int8_linear, int8_embedding = _classes()
    smoothed = _smooth(model, tokenizer, smooth_alpha) if smooth_alpha > 0 else False
    names = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear and n not in skip]
    for name in names:
        _replace(model, name, int8_linear(model.get_submodule(name)))
    embedding = model.get_input_embeddings()
    if isinstance(embedding, torch.nn.Embedding):
        model.set_input_embeddings(int8_embedding(embedding))
    model.config.tie_word_embeddings = False
    _own_storage(model)
    return {"layers": len(names), "smoothed": smoothed, "smooth_alpha": smooth_alpha if smoothed else 0.0}


def _own_storage(model: Any) -> None:
    """Copy the tensors left in fp32 (norms, biases) into memory of their own: a checkpoint loaded by
    memory-mapping keeps the whole mapped file alive while any small tensor still views it."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            for name, param in list(module._parameters.items()):
                if param is not None:
                    module._parameters[name] = torch.nn.Parameter(param.detach().clone(), requires_grad=False)
            for name, buffer in list(module._buffers.items()):
                if buffer is not None:
                    module._buffers[name] = buffer.clone()


def weight_bytes(model: Any) -> int:
    """Bytes held by the model's weights (parameters and buffers, each counted once)."""
    seen: set[int] = set()
    total = 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total
