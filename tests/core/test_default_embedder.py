"""The default embedder: all-MiniLM-L6-v2 on ONNX Runtime when it loads, else sentence-transformers,
one embedding space either way."""

from __future__ import annotations

import numpy as np
import pytest

from costmw.embeddings import MiniLMEmbedder, OnnxEmbedder, default_embedder, resolve_embedder

pytestmark = pytest.mark.slow

TEXTS = ["How do I reset my password?", "What is the capital of France?", "ok", "Give me 3 tips for sleep."]


def test_minilm_is_the_onnx_runtime_when_installed() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    embedder = resolve_embedder("minilm")
    assert embedder is default_embedder() and isinstance(embedder, MiniLMEmbedder)
    vectors = embedder.embed(TEXTS)
    assert embedder.runtime == "onnx" and vectors.shape == (4, 384) and embedder.name == "all-MiniLM-L6-v2"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_without_onnx_it_falls_back_to_the_same_space(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    onnx = MiniLMEmbedder().embed(TEXTS)

    def broken(self: OnnxEmbedder) -> None:
        raise RuntimeError("no ONNX file and no exporter")

    monkeypatch.setattr(OnnxEmbedder, "_load", broken)
    fallback = MiniLMEmbedder()
    vectors = fallback.embed(TEXTS)
    assert fallback.runtime == "sentence-transformers"
    assert float(np.min(np.sum(vectors * onnx, axis=1))) > 0.99  # stored vectors stay findable
