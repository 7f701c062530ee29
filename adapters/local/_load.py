"""``costmw.adapters.load(path)``: the target a model directory's manifest describes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError

from ._base import LocalTarget
from ._manifest import read_manifest

__all__ = ["load"]

log = logging.getLogger("costmw.adapters")


def load(path: str | Path, **overrides: Any) -> LocalTarget:
    """Build the target described by ``path/costmw-target.json`` (kind, base, adapter, quantization,
    price, metrics). Keyword ``overrides`` (``name``, ``price``, ``hourly_usd``, or any option of the
    target's class) replace what the manifest says. The model itself loads lazily, on first use.
    ``trust_remote_code`` is never taken from the manifest (a model directory cannot make costmw
    run its code); only the caller's own ``trust_remote_code=True`` turns it on.
    """
    from ._classifier import ClassifierTarget
    from ._hf import HFTarget
    from ._llamacpp import LlamaCppTarget

    m = read_manifest(path)
    options: dict[str, Any] = dict(m.get("options") or {})
    if options.pop("trust_remote_code", None):  # running a directory's own code is the caller's choice alone
        log.warning("costmw: %s asks for trust_remote_code; ignored (pass trust_remote_code=True to "
                    "costmw.adapters.load yourself if you trust that directory's code)", str(path))
    options["name"] = m.get("name")
    if m.get("price") is not None:
        options["price"] = m["price"]
    if m.get("hourly_usd") is not None:
        options["hourly_usd"] = m["hourly_usd"]
    if "price" in overrides or "hourly_usd" in overrides:
        options.pop("price", None)
        options.pop("hourly_usd", None)
    options.update(overrides)
    kind = m["kind"]
    target: LocalTarget
    try:
        if kind == "hf":
            if m.get("adapter"):
                options.setdefault("lora", m["adapter"])
            if m.get("quantize"):
                options.setdefault("quantize", m["quantize"])
            if m.get("gguf_file"):
                options.setdefault("gguf_file", m["gguf_file"])
            target = HFTarget(m["base"], **options)
        elif kind == "llamacpp":
            target = LlamaCppTarget(m.get("gguf_file") or m["base"], **options)
        else:
            if m.get("labels") is not None:
                options.setdefault("labels", m["labels"])
            target = ClassifierTarget(m["base"], **options)
    except TypeError as exc:
        raise ConfigError(f"{str(path)!r}: manifest option not accepted by the {kind!r} target: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{str(path)!r} ({kind} target): {exc}") from exc
    target.manifest = m
    target.metrics = dict(m.get("metrics") or {})
    return target
