"""The training loop every tool shares: AdamW, warmup then linear decay, progress bar, evaluation, and
atomic resumable checkpoints.

Checkpoints hold only what training changes (the trainable weights and the optimizer's moments) as
safetensors plus a JSON state, never pickle. Each is written to a temporary folder and renamed into
place, so an interrupted run always leaves its last complete checkpoint; ``resume=True`` continues
from it with the same data order, so a resumed run ends where an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, ProgressBar

from ._evaluate import answer_loss
from ._models import atomic_dir
from ._tokenize import Encoded, collate, micro_batches

__all__ = ["TrainConfig", "TrainResult", "train"]

log = logging.getLogger("costmw.make")
LossFn = Callable[[Any, dict[str, Any]], Any]


@dataclass
class TrainConfig:
    """How to train: ``steps`` optimizer steps (or ``epochs`` when steps is None), batch size,
    learning rate, and checkpointing every ``save_every`` steps under ``<out>/checkpoints``."""

    steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup: float = 0.05
    max_length: int = 256
    seed: int = 0
    save_every: int = 50
    keep_checkpoints: int = 2
    eval_every: int | None = None
    progress: bool = True
    resume: bool = False

    def check(self) -> None:
        for name in ("batch_size", "grad_accum", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be at least 1, got {self.steps}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


@dataclass
class TrainResult:
    """What a run did: steps, losses per step, validation loss before and after, time, and memory
    (``peak_rss_mb`` of the process; ``train_memory_mb`` above what it held when training began:
    gradients, optimizer moments, activations)."""

    steps: int = 0
    seconds: float = 0.0
    seconds_per_step: float = 0.0
    losses: list[float] = field(default_factory=list)
    val_loss_before: float | None = None
    val_loss_after: float | None = None
    peak_rss_mb: float = 0.0
    train_memory_mb: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    resumed_from: int | None = None

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail) if tail else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("losses")
        out.update(first_loss=self.first_loss, last_loss=self.last_loss,
                   trainable_pct=100.0 * self.trainable_params / max(self.total_params, 1))
        return out


class PeakRSS:
    """Samples the process's resident memory in a thread and keeps the peak (MiB)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.start = 0.0
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                import os

                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start = self.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss_mb())


def _trainable(model: Any) -> dict[str, Any]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any], keep: int) -> Path:
    from safetensors.torch import save_file

    ckdir = run_dir / "checkpoints"
    final = ckdir / f"step-{step:07d}"
    with atomic_dir(final) as tmp:
        weights = {n: p.detach().contiguous() for n, p in _trainable(model).items()}
        save_file(weights, str(tmp / "trainable.safetensors"))
        opt = optimizer.state_dict()
        tensors = {f"{i}.{k}": v.contiguous() for i, s in opt["state"].items() for k, v in s.items()}
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "trainer-state.json").write_text(json.dumps({**state, "step": step,
                                                            "param_groups": opt["param_groups"]}, indent=2))
    for old in sorted(p for p in ckdir.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    done = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / "trainer-state.json").exists())
    return done[-1] if done else None


def _load_checkpoint(path: Path, model: Any, optimizer: Any, fingerprint: dict[str, Any]) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    state = json.loads((path / "trainer-state.json").read_text())
    theirs = state.get("fingerprint", {})
    for key, value in fingerprint.items():
        if theirs.get(key) != value:
            raise ConfigError(f"checkpoint {str(path)!r} was made with {key}={theirs.get(key)!r}, this run has "
                              f"{value!r}; pass the same settings or start afresh without --resume")
    weights = load_file(str(path / "trainable.safetensors"))
    params = _trainable(model)
    if set(weights) != set(params):
        raise ConfigError(f"checkpoint {str(path)!r} trains other weights than this run; start afresh without --resume")
    for name, p in params.items():
        p.data.copy_(weights[name])
    flat = load_file(str(path / "optimizer.safetensors"))
    opt_state: dict[int, dict[str, Any]] = {}
    for key, tensor in flat.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = tensor
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    return int(state["step"]), [float(x) for x in state.get("losses", [])]


def _lr_factor(step: int, total: int, warmup: float) -> float:
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    return max(0.0, (total - step) / max(1, total - w))


def train(model: Any, train_set: Sequence[Encoded], val_set: Sequence[Encoded], cfg: TrainConfig, run_dir: Path,
          *, pad_id: int, fingerprint: dict[str, Any], loss_fn: LossFn | None = None,
          desc: str = "training") -> TrainResult:
    """Train the parameters of ``model`` that require grad; checkpoints go to ``run_dir/checkpoints``."""
    import torch

    cfg.check()
    torch.manual_seed(cfg.seed)
    params = list(_trainable(model).values())
    if not params:
        raise ConfigError("nothing to train: no parameter of the model requires grad")
    per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.steps or max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = TrainResult(trainable_params=sum(p.numel() for p in params),
                         total_params=sum(p.numel() for p in model.parameters()))
    start = 0
    if cfg.resume:
        ck = latest_checkpoint(run_dir)
        if ck is None:
            log.warning("costmw: --resume found no checkpoint under %s; starting afresh", run_dir)
        else:
            start, result.losses = _load_checkpoint(ck, model, optimizer, fingerprint)
            result.resumed_from = start
    result.val_loss_before = answer_loss(model, val_set, pad_id, cfg.batch_size)
    state = {"fingerprint": fingerprint, "config": asdict(cfg)}
    compute = loss_fn or (lambda m, batch: m(**batch).loss)
    order: dict[int, list[list[int]]] = {}
    step = start
    model.train()
    t0 = time.perf_counter()
    bar = ProgressBar(desc, total, completed=start, enabled=cfg.progress).start()
    try:
        with PeakRSS() as mem:
            for step in range(start, total):
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * _lr_factor(step, total, cfg.warmup)
                optimizer.zero_grad(set_to_none=True)
                loss_sum = 0.0
                for k in range(cfg.grad_accum):
                    micro = step * cfg.grad_accum + k
                    epoch, idx = divmod(micro, per_epoch)
                    batches = order.setdefault(epoch, micro_batches(len(train_set), cfg.batch_size, cfg.seed, epoch))
                    batch = collate([train_set[i] for i in batches[idx]], pad_id)
                    loss = compute(model, batch) / cfg.grad_accum
                    loss.backward()
                    loss_sum += float(loss.detach())
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                result.losses.append(loss_sum)
                bar.update(1, note=f"loss {loss_sum:.4f}")
                done = step + 1
                if cfg.eval_every and done % cfg.eval_every == 0 and val_set:
                    log.info("step %d: validation loss %.4f", done, answer_loss(model, val_set, pad_id, cfg.batch_size))
                if done % cfg.save_every == 0 or done == total:
                    _save_checkpoint(run_dir, done, model, optimizer, {**state, "losses": result.losses},
                                     cfg.keep_checkpoints)
    except KeyboardInterrupt:
        saved = latest_checkpoint(run_dir)
        raise KeyboardInterrupt(f"interrupted at step {len(result.losses)}; the last complete checkpoint is "
                                f"{saved or 'none'}; run again with --resume to continue") from None
    finally:
        bar.close()
    ran = total - start
    result.steps = total
    result.seconds = time.perf_counter() - t0
    result.seconds_per_step = result.seconds / max(ran, 1)
    result.peak_rss_mb = mem.peak
    result.train_memory_mb = mem.peak - mem.start
    model.eval()
    result.val_loss_after = answer_loss(model, val_set, pad_id, cfg.batch_size)
    return result
