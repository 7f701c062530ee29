"""The ``costmw-target.json`` manifest: how a model directory becomes a target.

Every tool that makes a model writes one; :func:`costmw.adapters.load` reads it. Paths in it are
relative to the manifest's directory (absolute paths and hub names are kept as they are).

Fields: ``format`` (1), ``kind`` ("hf", "llamacpp" or "classifier"), ``name``, ``base`` (model
directory or name), ``adapter`` (LoRA adapter directory, optional), ``quantize`` (None, "int8",
"bnb-8bit", "bnb-4bit"), ``gguf_file`` (optional), ``labels`` (classifier), ``price``
({"input": usd_per_1m, "output": usd_per_1m}) or ``hourly_usd``, ``metrics`` (what the tool
measured), ``created_by``, ``created_at``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

__all__ = ["MANIFEST", "read_manifest", "write_manifest"]

MANIFEST = "costmw-target.json"
KINDS = ("hf", "llamacpp", "classifier")
_KNOWN = {"format", "kind", "name", "base", "adapter", "quantize", "gguf_file", "labels", "price",
          "hourly_usd", "metrics", "created_by", "created_at", "options"}


def write_manifest(directory: str | Path, *, kind: str, base: str | Path, name: str | None = None,
                   **fields: Any) -> Path:
    """Write ``costmw-target.json`` into ``directory`` atomically and return its path."""
    if kind not in KINDS:
        raise ConfigError(f"manifest kind must be one of {KINDS}, got {kind!r}")
    unknown = set(fields) - _KNOWN
    if unknown:
        raise ConfigError(f"unknown manifest fields: {sorted(unknown)}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def rel(value: Any) -> Any:
        if value is None:
            return None
        p = Path(value)
        if p.is_absolute() and p.exists():
            try:
                return os.path.relpath(p, d)
            except ValueError:
                return str(p)
        return str(value)

    data: dict[str, Any] = {"format": 1, "kind": kind, "name": name or d.name, "base": rel(base)}
    for key in ("adapter", "gguf_file"):
        if fields.get(key) is not None:
            fields[key] = rel(fields[key])
    data.update(fields)
    data.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".manifest-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
    path = d / MANIFEST
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a manifest (a directory holding one, or the file); paths made absolute."""
    p = Path(path)
    file = p / MANIFEST if p.is_dir() else p
    if not file.exists():
        raise ConfigError(f"{str(p)!r} has no {MANIFEST}; make one with costmw's tools or write_manifest()")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{str(file)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise ConfigError(f"{str(file)!r}: 'kind' must be one of {KINDS}")
    if not data.get("base"):
        raise ConfigError(f"{str(file)!r}: 'base' (the model) is missing")
    root = file.parent
    for key in ("base", "adapter", "gguf_file"):
        value = data.get(key)
        if value and not Path(value).is_absolute() and (root / value).exists():
            data[key] = str((root / value).resolve())
    data["_dir"] = str(root.resolve())
    return data
