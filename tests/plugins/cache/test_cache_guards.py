"""The hard guards: they refuse what always changes an answer, and only that."""

from __future__ import annotations

import pytest
from costmw.plugins.cache._guards import guard


@pytest.mark.parametrize(("a", "b"), [
    ("World War I", "world war 1"),
    ("Is it safe to take ibuprofen, if you don't mind?", "Is it safe to take ibuprofen?"),
    ("What does max_tokens do?", "what does max tokens do"),
    ("How do I use print()?", "how do I use print in Python"),
    ("how long to boil 2 eggs", "how long to boil two eggs"),
    ("Good evening, what is 5 km in miles?", "what is 5 km in miles"),
    ("Why doesn't my code work?", "Why is my code broken?"),
    ("What is the capital of France?", "whats the captial of france"),
    # a number, identifier or unit said on one side only is a detail added, not a change
    ("My 2 kids and I visit Rome in June. What should we see?", "What should we see in Rome in June?"),
    ("Which version of Django am I running?", "how 2 check which django version im running"),
    ("How do I install Node.js on Ubuntu?", "how do i install node on ubuntu"),
    ("Can I fly with a cold?", "can i fly w/o a doctor's note b4 my trip if i have a cold"),
    ("I owe $3,000 in taxes. Can I pay in installments?", "Can I pay $3,000 of tax in installments?"),
    ("Is the 3rd season of the show worth watching?", "is season three of the show worth watching"),
])
def test_wording_typos_and_politeness_are_left_to_the_model(a: str, b: str) -> None:
    assert guard(a, b) is None and guard(b, a) is None


@pytest.mark.parametrize(("a", "b", "reason"), [
    ("What is 15% of 80?", "What is 15% of 90?", "number"),
    ("top 10 movies of 2023", "top 5 movies of 2023", "number"),
    ("how far is 10 km", "how far is 10 miles", "unit"),
    ("What does max_tokens do?", "What does temperature do?", "identifier"),
    ("status of order #1234", "status of order #1235", "identifier"),
    ("explain `git rebase`", "explain `git merge`", "identifier"),
    ('what does "carpe diem" mean', 'what does "memento mori" mean', "quoted"),
    ("why is my code not working", "why is my code working", "negation"),
    ("convert a fraction to a decimal", "convert a decimal to a fraction", "direction"),
    ("How do I upgrade from gpt-3 prompts?", "How do I upgrade from gpt-4 prompts?", "identifier"),
    ("Does the sales team report to marketing?", "Does marketing report to the sales team?", "order"),
    ("Should a landlord pay the tenant's lawyer?", "Should a tenant pay the landlord's lawyer?", "order"),
])
def test_a_changed_number_unit_identifier_quote_negation_or_direction_is_refused(a: str, b: str, reason: str) -> None:
    for x, y in ((a, b), (b, a)):
        verdict = guard(x, y)
        assert verdict is not None and not verdict.ok and verdict.reason == f"guard:{reason}"
        assert verdict.probability == 0.0
