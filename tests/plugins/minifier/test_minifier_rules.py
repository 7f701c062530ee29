"""Safe rewrites: protected spans survive byte for byte, output never grows, rewriting is idempotent."""

from __future__ import annotations

import json

from costmw.plugins.minifier import RuleOptions, minify_text
from costmw.plugins.minifier._rules import _rewrite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmw._tokens import count_tokens

PROTECTED = [
    "```python\ndef  f(x):\n\n    return x  *  2   # keep  me\n```",
    "`inline   code`",
    '"a quoted   sentence, please keep it"',
    "“curly  quoted”",
    "42",
    "3.14159",
    "1,250.00",
    "-7",
    "https://example.com/a?b=1&c=two",
    "user@example.org",
    "snake_case_name",
    "camelCaseName",
    "v2.3.1",
    "/etc/app/config.yaml",
    "ORD-55812",
]
FILLER = [
    "Please ", "please ", "I would like you to ", "Could you please ", "can you ", "write ", "summarize ",
    "the ", "report", "text ", ". ", "? ", ", ", "In order to ", "Thank you! ", "Be concise. ", "very ",
    "basically ", "\n", "\n\n", "   ", "\t", "Make sure to ", "kindly ", "explain ", "it ", "Hello ",
]


def _protected_positions(parts: list[str]) -> list[str]:
    return [p for p in parts if p in PROTECTED]


@st.composite
def prompts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Prose made of filler words with protected spans set apart by spaces or newlines."""
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.booleans()):
            span = draw(st.sampled_from(PROTECTED))
            sep = "\n" if span.startswith("```") else " "
            parts.extend([sep, span, sep])
        else:
            parts.append(draw(st.sampled_from(FILLER)))
    return "".join(parts), _protected_positions(parts)


HYPO = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPO
@given(prompts(), st.booleans())
def test_protected_spans_survive_byte_for_byte(case: tuple[str, list[str]], hedges: bool) -> None:
    text, spans = case
    out = minify_text(text, RuleOptions(hedges=hedges))
    for span in spans:
        assert span in out, (span, text, out)


@HYPO
@given(prompts(), st.booleans())
def test_output_never_longer_and_idempotent(case: tuple[str, list[str]], hedges: bool) -> None:
    text, _ = case
    opts = RuleOptions(hedges=hedges)
    out = minify_text(text, opts)
    assert len(out) <= len(text)
    assert count_tokens(out) <= count_tokens(text)
    assert minify_text(out, opts) == out


@HYPO
@given(st.text(max_size=300))
def test_arbitrary_text_never_grows_and_is_idempotent(text: str) -> None:
    out = minify_text(text)
    assert len(out) <= len(text)
    assert minify_text(out) == out


def test_filler_openers_are_trimmed_and_the_instruction_kept() -> None:
    out = minify_text("I would like you to please write a product description for our latest smartphone model.")
    assert out == "Write a product description for our latest smartphone model."


def test_polite_question_becomes_the_instruction() -> None:
    assert minify_text("Could you please summarize this report?") == "Summarize this report."
    # only before an instruction verb: a real question stays a question
    assert minify_text("Could you be wrong about this?") == "Could you be wrong about this?"


def test_please_as_a_verb_is_kept() -> None:
    text = "Write a story that will please young children."
    assert minify_text(text) == text


def test_repeated_instructions_are_dropped_once_seen() -> None:
    text = "Always answer in English.\nBe concise.\nAlways answer in English.\n\nBe concise."
    assert minify_text(text) == "Always answer in English.\nBe concise."


def test_whitespace_collapses_and_common_indentation_goes() -> None:
    text = "\n    You are an assistant.\n    Answer    in   one   line.\n\n\n\n    Thanks for the help, team.\n"
    assert minify_text(text) == "You are an assistant.\nAnswer in one line.\n\nThanks for the help, team."


def test_pretty_json_is_compacted_with_every_literal_unchanged() -> None:
    data = '{\n    "price": 799.00,\n    "name": "Zephyr  X2",\n    "tags": [\n        "a b",\n        1e5\n    ]\n}'
    out = minify_text(f"Here is the record:\n{data}\nUse it.")
    assert '{"price":799.00,"name":"Zephyr  X2","tags":["a b",1e5]}' in out
    assert json.loads(out.split("\n")[1]) == json.loads(data)


def test_json_is_left_alone_when_compaction_is_off() -> None:
    data = '{\n  "a": 1\n}'
    assert data in minify_text(f"Example:\n{data}", RuleOptions(compact_json=False))


def test_markdown_table_is_compacted_cell_for_cell() -> None:
    table = "| Plan    | Price  |\n|:--------|-------:|\n| Pro     | $49    |\n| Team    | $29    |"
    assert minify_text(table) == "|Plan|Price|\n|:---|---:|\n|Pro|$49|\n|Team|$29|"


def test_code_blocks_and_quotes_are_never_changed() -> None:
    code = "```\nplease   write\nplease   write\n```"
    quote = '"I would like you to   please write"'
    out = minify_text(f"Please explain this:\n{code}\nThe user said {quote} twice.")
    assert code in out and quote in out
    assert out.startswith("Explain this:")


def test_pleasantries_alone_are_kept_but_dropped_next_to_an_instruction() -> None:
    assert minify_text("Thank you!") == "Thank you!"
    assert minify_text("Summarize the text. Thank you so much!") == "Summarize the text."
    text = ("Hello! I hope you are doing well today. Please, summarize the text. "
            "Thank you so much in advance for your help, I really appreciate it!")
    assert minify_text(text) == "Summarize the text."
    # a sentence with anything beyond pleasantries stays
    assert minify_text("Thanks, that was helpful. Now list the colors.") == (
        "Thanks, that was helpful. Now list the colors.")


def test_hedges_only_when_asked() -> None:
    text = "This is a very important and basically simple task."
    assert minify_text(text) == text
    # "a very important" keeps "very": dropping it would leave "a important"
    assert minify_text(text, RuleOptions(hedges=True)) == "This is a very important and simple task."
    assert minify_text("It is really quite hard.", RuleOptions(hedges=True)) == "It is hard."


def test_instructions_off_keeps_words_and_still_tidies_layout() -> None:
    text = "I would like you to   write it.\nI would like you to write it."
    assert minify_text(text, RuleOptions(instructions=False, dedupe=False)) == (
        "I would like you to write it.\nI would like you to write it.")


def test_column_aligned_lines_keep_their_spacing() -> None:
    text = "Name     Age   City\nAda      36    London\nLinus    28    Helsinki"
    assert minify_text(text) == text


def test_deterministic() -> None:
    text = "Please, could you please   summarize\n\n\nthe notes?  Thanks!"
    assert len({minify_text(text) for _ in range(5)}) == 1


def test_a_rewrite_that_costs_a_token_more_is_refused() -> None:
    # "Please summarize" -> "Summarize" is shorter in characters but one token longer in this context
    text = ("Please summarize Please Please Please Please Please Please Please \n `inline   code` Please Please \n"
            " `inline   code` ")
    assert count_tokens(_rewrite(text, RuleOptions())) > count_tokens(text)  # what the guard is for
    out = minify_text(text, RuleOptions())
    assert count_tokens(out) <= count_tokens(text)
    assert minify_text(out, RuleOptions()) == out
