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
    """USD per one million input and output tokens, and for input the provider read from or wrote
    to its prompt cache (None: the provider charges those at the input price)."""

    input_per_1m: float
    output_per_1m: float
    cache_read_per_1m: float | None = None
    cache_write_per_1m: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
             cache_write_tokens: int = 0) -> float:
        """USD for one call. ``prompt_tokens`` counts every input token, the ``cached_tokens``
        read from the provider's prompt cache and the ``cache_write_tokens`` written to it included."""
        fresh = max(0, prompt_tokens - cached_tokens - cache_write_tokens)
        return (fresh * self.input_per_1m + cached_tokens * self.cache_read_input_per_1m
                + cache_write_tokens * self.cache_write_input_per_1m
                + completion_tokens * self.output_per_1m) / 1e6

    @property
    def cache_read_input_per_1m(self) -> float:
        return self.input_per_1m if self.cache_read_per_1m is None else self.cache_read_per_1m

    @property
    def cache_write_input_per_1m(self) -> float:
        return self.input_per_1m if self.cache_write_per_1m is None else self.cache_write_per_1m

    def cache_discount(self, cached_tokens: int, cache_write_tokens: int = 0) -> float:
        """USD the provider's prompt cache took off the full input price: the discount on the
        tokens read, less the surcharge on the tokens written (negative when writes outweigh reads)."""
        read = cached_tokens * (self.input_per_1m - self.cache_read_input_per_1m)
        write = cache_write_tokens * (self.cache_write_input_per_1m - self.input_per_1m)
        return (read - write) / 1e6

    @classmethod
    def coerce(cls, value: Any) -> Price | None:
        """Accept a Price, a (input, output) pair or a mapping with input/output keys."""
        if value is None or isinstance(value, Price):
            return value
        if isinstance(value, (tuple, list)) and len(value) in (2, 3, 4):
            return cls(*(None if v is None else float(v) for v in value))  # type: ignore[arg-type]
        if isinstance(value, dict):
            read = value.get("cache_read", value.get("cache_read_per_1m"))
            write = value.get("cache_write", value.get("cache_write_per_1m"))
            return cls(float(value.get("input", value.get("input_per_1m")) or 0.0),
                       float(value.get("output", value.get("output_per_1m")) or 0.0),
                       None if read is None else float(read), None if write is None else float(write))
        raise ValueError("price must be (input_usd_per_1m, output_usd_per_1m[, cache_read, cache_write]) "
                         f"or a dict, got {value!r}")


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
    read, write = info.get("cache_read_input_token_cost"), info.get("cache_creation_input_token_cost")
    return Price(float(info.get("input_cost_per_token") or 0.0) * 1e6,
                 float(info.get("output_cost_per_token") or 0.0) * 1e6,
                 None if read is None else float(read) * 1e6,
                 None if write is None else float(write) * 1e6)
