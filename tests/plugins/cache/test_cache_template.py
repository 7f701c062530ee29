"""The template check: prompts from one template that differ in their variable part never share a hit."""

from __future__ import annotations

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import SemanticCache
from costmw.plugins.cache._template import TemplateCheck, template_slots

from costmw import Chain
from costmw.embeddings import HashingEmbedder

POLICY = " ".join(f"Clause {w} of the loyalty terms applies to members." for w in "abcdefghij")


def test_slots_of_templated_prompts() -> None:
    a = "Classify the sentiment of this review as positive or negative. Review: I love it, great boots."
    b = "Classify the sentiment of this review as positive or negative. Review: The zipper broke."
    assert template_slots(a, b) == ("I love it, great boots.", "The zipper broke.")
    assert template_slots("How long does express shipping take?", "How long does standard shipping take?") == (
        "express", "standard")
    assert template_slots("What is the capital of France?", "Which city is the capital of France?") is None
    assert template_slots("same words", "same words") is None


@pytest.mark.parametrize(
    ("query", "cached", "ok"),
    [
        ("How do I cancel an order?", "How do I cancel my order?", True),
        ("How long does express shipping take?", "How long does standard shipping take?", False),
        (f"{POLICY} Question: when do points expire?", f"{POLICY} Question: how many points for Gold?", False),
    ],
)
def test_template_check_with_an_embedder(query: str, cached: str, ok: bool) -> None:
    check = TemplateCheck(HashingEmbedder().embed, threshold=0.8)
    assert check(query, cached) is ok


def test_cache_refuses_a_hit_for_another_slot_value() -> None:
    target = MockTarget(lambda r: r.last_user_text[-12:])
    cache = SemanticCache(store="memory", embedder=HashingEmbedder(), threshold=0.5)
    chain = Chain(plugins=[cache], targets=[target])
    first = f"{POLICY} Question: when do points expire?"
    second = f"{POLICY} Question: how many points for Gold?"
    chain.complete([{"role": "user", "content": first}], model="mock")
    r = chain.complete([{"role": "user", "content": second}], model="mock")
    assert r.served_by == "target:mock" and r.text == second[-12:]
    assert r.info["cache"]["hit"] is False


def test_a_sentence_reworded_in_the_middle_is_not_a_template() -> None:
    a = "The Hub is a platform to host Git-based models, datasets and demo apps for everyone."
    b = "The Hub serves as a repository for Git-based models, datasets and demo apps for everyone."
    assert template_slots(a, b) is None
    # the same shape with a label before the variable part, or a long shared text, is a template
    assert template_slots(f"Summarize: {a}", f"Summarize: {b}") is not None
    long_a = f"Read the notes below and answer in one word. {a} Notes end here, answer now please."
    long_b = f"Read the notes below and answer in one word. {b} Notes end here, answer now please."
    assert template_slots(long_a, long_b) is not None
