"""The public names of costmw.adapters.make, and that importing it (and its CLI) stays light."""

from __future__ import annotations

import subprocess
import sys

import costmw.adapters
import costmw.adapters.make as make


def test_exported_names() -> None:
    assert sorted(make.__all__) == sorted([
        "BNB_CONFIGS", "LORA_TARGETS", "CleanReport", "Dataset", "Example", "MakeResult", "TrainConfig",
        "TrainResult", "agreement", "clean_dataset", "distill", "distill_from_ledger", "every_other_layer",
        "examples_from_ledger", "init_student", "load_examples", "prune", "quantize", "scrub_pii", "tiny_llama",
        "tune_full", "tune_lora",
    ])
    for name in make.__all__:
        assert hasattr(make, name), name
    for name in ("clean_dataset", "tune_lora", "tune_full", "distill", "prune", "quantize"):
        assert getattr(costmw.adapters, name) is getattr(make, name)


def test_import_loads_no_heavy_library() -> None:
    code = ("import sys, costmw.adapters.make, costmw.adapters.make.cli\n"
            "print(','.join(m for m in ('torch', 'transformers', 'peft', 'datasketch', 'gguf', 'scipy')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
