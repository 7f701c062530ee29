"""Where costmw keeps files of its own: the semantic cache's answers, converted models, ONNX exports.

All of it lives under one folder, the platform's user cache directory (``~/.cache/costmw`` or
``$XDG_CACHE_HOME/costmw`` on Linux, ``~/Library/Caches/costmw`` on macOS,
``%LOCALAPPDATA%\\costmw\\Cache`` on Windows), or ``$COSTMW_CACHE_DIR`` when set. Not the working
directory: a cache there follows whichever folder a process starts in, and a rerun elsewhere
silently starts cold (or, worse, a rerun in the same folder serves answers nobody remembers
storing). ``costmw cache info`` shows the folder and what it holds; ``costmw cache clear`` empties it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

__all__ = ["announce_path", "cache_root", "semantic_cache_path"]

log = logging.getLogger("costmw")
_announced: set[str] = set()
_lock = threading.Lock()


def cache_root() -> Path:
    """costmw's cache folder: ``$COSTMW_CACHE_DIR``, else the platform's user cache directory."""
    configured = os.environ.get("COSTMW_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("costmw", appauthor=False))


def semantic_cache_path() -> Path:
    """The SemanticCache's default SQLite file: ``$COSTMW_SEMANTIC_CACHE``, else
    ``semantic_cache.db`` in :func:`cache_root`."""
    configured = os.environ.get("COSTMW_SEMANTIC_CACHE")
    return Path(configured).expanduser() if configured else cache_root() / "semantic_cache.db"


def announce_path(what: str, path: Path) -> None:
    """Log (INFO, logger ``costmw``) where ``what`` is kept, once per process and path."""
    key = f"{what}\0{path}"
    with _lock:
        if key in _announced:
            return
        _announced.add(key)
    log.info("costmw: %s at %s (`costmw cache info` shows it, `costmw cache clear` empties it)", what, path)
