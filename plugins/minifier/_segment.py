"""Split prompt text into blocks and prose tokens, and list the spans that must never change.

Every rewrite of the minifier works on this view of a text: fenced code, block quotes, indented
or tab-aligned lines are kept verbatim; JSON and markdown tables may only lose layout whitespace;
prose is a stream of plain words, punctuation, whitespace and *protected* chunks (inline code,
quoted text, and any chunk that is not a plain word: numbers, URLs, identifiers, paths).
"""

from __future__ import annotations

import bisect
import json
import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = ["TERMINAL", "Block", "Tok", "atoms", "json_tokens", "prose_tokens", "segment", "sentences"]

BlockKind = Literal["fence", "json", "table", "verbatim", "prose", "blank"]
TokKind = Literal["word", "punct", "ws", "nl", "prot"]

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_VERBATIM_LINE = re.compile(r"^(?: {4}|\t|\s*>)|\S\t")
_ALIGNED = re.compile(r"\S {2,}\S")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_DELIMITER_CELL = re.compile(r"^:?-+:?$")
# inline code, then quotations: "..." “...” «...» and '...' (an opening ' never follows a letter)
_INLINE = re.compile(
    r"(`+)[^`]*?\1"
    r"|\"[^\"\n]{0,2000}?(?:\n[^\"\n]+?){0,20}\""
    r"|“[^”]{0,2000}?”|«[^»]{0,2000}?»|‘[^’\n]{0,500}?’(?![A-Za-z])"
    r"|(?<![\w'’])'[^'\n]{1,500}?'(?![\w])"
)
TERMINAL = frozenset(".!?")
_CHUNK = re.compile(r"[ \t\r\f\v]+|\n|\S+")
_DECODER = json.JSONDecoder()
_PLAIN = re.compile(r"^([(\[]*)((?:[A-Z]?[a-z]+|[AI])(?:['’-][a-z]+)*)([.,;:!?)\]]*)$")


@dataclass(frozen=True, slots=True)
class Block:
    """A run of whole lines of one kind (``lines`` has no newline characters)."""

    kind: BlockKind
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class Tok:
    """One prose token: a plain word, punctuation, spaces, a newline, or a protected chunk."""

    kind: TokKind
    text: str


def _fence_end(lines: list[str], start: int) -> int:
    """Index one past the closing fence line of the fence opened at ``start``."""
    m = _FENCE.match(lines[start])
    assert m is not None
    marker = m.group(1)
    closing = re.compile(rf"^\s{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j]):
            return j + 1
    return len(lines)


def _json_end(text: str, starts: list[int], start: int) -> int:
    """Index one past the last line of a JSON object/array starting on line ``start``, or ``start``."""
    offset = starts[start]
    while text[offset] in " \t":
        offset += 1
    if text[offset] not in "{[":
        return start
    try:
        value, end = _DECODER.raw_decode(text, offset)
    except ValueError:
        return start
    if not isinstance(value, (dict, list)):
        return start
    last = bisect.bisect_right(starts, end - 1) - 1
    line_end = starts[last + 1] - 1 if last + 1 < len(starts) else len(text)
    if text[end:line_end].strip():
        return start
    return last + 1


def _run(lines: list[str], start: int, test: re.Pattern[str], minimum: int) -> int:
    j = start
    while j < len(lines) and test.search(lines[j]):
        j += 1
    return j if j - start >= minimum else start


def segment(text: str) -> list[Block]:
    """Cut ``text`` into blocks of whole lines; joining every block's lines with newlines gives it back."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        kind: BlockKind
        if not line.strip():
            kind, end = "blank", i + 1
        elif _FENCE.match(line):
            kind, end = "fence", _fence_end(lines, i)
        elif (end := _json_end(text, starts, i)) > i:
            kind = "json"
        elif (end := _run(lines, i, _TABLE_LINE, 2)) > i:
            kind = "table"
        elif _VERBATIM_LINE.search(line):
            kind, end = "verbatim", i + 1
        elif (end := _run(lines, i, _ALIGNED, 2)) > i:
            kind = "verbatim"
        else:
            kind, end = "prose", i + 1
        if kind == "prose" and blocks and blocks[-1].kind == "prose":
            blocks[-1] = Block("prose", (*blocks[-1].lines, line))
        else:
            blocks.append(Block(kind, tuple(lines[i:end])))
        i = end
    return blocks


def _chunk_tokens(chunk: str) -> Iterator[Tok]:
    if chunk == "\n":
        yield Tok("nl", chunk)
        return
    if chunk.isspace():
        yield Tok("ws", chunk)
        return
    m = _PLAIN.match(chunk)
    if m is None:
        body = chunk.rstrip(",;:!?")
        if body.endswith(".") and "." not in body[:-1] and len(body) > 1:
            body = body[:-1]
        if body:
            yield Tok("prot", body)
        for ch in chunk[len(body):]:
            yield Tok("punct", ch)
        return
    for ch in m.group(1):
        yield Tok("punct", ch)
    yield Tok("word", m.group(2))
    for ch in m.group(3):
        yield Tok("punct", ch)


@lru_cache(maxsize=2048)
def prose_tokens(text: str) -> tuple[Tok, ...]:
    """Tokens of a prose block; concatenating their texts gives ``text`` back exactly (cached:
    the same blocks are read again when a rewrite is checked)."""
    out: list[Tok] = []
    pos = 0
    for m in _INLINE.finditer(text):
        for c in _CHUNK.finditer(text, pos, m.start()):
            out.extend(_chunk_tokens(c.group()))
        out.append(Tok("prot", m.group()))
        pos = m.end()
    for c in _CHUNK.finditer(text, pos):
        out.extend(_chunk_tokens(c.group()))
    return tuple(_glue(out))


def _glue(toks: list[Tok]) -> list[Tok]:
    """Merge a protected chunk with letters or symbols touching it (``"x"s``, ``(`a`)``) into one."""
    out: list[Tok] = []
    for t in toks:
        if out and t.kind not in ("ws", "nl") and out[-1].kind not in ("ws", "nl") and (
                t.kind == "prot" or out[-1].kind == "prot"):
            if t.kind == "punct" and out[-1].kind == "prot" and t.text in ".,;:!?)]":
                out.append(t)
                continue
            if out[-1].kind == "punct" and t.kind == "prot" and out[-1].text in "([" and (
                    len(out) < 2 or out[-2].kind in ("ws", "nl")):
                out.append(t)
                continue
            out[-1] = Tok("prot", out[-1].text + t.text)
        else:
            out.append(t)
    return out


def sentences(toks: Sequence[Tok]) -> list[tuple[int, int]]:
    """(start, end) of each sentence: a run of tokens without newlines, ended by . ! or ?."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, t in enumerate(toks):
        if t.kind in ("ws", "nl"):
            if t.kind == "nl" and start is not None:
                spans.append((start, i))
                start = None
            continue
        if start is None:
            start = i
        closing = t.kind == "punct" and t.text in TERMINAL
        if closing and (i + 1 == len(toks) or toks[i + 1].kind in ("ws", "nl")):
            spans.append((start, i + 1))
            start = None
    if start is not None:
        end = len(toks)
        while toks[end - 1].kind == "ws":
            end -= 1
        spans.append((start, end))
    return spans


def json_tokens(text: str) -> list[str]:
    """The strings, numbers and literals of JSON text, in order (layout whitespace dropped)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif ch.isspace():
            i += 1
        elif ch in "{}[],:":
            out.append(ch)
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '{}[],:"':
                j += 1
            out.append(text[i:j])
            i = j
    return out


def table_cells(line: str) -> list[str]:
    """The stripped cells of a markdown table row (between its outer pipes)."""
    inner = line.strip()[1:-1]
    return [c.strip() for c in _CELL_SPLIT.split(inner)]


def is_delimiter_row(cells: list[str]) -> bool:
    return bool(cells) and all(_DELIMITER_CELL.match(c) for c in cells)


def atoms(text: str) -> list[str]:
    """Every span of ``text`` the minifier must keep byte for byte, in order.

    Spans are read after removing the indentation common to all lines (as an indented
    triple-quoted string has), which is layout, so code keeps its relative indentation.
    """
    out: list[str] = []
    for block in segment(textwrap.dedent(text)):
        if block.kind in ("fence", "verbatim"):
            out.append(block.text)
        elif block.kind == "json":
            out.extend(t for t in json_tokens(block.text) if t not in "{}[],:")
        elif block.kind == "table":
            for line in block.lines:
                cells = table_cells(line)
                if not is_delimiter_row(cells):
                    out.extend(cells)
        elif block.kind == "prose":
            out.extend(t.text for t in prose_tokens(block.text) if t.kind == "prot")
    return out
