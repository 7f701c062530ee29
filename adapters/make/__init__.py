"""Tools that make cheaper local models from a team's own traffic.

Each technique is a function that writes a model folder with a ``costmw-target.json`` manifest,
which :func:`costmw.adapters.load` turns into a target:

- :func:`clean_dataset`: a training set from a ledger or JSONL (cleaning, PII scrub, dedup, split)
- :func:`tune_lora` / :func:`tune_full`: supervised fine-tuning (LoRA, or selected layers in full)
- :func:`distill` / :func:`distill_from_ledger`: a smaller student that answers like a teacher
- :func:`prune`: magnitude or structured pruning, with optional recovery fine-tuning
- :func:`quantize`: dynamic int8, GGUF export, bitsandbytes configs

Importing this package loads no heavy library; torch, transformers and peft load when a tool runs.
"""

from __future__ import annotations

from ._data import CleanReport, Dataset, clean_dataset, scrub_pii
from ._distill import distill, every_other_layer, init_student
from ._evaluate import agreement
from ._examples import Example, examples_from_ledger, load_examples
from ._flywheel import distill_from_ledger
from ._full import tune_full
from ._lora import LORA_TARGETS, tune_lora
from ._prune import prune
from ._quantize import BNB_CONFIGS, quantize
from ._result import MakeResult
from ._tiny import tiny_llama
from ._trainer import TrainConfig, TrainResult

__all__ = [
    "BNB_CONFIGS",
    "LORA_TARGETS",
    "CleanReport",
    "Dataset",
    "Example",
    "MakeResult",
    "TrainConfig",
    "TrainResult",
    "agreement",
    "clean_dataset",
    "distill",
    "distill_from_ledger",
    "every_other_layer",
    "examples_from_ledger",
    "init_student",
    "load_examples",
    "prune",
    "quantize",
    "scrub_pii",
    "tiny_llama",
    "tune_full",
    "tune_lora",
]
