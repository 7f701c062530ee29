"""Local models as targets: transformers causal LMs (LoRA, int8, bitsandbytes, GGUF, multi-device),
llama.cpp GGUF models, and sequence classifiers for label tasks.

Nothing heavy is imported until a target is used: models load lazily, once per process, and are
shared by every target over the same base.
"""

from __future__ import annotations

from ._base import CALIBRATION_RUNS, LocalTarget
from ._classifier import ClassifierTarget
from ._gguf import converted_model_dir, smollm2_gguf_path
from ._hf import HFTarget
from ._llamacpp import LlamaCppTarget
from ._load import load
from ._manifest import read_manifest, write_manifest
from ._registry import loaded_models, unload_all

__all__ = [
    "CALIBRATION_RUNS",
    "ClassifierTarget",
    "HFTarget",
    "LlamaCppTarget",
    "LocalTarget",
    "converted_model_dir",
    "load",
    "loaded_models",
    "read_manifest",
    "smollm2_gguf_path",
    "unload_all",
    "write_manifest",
]
