"""Where costmw keeps files of its own: converted models, ONNX exports, caches."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """Where converted models are kept: ``$COSTMW_CACHE_DIR`` or ``~/.cache/costmw``."""
    return Path(os.environ.get("COSTMW_CACHE_DIR") or Path.home() / ".cache" / "costmw")
