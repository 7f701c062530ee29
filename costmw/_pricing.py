"""Prices in USD per 1M tokens, read from LiteLLM's bundled price map without importing LiteLLM."""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Price", "lookup_price", "model_info"]

_MAP_FILE = "model_prices_and_context_window_backup.json"
_lock = threading.Lock()
_price_map: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million input and output tokens."""

    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6

    @classmethod
    def coerce(cls, value: Any) -> Price | None:
        """Accept a Price, a (input, output) pair or a mapping with input/output keys."""
        if value is None or isinstance(value, Price):
            return value
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(float(value[0]), float(value[1]))
        if isinstance(value, dict):
            return cls(float(value.get("input", value.get("input_per_1m")) or 0.0),
                       float(value.get("output", value.get("output_per_1m")) or 0.0))
        raise ValueError(f"price must be (input_usd_per_1m, output_usd_per_1m) or a dict, got {value!r}")


def _load_map() -> dict[str, Any]:
    global _price_map
    if _price_map is not None:
        return _price_map
    with _lock:
        if _price_map is None:
            data: dict[str, Any] = {}
            spec = importlib.util.find_spec("litellm")
            for loc in (spec.submodule_search_locations or []) if spec else []:
                path = Path(loc) / _MAP_FILE
                if path.exists():
                    data = json.loads(path.read_text(encoding="utf-8"))
                    break
            _price_map = data
    return _price_map


def model_info(model: str) -> dict[str, Any] | None:
    """LiteLLM's entry for ``model`` (also tried without a ``provider/`` prefix)."""
    table = _load_map()
    entry = table.get(model)
    if entry is None and "/" in model:
        entry = table.get(model.split("/", 1)[1])
    return entry if isinstance(entry, dict) else None


def lookup_price(model: str) -> Price | None:
    """The price of ``model`` from LiteLLM's price map, or None when it is unknown."""
    info = model_info(model)
    if not info or "input_cost_per_token" not in info:
        return None
    return Price(float(info.get("input_cost_per_token") or 0.0) * 1e6,
                 float(info.get("output_cost_per_token") or 0.0) * 1e6)
