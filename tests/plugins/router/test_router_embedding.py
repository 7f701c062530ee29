"""The router's embedding: ONNX Runtime MiniLM close to sentence-transformers, shared with the cache."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Learned

from costmw import Chain, Plugin, Request, Response
from costmw.embeddings import HashingEmbedder, aembed_request

TEXTS = ["What is the capital of France?", "Prove that the square root of 2 is irrational.",
         "Janet has 3 apples and buys 5 more. How many apples does she have?", "hi",
         "Summarise the causes of the First World War in two sentences. " * 8]


def test_public_names_and_light_import() -> None:
    import costmw.plugins
    import costmw.plugins.router as router

    assert costmw.plugins.ModelRouter is router.ModelRouter
    for name in ("Rules", "Rule", "Learned", "CostAware", "Cascade", "Budget", "QualityModel", "Cheapest"):
        assert name in router.__all__
    code = ("import sys, costmw.plugins.router; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'sklearn', 'sentence_transformers', 'litellm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_router_reuses_the_embedding_a_cache_computed(make_chain: Callable[..., Chain], cheap: MockTarget,
                                                      strong: MockTarget) -> None:
    class Counting(HashingEmbedder):
        calls = 0

        def _embed(self, texts: list[str]) -> np.ndarray:
            Counting.calls += len(texts)
            return super()._embed(texts)

    cache_embedder, router_embedder = Counting(128), Counting(128)

    class CacheLike(Plugin):
        async def handle(self, request: Request, call_next: Callable[..., object]) -> Response:
            await aembed_request(request, cache_embedder)
            return await call_next(request)  # type: ignore[no-any-return,misc]

    router = ModelRouter([cheap, strong], strategy=Learned(embedder=router_embedder))
    router.fit([f"q{i} {'hard' if i % 2 else 'easy'}" for i in range(20)], [float(i % 2 == 0) for i in range(20)],
               embeddings=np.eye(20, 128, dtype=np.float32))
    Counting.calls = 0
    chain = make_chain(CacheLike(), router)
    chain.complete(ask("an easy one"), model="strong")
    assert Counting.calls == 1  # one embedding for the cache and the router together


@pytest.mark.slow
def test_onnx_embedder_matches_sentence_transformers(tmp_path: Path) -> None:
    from costmw.embeddings import LocalEmbedder, OnnxEmbedder

    onnx = OnnxEmbedder()
    assert onnx.name == LocalEmbedder().name == "all-MiniLM-L6-v2"  # one embedding space
    reference = LocalEmbedder().embed(TEXTS)
    for int8 in (True, False):
        vectors = OnnxEmbedder(int8=int8).embed(TEXTS)
        assert vectors.shape == (len(TEXTS), 384)
        cosine = np.sum(vectors * reference, axis=1)
        assert cosine.min() > (0.99 if int8 else 0.9999), cosine
    assert OnnxEmbedder(max_tokens=64).name == "all-MiniLM-L6-v2@64"
    assert onnx.onnx_path().name.startswith("model.int8") and onnx.onnx_path().exists()
