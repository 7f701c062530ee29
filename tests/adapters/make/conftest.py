"""Fixtures for the model-making tools: a synthetic intent task and tiny random llama models."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INTENTS = {
    "billing": ["I was charged twice", "refund my last payment", "my invoice is wrong", "card billed by mistake",
                "why did the price go up", "cancel the extra charge"],
    "password": ["reset my password", "I cannot log in", "forgot my login", "locked out of my account",
                 "two factor code never arrives", "change my password"],
    "shipping": ["where is my parcel", "order not delivered yet", "the package is late", "tracking number missing",
                 "wrong delivery address", "box arrived damaged"],
}
OPENERS = ["hi,", "hello", "please help:", "urgent:", "hey team", "question:", "good morning,"]


def intent_rows(seed: int = 0) -> list[dict[str, Any]]:
    """Support tickets labelled with their intent: short prompts, one-word answers."""
    rows = [{"prompt": f"{opener} {text}", "response": label}
            for label, texts in INTENTS.items() for text in texts for opener in OPENERS]
    random.Random(seed).shuffle(rows)
    return rows


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread; several threads thrash on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return intent_rows()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer llama (hidden 48) with a BPE tokenizer trained on the ticket texts."""
    from costmw.adapters.make import tiny_llama

    texts = [f"{r['prompt']} {r['response']}" for r in intent_rows()]
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "base", texts, layers=4)


@pytest.fixture(scope="session")
def tuned_tiny(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> Path:
    """The tiny model fully fine-tuned until it labels the tickets (a teacher and a model to compress)."""
    from costmw.adapters.make import tune_full

    out = tmp_path_factory.mktemp("tuned") / "tuned"
    result = tune_full(tiny_base, intent_rows(), out, layers="all", train_embeddings=True, steps=120, lr=5e-3,
                       progress=False, validation=0.2, eval_answers=8)
    assert result.metrics["agreement_exact"] >= 0.75  # a teacher worth distilling
    return out
