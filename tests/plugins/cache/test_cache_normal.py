"""How the cache reads a question: pleasantries out, spelling fixed, everything exact kept."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from costmw.plugins.cache import Normaliser

PAIRS = Path(__file__).parent / "data" / "typo_pairs.tsv"


@pytest.fixture(scope="module")
def read() -> Normaliser:
    pytest.importorskip("symspellpy")
    return Normaliser(spelling=True)


def test_typos_are_corrected_from_the_words_around_them(read: Normaliser) -> None:
    assert read("where can i fnd my invocie??") == "where can i find my invoice?"
    assert read("Is it safe to tak ibuprofen with alchohol?") == "Is it safe to take ibuprofen with alcohol?"


def test_contractions_get_their_apostrophe_and_short_chat_words_are_not_respelt(read: Normaliser) -> None:
    assert read("my landlord hasnt called back, im worried") == "my landlord hasn't called back, i'm worried"
    # one letter changed in a word this short is a guess among dozens ("the", "tax", ...): kept
    assert read("ok thx, wut about ur refund") == "ok thx, wut about ur refund"


def test_a_short_unknown_word_is_respelt_only_where_its_neighbours_support_the_correction(read: Normaliser) -> None:
    # "wher" / "where" and "ordr" / "order" are seen beside "is" and "my" in the bigram counts
    assert read("wher is my ordr") == "where is my order"
    # "pls" is one dropped letter from "plus", "chng" from "chang", "teh" from "tech": no bigram
    # backs those beside these neighbours, so the abbreviation or typo is kept as typed
    assert read("pls send the report") == "pls send the report"
    assert read("how do i chng my adress") == "how do i chng my address"
    assert read("teh quick brown fox") == "teh quick brown fox"


def test_a_four_letter_word_is_never_changed_letter_for_letter(read: Normaliser) -> None:
    # "meds" is one letter from "beds", and "my beds" is a common bigram: changing a letter of a
    # word this short changes what is asked, so only a dropped, swapped or doubled letter is undone
    assert read("can i take my meds with food") == "can i take my meds with food"
    assert read("i wnat my ordr") == "i want my order"
    assert read("arre you open") == "are you open"


@pytest.mark.parametrize("text", [
    "How do I install numpy on Ubuntu 22.04?",
    "Call my_func() with \"teh value\" at https://exmple.com/pth",
    "Why does `pritn(x)` fail in v3.11?",
    "Email jsmith42@exmaple.com about order #48213",
    "What does kubectl do with a CrashLoopBackOff?",
    "Open C:/Users/teh/fiel.txt",
])
def test_numbers_identifiers_code_urls_and_quotes_are_never_changed(read: Normaliser, text: str) -> None:
    kept = [w for w in text.split() if any(c.isdigit() or c in "_`\"'/@#.(" for c in w) or not w.islower()]
    out = read(text)
    for word in kept:
        assert word.strip("?.,") in out, (word, out)


def test_greetings_thanks_and_hedges_are_dropped(read: Normaliser) -> None:
    assert read("Good evening, what is the capital of France?") == "What is the capital of France?"
    assert read("Hi there! Could you tell me how to reset my password? Thanks so much!") == \
        "Tell me how to reset my password."
    assert read("What is 2+2?") == "What is 2+2?"


def test_reading_brings_typed_questions_closer_to_their_clean_form(read: Normaliser) -> None:
    rows = [line.split("\t") for line in PAIRS.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    closer = 0
    for clean, typed in rows:
        before = difflib.SequenceMatcher(None, clean.lower(), typed.lower()).ratio()
        after = difflib.SequenceMatcher(None, read(clean).lower(), read(typed).lower()).ratio()
        closer += after > before
    assert closer >= 0.8 * len(rows)


def test_the_version_names_what_made_the_reading() -> None:
    plain = Normaliser(spelling=False)
    assert plain.version.startswith("norm/plain/")
    assert plain("Hi, whta is teh time?") == "Whta is teh time?"
    if Normaliser().spelling:
        assert Normaliser().version.startswith("norm/spell/") and Normaliser().version != plain.version


def test_long_texts_are_left_as_they_are() -> None:
    text = "Hello! " + "word " * 2000
    assert Normaliser(spelling=False)(text) == text
