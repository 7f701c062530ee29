"""Model-based compression: requested rate within a tolerance, protected spans intact, question-aware."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from costmw.plugins.minifier import Compressor
from costmw.plugins.minifier._rules import preserves_atoms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmw._tokens import count_tokens

FUNCTION_WORDS = {"the", "a", "an", "of", "to", "and", "in", "is", "for", "on", "at", "by", "with", "that", "it"}


class WordScorer:
    """A stand-in scorer: function words carry little information, long words more."""

    name = "words"

    def __init__(self) -> None:
        self.calls = 0

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        self.calls += 1
        return [(m.start(), m.end(), 0.5 if m.group().lower() in FUNCTION_WORDS else 2.0 + len(m.group()) / 4)
                for m in re.finditer(r"\w+|[^\w\s]", text)]


_WORDS = ("the a of to and in is for on with that it report team meeting budget office project customer delivery "
          "weekly planning warehouse schedule approved quarterly review manager supplier invoice shipment policy "
          "training safety results market growth energy contract decision")
VOCAB = tuple(re.findall(r"\w+", _WORDS))


@st.composite
def documents(draw: st.DrawFn) -> str:
    sentences = []
    for _ in range(draw(st.integers(40, 60))):
        words = draw(st.lists(st.sampled_from(VOCAB), min_size=6, max_size=18))
        sentences.append(" ".join(words).capitalize() + ".")
    paragraphs = [" ".join(sentences[i:i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs)


HYPO = settings(max_examples=15, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@HYPO
@given(documents(), st.sampled_from([0.25, 0.33, 0.5, 0.7]), st.booleans())
def test_compression_hits_the_requested_rate(doc: str, rate: float, with_question: bool) -> None:
    question = "What did the quarterly review decide about the budget?" if with_question else ""
    result = Compressor(WordScorer()).compress(doc, question, rate=rate)
    achieved = count_tokens(result.text) / count_tokens(doc)
    assert result.tokens_after == count_tokens(result.text)
    assert rate - 0.08 <= achieved <= rate + 0.05, (rate, achieved)


@HYPO
@given(documents(), st.integers(100, 400))
def test_compression_hits_a_target_token_count(doc: str, target: int) -> None:
    result = Compressor(WordScorer()).compress(doc, "", target_tokens=target)
    if result.tokens_before > target:
        assert abs(result.tokens_after - target) <= max(12, 0.08 * target)


def test_protected_spans_are_kept_whole_or_not_at_all() -> None:
    doc = " ".join(
        f"Order ORD-{1000 + i} was shipped on day {i} from https://shop.example.com/o/{i} to the customer "
        f"who said \"please hurry\" and paid {i}.50 EUR with card `tok_{i}` at the main warehouse." for i in range(40))
    result = Compressor(WordScorer()).compress(doc, "When was order ORD-1017 shipped?", rate=0.4)
    assert result.tokens_after < result.tokens_before * 0.5
    assert preserves_atoms(doc, result.text, all_kept=False)
    assert "ORD-1017" in result.text


def test_question_terms_and_the_relevant_sentence_survive() -> None:
    filler = ("The warehouse team reviewed the weekly planning schedule with the office manager and the "
              "supplier, and everyone agreed that the delivery process worked well for most customers. ")
    fact = "The emergency generator in building seven is tested every Thursday by Ingrid Vos. "
    doc = filler * 12 + fact + filler * 12
    result = Compressor(WordScorer()).compress(doc, "Who tests the emergency generator?", rate=0.3)
    for word in ("emergency", "generator", "Thursday", "Ingrid", "Vos"):
        assert word in result.text
    assert result.dropped_sentences > 10


def test_negations_are_never_dropped_one_by_one() -> None:
    doc = " ".join(f"Staff in team {i} must not share passwords and never leave laptop {i} unlocked in the office."
                   for i in range(30))
    result = Compressor(WordScorer(), fine_keep=0.6).compress(doc, "", rate=0.5)
    sentences = [s for s in result.text.split(".") if s.strip()]
    assert len(sentences) >= 10
    assert result.text.count(" the ") < len(sentences)  # words were dropped inside the kept sentences
    assert all(" not " in f" {s} " and " never " in f" {s} " for s in sentences)


def test_code_json_and_tables_are_kept_verbatim() -> None:
    prose = "The planning team met the supplier and discussed the weekly delivery schedule in detail. " * 30
    code = "```python\ndef total(xs):\n    return sum(xs)  # the sum\n```"
    table = "| item | qty |\n|---|---|\n| bolts | 40 |"
    doc = f"{prose}\n\n{code}\n\n{prose}\n\n{table}\n\n{prose}"
    result = Compressor(WordScorer()).compress(doc, "", rate=0.5)
    assert code in result.text and table in result.text
    assert result.tokens_after < result.tokens_before


def test_text_already_within_the_target_comes_back_unchanged() -> None:
    scorer = WordScorer()
    text = "Ship the order today."
    result = Compressor(scorer).compress(text, "", target_tokens=50)
    assert result.text == text and result.tokens_after == result.tokens_before
    assert scorer.calls == 0


def test_bad_fine_keep_is_refused() -> None:
    with pytest.raises(ValueError, match="fine_keep"):
        Compressor(WordScorer(), fine_keep=0)


PASSAGE = ("The early shift at the Rotterdam cross-dock starts at 05:30 and ends at 14:00. "
           "Forklifts may not drive faster than 6 kilometres per hour inside the building. "
           "The incident hotline is answered around the clock by the security team.")


@pytest.mark.slow
def test_smollm2_scorers_rank_function_words_below_content_words(smollm2_dir: Path) -> None:
    """Both scorers read SmolLM2-135M (``smollm2_dir``: converted from its GGUF once per run)."""
    from costmw.plugins.minifier import LMScorer
    from costmw.plugins.minifier._scorer import PriorScorer

    for scorer in (PriorScorer(), LMScorer(dtype="float32")):
        spans = scorer.surprisal("When does the early shift start?", PASSAGE)
        words = {PASSAGE[a:e].strip(): n for a, e, n in spans}
        assert all(math.isfinite(n) for _, _, n in spans[1:])
        function = [words[w] for w in ("the", "at", "and") if w in words]
        content = [words[w] for w in ("Rotterdam", "Forklifts", "hotline", "security") if w in words]
        assert function and content
        assert sum(function) / len(function) < sum(content) / len(content), scorer.name


def test_the_best_match_for_the_question_is_kept_word_for_word() -> None:
    filler = ("The planning team met the supplier on a weekly basis and discussed the delivery schedule, the "
              "open invoices and the training plan for the new warehouse staff in some detail. ")
    fact = "Serious incidents are escalated to the site manager, Ingrid Vos, who decides what happens next. "
    doc = filler * 10 + fact + filler * 10
    for fine_keep in (0.9, 0.6):
        result = Compressor(WordScorer(), fine_keep=fine_keep).compress(doc, "Who is the site manager?", rate=0.3)
        assert fact.strip() in result.text
        # the other kept sentences still lose words
        from_filler = [x for x in result.text.split(". ") if "supplier" in x]
        assert from_filler and sum(x.strip(". ") == filler.strip(". ") for x in from_filler) < len(from_filler)


def test_a_sentence_stating_a_fact_beats_one_that_only_repeats_the_question_words() -> None:
    chatter = "The site manager position is important, and the site manager role changes each year. "
    fact = "Questions go to the site manager, Pieter Jansen, on extension 4471. "
    filler = "The delivery process worked well for most customers of the warehouse during the last season. "
    doc = filler * 14 + chatter + filler * 6 + fact + filler * 14
    result = Compressor(WordScorer()).compress(doc, "Who is the site manager?", rate=0.1)
    assert "Pieter Jansen" in result.text and "4471" in result.text
    assert Compressor(WordScorer(), fact_bonus=0).compress(doc, "Who is the site manager?", rate=0.1).text != \
        result.text


def test_bad_relevance_options_are_refused() -> None:
    with pytest.raises(ValueError, match="relevant_share"):
        Compressor(WordScorer(), relevant_share=0)
    with pytest.raises(ValueError, match="fact_bonus"):
        Compressor(WordScorer(), fact_bonus=-1)
