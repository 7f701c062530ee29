"""Quiet by default: costmw prints nothing, and the libraries it calls print nothing through it.

- :func:`third_party_quiet` wraps a call into transformers, sentence-transformers or peft: their
  progress bars ("Loading weights", "Converting and de-quantizing GGUF tensors", "Writing model
  shards") are off for its duration and switched back as they were afterwards, and their
  ``FutureWarning``/``DeprecationWarning`` chatter, which names their own internals, not the
  caller's code, is ignored inside it. Warnings and bars outside these calls are left alone.
- :class:`ProgressBar` is the one bar costmw shows for long work (model conversion, training): a
  rich bar on an interactive terminal, removed when done; nothing at all elsewhere (logs, CI,
  notebooks' captured output, tests).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["ProgressBar", "third_party_quiet"]

T = TypeVar("T")
_bars_lock = threading.RLock()  # the switches below are process-wide: one quiet section changes them at a time


@contextlib.contextmanager
def third_party_quiet(progress: ProgressBar | None = None) -> Iterator[None]:
    """Silence third-party progress bars and warnings inside the block. With ``progress``, the
    steps transformers would have shown in its own bars advance that one bar instead."""
    with _bars_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with _transformers_bars(progress):
            yield


@contextlib.contextmanager
def _transformers_bars(progress: ProgressBar | None) -> Iterator[None]:
    """transformers' bars off (or routed to ``progress``), and the GGUF converter's plain tqdm too."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    gguf_module: Any = None
    with contextlib.suppress(ImportError):  # its GGUF converter uses plain tqdm, which the switch misses
        gguf_module = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    original = getattr(gguf_module, "tqdm", None)
    if original is not None:
        setattr(gguf_module, "tqdm", _Steps(progress))  # noqa: B010
    try:
        yield
    finally:
        if original is not None:
            setattr(gguf_module, "tqdm", original)  # noqa: B010
        if was_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class _Steps:
    """A stand-in for ``tqdm(iterable, desc=...)`` that prints nothing (or advances a ProgressBar)."""

    def __init__(self, progress: ProgressBar | None) -> None:
        self.progress = progress

    def __call__(self, iterable: Iterable[T] | None = None, *args: Any, **kwargs: Any) -> Iterator[T]:
        items = list(iterable or [])
        if self.progress is not None:
            self.progress.reset(total=len(items), description=str(kwargs.get("desc") or self.progress.description))
        for item in items:
            yield item
            if self.progress is not None:
                self.progress.update(1)


class ProgressBar:
    """One progress bar for long work: rich, on an interactive terminal only, gone when done.

    Use as a context manager; ``update(n)`` advances it, ``note`` (e.g. the current loss) is shown
    after the description. Shown only when ``enabled`` and stderr is a terminal."""

    def __init__(self, description: str, total: int | None = None, *, enabled: bool = True,
                 completed: int = 0) -> None:
        self.description = description
        self._progress: Any = None
        self._task: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                      console=Console(stderr=True), transient=True)
            self._task = self._progress.add_task(description, total=total, completed=completed, note="")

    def start(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __enter__(self) -> ProgressBar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def update(self, n: int = 1, *, note: str | None = None) -> None:
        if self._progress is not None:
            fields = {} if note is None else {"note": note}
            self._progress.update(self._task, advance=n, **fields)

    def reset(self, *, total: int | None, description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.reset(self._task, total=total, description=description or self.description)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
