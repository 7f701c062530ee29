"""GGUF export of llama-like models with the ``gguf`` package, for llama.cpp (llama-cpp-python).

Tensors are renamed to llama.cpp's scheme and the query/key rows are reordered from the
half-split rotary layout transformers uses to the interleaved pairs llama.cpp's llama
architecture expects. Weights are written as F32, F16 or Q8_0 (a tensor whose width is not a
multiple of 32 falls back to F16). The tokenizer goes in as a byte-level BPE vocabulary; when the
model came from a GGUF file (see ``costmw-converted.json``) its tokenizer fields are copied verbatim.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, missing_extra

__all__ = ["GGUF_TYPES", "export_gguf"]

GGUF_TYPES = ("q8_0", "f16", "f32")
_ARCHS = ("llama", "mistral")
_LAYER = {
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight"}


def _interleave_rotary(w: Any, heads: int) -> Any:
    """Reorder the rows of each head from [first halves | second halves] to interleaved pairs."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _gguf_name(key: str) -> str | None:
    if key in _TOP:
        return _TOP[key]
    if key.startswith("model.layers."):
        index, tail = key[len("model.layers."):].split(".", 1)
        if tail in _LAYER:
            return f"blk.{index}.{_LAYER[tail]}"
    return None


def _pre_tokenizer(tok_json: dict[str, Any]) -> str:
    """llama.cpp's name for the pre-tokenizer: digits split one by one ("smollm") or plain GPT-2."""
    text = json.dumps(tok_json.get("pre_tokenizer") or {})
    if '"Digits"' in text and '"individual_digits": true' in text:
        return "smollm"
    return "gpt-2" if '"ByteLevel"' in text else "default"


def _add_tokenizer(writer: Any, tokenizer: Any, model_dir: Path) -> None:
    import gguf

    source = _source_gguf(model_dir)
    if source is not None:
        reader = gguf.GGUFReader(str(source))
        for name, field in reader.fields.items():
            if name.startswith("tokenizer."):
                value = field.contents()
                vtype = field.types[0]
                sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
                writer.add_key_value(name, value, vtype, sub_type=sub)
        return
    tok_json = json.loads(tokenizer.backend_tokenizer.to_str())
    model = tok_json.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError("GGUF export supports byte-level BPE tokenizers only")
    vocab = tokenizer.get_vocab()
    tokens = [""] * len(vocab)
    for text, idx in vocab.items():
        tokens[idx] = text
    special = set(tokenizer.all_special_ids) | {t["id"] for t in tok_json.get("added_tokens", []) if t.get("special")}
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tok_json))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, value in ((writer.add_bos_token_id, tokenizer.bos_token_id), (writer.add_eos_token_id,
                          tokenizer.eos_token_id), (writer.add_pad_token_id, tokenizer.pad_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id)):
        if value is not None:
            setter(int(value))
    writer.add_add_bos_token(False)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def _source_gguf(model_dir: Path) -> Path | None:
    marker = model_dir / "costmw-converted.json"
    if marker.exists():
        src = Path(json.loads(marker.read_text()).get("source", ""))
        if src.is_file():
            return src
    return None


def export_gguf(model: Any, tokenizer: Any, out_file: str | Path, *, qtype: str = "q8_0",
                model_dir: str | Path | None = None, name: str = "costmw") -> Path:
    """Write ``model`` (a llama-like transformers model) and its tokenizer to a GGUF file, atomically."""
    try:
        import gguf
        import numpy as np
    except ImportError as exc:
        raise missing_extra("gguf", "local", exc) from exc
    cfg = model.config
    if cfg.model_type not in _ARCHS:
        raise ConfigError(f"GGUF export supports llama-like models {_ARCHS}, not {cfg.model_type!r}; convert others "
                          "with llama.cpp's convert_hf_to_gguf.py (not bundled with costmw)")
    if qtype not in GGUF_TYPES:
        raise ConfigError(f"GGUF type must be one of {GGUF_TYPES}, got {qtype!r}")
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-")
    os.close(fd)
    writer = gguf.GGUFWriter(tmp, arch="llama")
    try:
        writer.add_name(name)
        writer.add_context_length(int(cfg.max_position_embeddings))
        writer.add_embedding_length(int(cfg.hidden_size))
        writer.add_block_count(int(cfg.num_hidden_layers))
        writer.add_feed_forward_length(int(cfg.intermediate_size))
        writer.add_head_count(int(heads))
        writer.add_head_count_kv(int(kv))
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
        writer.add_rope_dimension_count(int(head_dim))
        rope = getattr(cfg, "rope_parameters", None) or {}
        writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
        writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
        writer.add_vocab_size(int(cfg.vocab_size))
        file_type = {"q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "f16": gguf.LlamaFileType.MOSTLY_F16,
                     "f32": gguf.LlamaFileType.ALL_F32}[qtype]
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        _add_tokenizer(writer, tokenizer, Path(model_dir) if model_dir else Path("."))
        tied = getattr(cfg, "tie_word_embeddings", False)
        for key, tensor in model.state_dict().items():
            target = _gguf_name(key)
            if target is None or (tied and key == "lm_head.weight"):
                continue
            data = tensor.detach().float().numpy()
            if key.endswith("q_proj.weight"):
                data = _interleave_rotary(data, heads)
            elif key.endswith("k_proj.weight"):
                data = _interleave_rotary(data, kv)
            _add(writer, gguf, np, target, data, qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _add(writer: Any, gguf: Any, np: Any, name: str, data: Any, qtype: str) -> None:
    if data.ndim == 1 or qtype == "f32":
        writer.add_tensor(name, data.astype(np.float32))
    elif qtype == "q8_0" and data.shape[-1] % 32 == 0:
        q = gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        writer.add_tensor(name, data.astype(np.float16))
