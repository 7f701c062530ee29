"""Choosing among near neighbours: one threshold scale, 0 and 1 honoured, ambiguity refused."""

from __future__ import annotations

from costmw.plugins.cache import CacheVerdict, Entry, select


def entry(key: str, text: str, answer: str | None = None) -> Entry:
    return Entry(key=key, group="g", scope="s", text=text, response={"text": answer or f"re: {text}"})


def same_country(query: str, cached: str) -> CacheVerdict:
    """A test verifier: refuses when one text names Germany and the other does not."""
    if ("Germany" in query) != ("Germany" in cached):
        return CacheVerdict(False, 0.0, "country")
    return CacheVerdict(True, 1.0, "country")


def pick(found, query: str = "capital of France?", **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("threshold", 0.8)
    kw.setdefault("margin", 0.02)
    kw.setdefault("verify", None)
    return select(query, "exact-key", found, **kw)


def test_threshold_is_inclusive_and_one_means_identical() -> None:
    e = entry("a", "capital of France")
    assert pick([(e, 0.8)]).entry is e
    assert pick([(e, 0.79)]).entry is None
    assert pick([(e, 0.9999999)], threshold=1.0).entry is e
    assert pick([(e, 0.99)], threshold=1.0).entry is None


def test_threshold_zero_is_a_real_value_not_unset() -> None:
    e = entry("a", "anything at all")
    assert pick([(e, 0.0)], threshold=0.0).entry is e
    assert pick([(e, -0.3)], threshold=0.0).entry is e  # cosine below 0 is clipped to 0


def test_exact_key_among_results_is_an_exact_hit() -> None:
    e = entry("exact-key", "capital of France?")
    choice = pick([(entry("b", "x"), 0.99), (e, 0.5)])
    assert choice.entry is e and choice.tier == "exact"


def test_verifier_refusal_is_reported() -> None:
    choice = pick([(entry("a", "capital of Germany?"), 0.95)], verify=same_country)
    assert choice.entry is None and choice.reason == "verifier:country"


def test_close_rivals_with_different_answers_are_ambiguous() -> None:
    a, b = entry("a", "q1", "one"), entry("b", "q2", "two")
    assert pick([(a, 0.90), (b, 0.89)]).reason == "ambiguous"
    assert pick([(a, 0.90), (b, 0.85)]).entry is a
    same = entry("c", "q3", "one")
    assert pick([(a, 0.90), (same, 0.895)]).entry is a  # same answer: nothing to choose between
    assert pick([(a, 0.90), (b, 0.89)], margin=0.0).entry is a


def test_a_closer_question_judged_different_blocks_farther_ones() -> None:
    closer = entry("a", "What is the capital of Germany?")
    farther = entry("b", "capital of France")
    choice = pick([(closer, 0.97), (farther, 0.85)], verify=same_country)
    assert choice.entry is None
    assert pick([(closer, 0.88), (farther, 0.85)], verify=same_country).entry is farther


def test_a_refused_closer_question_with_the_same_answer_does_not_block() -> None:
    closer = entry("a", "What is the capital of Germany?", "same answer")
    farther = entry("b", "capital of France", "same answer")
    assert pick([(closer, 0.97), (farther, 0.85)], verify=same_country).entry is farther


def test_a_rival_just_under_the_threshold_still_makes_the_query_ambiguous() -> None:
    best, rival = entry("a", "capital of France"), entry("b", "France capital city")
    assert pick([(best, 0.81), (rival, 0.795)]).reason == "ambiguous"
    assert pick([(best, 0.81), (rival, 0.78)]).entry is best  # outside the margin
    same = entry("c", "France's capital", answer="re: capital of France")
    assert pick([(best, 0.81), (same, 0.795)]).entry is best  # the same answer never blocks
    refused = same_country
    germany = entry("d", "capital of Germany")
    assert pick([(best, 0.81), (germany, 0.795)], verify=refused).entry is best  # judged different


def test_questions_equal_but_for_case_are_told_apart_by_the_query_spelling() -> None:
    """An uncased embedder gives both the same vector; the query's spelling picks one."""
    cls = entry("a", "How do I load data with `AudioFolder`?", "the class")
    name = entry("b", "How do I load data with `audiofolder`?", "the builder name")
    found = [(cls, 0.97), (name, 0.97)]
    assert pick(found, query="How can I load data using `audiofolder`?").entry is name
    assert pick(found[::-1], query="How can I load data using `AudioFolder`?").entry is cls
    # neither spelling in the query, or both: still ambiguous
    assert pick(found, query="How can I load audio folders?").reason == "ambiguous"
    assert pick(found, query="`AudioFolder` or `audiofolder`: how do I load data?").reason == "ambiguous"
    # a rival that differs in more than case keeps the query ambiguous
    other = entry("c", "How do I load data with `ImageFolder`?", "another")
    assert pick([*found, (other, 0.965)], query="How can I load data using `audiofolder`?").reason == "ambiguous"
    # the twin the query spells like is never served below the threshold
    assert pick([(cls, 0.81), (name, 0.795)], query="load data using `audiofolder`").reason == "ambiguous"
