"""Training for the cache's learned verifier: data generators, int8 encoder export, the pair head and
calibration. Needs the ``onnx`` extra (torch, transformers, onnx, onnxruntime, tokenizers) and a
checkout of the repository (the hand-written pairs and ``../shared/data`` are read from there).

Run ``python -m costmw.plugins.cache._train --out DIR``.
"""

from __future__ import annotations

from ._data import DataSources, build_pairs, mock_data_split
from ._fit import TrainConfig, train_verifier
from ._generate import Pair

__all__ = ["DataSources", "Pair", "TrainConfig", "build_pairs", "mock_data_split", "train_verifier"]
