"""Targets (what a chain's last link calls) and the tools that make cheaper local models.

Heavy targets (transformers, llama.cpp) are imported only when first used.
"""

from __future__ import annotations

from costmw.plugin_api import Capabilities, Price, Target
from costmw.plugin_api import lazy_exports as _lazy_exports

from ._callable import CallableTarget, MockTarget
from ._guard import forbid_paid_calls
from ._litellm import LiteLLMTarget
from ._openai_http import OpenAICompatibleTarget

# every public name, the lazy ones (loaded on first use, from the modules in _LAZY) included
__all__ = [
    "CallableTarget",
    "Capabilities",
    "ClassifierTarget",
    "HFTarget",
    "LiteLLMTarget",
    "LlamaCppTarget",
    "MockTarget",
    "OpenAICompatibleTarget",
    "Price",
    "Target",
    "clean_dataset",
    "distill",
    "distill_from_ledger",
    "forbid_paid_calls",
    "load",
    "prune",
    "quantize",
    "tune_full",
    "tune_lora",
    "write_manifest",
]

# name -> module (relative to this package) for targets and tools with heavy dependencies
_LAZY: dict[str, str] = {
    # local models (adapters/local/)
    "HFTarget": ".local",
    "LlamaCppTarget": ".local",
    "ClassifierTarget": ".local",
    "load": ".local",
    "write_manifest": ".local",
    # tools that make cheaper models (adapters/make/)
    "clean_dataset": ".make",
    "tune_lora": ".make",
    "tune_full": ".make",
    "distill": ".make",
    "distill_from_ledger": ".make",
    "prune": ".make",
    "quantize": ".make",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals(), __all__)

