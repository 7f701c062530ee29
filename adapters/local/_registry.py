"""Loaded models shared by every target in the process that uses the same base.

A model is loaded once per key (path, quantization, placement, dtype, ...); two targets over the
same base share its weights, its tokenizer and one lock that serialises generation on it, since a
model (and a peft model's active adapter) is not safe to drive from two threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SharedModel", "loaded_models", "shared_model", "unload_all"]


@dataclass(eq=False)
class SharedModel:
    """One loaded model and what the targets that share it need."""

    key: Hashable
    model: Any
    tokenizer: Any = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    # LoRA adapters attached to this model: resolved adapter directory -> peft adapter name
    adapters: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


_models: dict[Hashable, SharedModel] = {}
_loading: dict[Hashable, threading.Lock] = {}
_guard = threading.Lock()


def shared_model(key: Hashable, load: Callable[[], SharedModel]) -> SharedModel:
    """The model loaded under ``key``, loading it with ``load()`` the first time (once, even when
    several threads ask together)."""
    entry = _models.get(key)
    if entry is not None:
        return entry
    with _guard:
        lock = _loading.setdefault(key, threading.Lock())
    with lock:
        entry = _models.get(key)
        if entry is None:
            entry = load()
            _models[key] = entry
    return entry


def loaded_models() -> list[SharedModel]:
    """Every model loaded in this process."""
    return list(_models.values())


def unload_all() -> None:
    """Forget every loaded model (targets load them again on next use); mainly for tests."""
    with _guard:
        _models.clear()
        _loading.clear()
