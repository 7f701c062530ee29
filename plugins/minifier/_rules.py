"""Deterministic, meaning-preserving rewrites of prompt text (the "safe" level).

Only layout whitespace and plain words of prose ever change: filler openers and wordy phrases
are cut, repeated instructions dropped, pretty JSON and markdown tables compacted. Every result
is checked against the input (:func:`preserves_atoms`) and rewriting repeats until nothing more
changes, so the output keeps every protected span, is never longer, and is idempotent.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from costmw.plugin_api import count_tokens

from ._phrases import HEDGES, INSTRUCTION_VERBS, OPENERS, PLEASANTRY_OPENERS, PLEASANTRY_WORDS, POLITE_OPENERS, WORDY
from ._segment import Block, Tok, atoms, is_delimiter_row, json_tokens, prose_tokens, segment, sentences, table_cells

__all__ = ["RuleOptions", "minify_text", "preserves_atoms", "strip_pleasantries"]

_TERMINAL = frozenset(".!?")
_LIST_MARKER = ("-", "*", "+", "•", "–")


def _by_first_word(phrases: list[tuple[tuple[str, ...], str]]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Phrases grouped by their first word, longest first, so each word is matched against few."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for words, plain in sorted(phrases, key=lambda p: -len(p[0])):
        index.setdefault(words[0], []).append((words, plain))
    return index


_WORDY = _by_first_word([(tuple(k.split()), v) for k, v in WORDY.items()])
_OPENERS = _by_first_word([(tuple(p.split()), "") for p in OPENERS])
_POLITE = _by_first_word([(tuple(p.split()), "") for p in POLITE_OPENERS])


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """Which rewrites run. ``instructions`` enables filler trimming and deduplication (system and
    user text); ``hedges`` also drops intensifiers; ``compact_json`` may be off when JSON examples
    in the prompt must stay as written (JSON mode)."""

    instructions: bool = True
    dedupe: bool = True
    hedges: bool = False
    compact_json: bool = True


def _norm(word: str) -> str:
    low = word.lower()
    return low.replace("’", "'") if "’" in low else low


def _match(toks: list[Tok], i: int, phrase: tuple[str, ...]) -> int:
    """End index (exclusive) of ``phrase`` matched at ``toks[i]``, or -1."""
    j = i
    for k, word in enumerate(phrase):
        if k:
            if j + 1 >= len(toks) or toks[j].kind != "ws":
                return -1
            j += 1
        if j >= len(toks) or toks[j].kind != "word" or _norm(toks[j].text) != word:
            return -1
        j += 1
    return j


def _next_word(toks: list[Tok], j: int) -> str:
    if j + 1 < len(toks) and toks[j].kind == "ws" and toks[j + 1].kind == "word":
        return _norm(toks[j + 1].text)
    return ""


def _skip_after(toks: list[Tok], j: int) -> int:
    """Past the space (and a comma with its space) that followed a removed phrase."""
    if j < len(toks) and toks[j].kind == "punct" and toks[j].text == ",":
        j += 1
    if j < len(toks) and toks[j].kind == "ws":
        j += 1
    return j


def _capitalised(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() and word else word


class _Trimmer:
    """One forward pass over prose tokens that removes filler and shortens wordy phrases."""

    def __init__(self, toks: list[Tok], opts: RuleOptions) -> None:
        self.toks = toks
        self.opts = opts
        self.out: list[Tok] = []
        self.at_start = True
        self.capitalise = False
        self.question = False

    def run(self) -> list[Tok]:
        toks, i = self.toks, 0
        while i < len(toks):
            i = self._step(i)
        return self.out

    def _emit(self, tok: Tok) -> None:
        if self.capitalise and tok.kind == "word":
            tok = Tok("word", _capitalised(tok.text, "A"))
        if tok.kind not in ("ws",):
            self.capitalise = False
        self.out.append(tok)

    def _opener(self, i: int) -> int:
        toks = self.toks
        first = _norm(toks[i].text)
        if (j := _greeting_clause(toks, i)) > 0:
            return j
        for phrase, _ in _OPENERS.get(first, ()):
            j = _match(toks, i, phrase)
            if j > 0 and (_next_word(toks, j) or (j < len(toks) and toks[j].text == "," and _next_word(toks, j + 1))):
                return j
        for phrase, _ in _POLITE.get(first, ()):
            j = _match(toks, i, phrase)
            if j > 0 and _next_word(toks, j) in INSTRUCTION_VERBS:
                self.question = True
                return j
        return -1

    def _step(self, i: int) -> int:
        toks, opts = self.toks, self.opts
        tok = toks[i]
        if tok.kind == "nl":
            self.at_start, self.question = True, False
            self._emit(tok)
            return i + 1
        if tok.kind == "word":
            if opts.instructions and self.at_start and (j := self._opener(i)) > 0:
                self.capitalise = self.capitalise or tok.text[:1].isupper()
                return _skip_after(toks, j)
            self.at_start = False
            return self._word(i)
        if tok.kind == "punct":
            return self._punct(i)
        if tok.kind == "prot" and self.at_start and tok.text in _LIST_MARKER:
            self._emit(tok)
            return i + 1
        if tok.kind != "ws":
            self.at_start = False
        self._emit(tok)
        return i + 1

    def _word(self, i: int) -> int:
        toks, opts = self.toks, self.opts
        word = _norm(toks[i].text)
        if opts.instructions and word in ("please", "kindly") and _next_word(toks, i + 1) in INSTRUCTION_VERBS:
            return i + 2
        if opts.hedges and word in HEDGES and _next_word(toks, i + 1) and not self._after_article():
            return i + 2
        for phrase, plain in _WORDY.get(word, ()):
            j = _match(toks, i, phrase)
            if j > 0:
                for k, part in enumerate(plain.split()):
                    if k:
                        self._emit(Tok("ws", " "))
                    self._emit(Tok("word", _capitalised(part, toks[i].text) if k == 0 else part))
                return j
        self._emit(toks[i])
        return i + 1

    def _after_article(self) -> bool:
        """Whether the last word emitted is "a"/"an" (dropping "very" there could break "an")."""
        for tok in reversed(self.out):
            if tok.kind != "ws":
                return tok.kind == "word" and _norm(tok.text) in ("a", "an")
        return False

    def _punct(self, i: int) -> int:
        toks, text = self.toks, self.toks[i].text
        if (self.opts.instructions and text == "," and _next_word(toks, i + 1) == "please"
                and (i + 3 == len(toks) or toks[i + 3].text in _TERMINAL)):
            return i + 3
        if text == "?" and self.question and (i + 1 == len(toks) or toks[i + 1].kind in ("ws", "nl")):
            text = "."
        if text in _TERMINAL:
            self.at_start, self.question = True, False
        self._emit(Tok("punct", text))
        return i + 1


_GREETINGS = tuple(o for o in PLEASANTRY_OPENERS if o[0] in ("hello", "hi", "hey", "greetings", "good"))


def _greeting_clause(toks: list[Tok], i: int) -> int:
    """End of a greeting that opens a sentence and is set off by a comma ("Good evening, ...",
    "Hi there, ..."), or -1: the words a pleasantry sentence is made of, after a greeting opener."""
    words: list[str] = []
    j = i
    while j < len(toks) and toks[j].kind in ("word", "ws"):
        if toks[j].kind == "word":
            words.append(_norm(toks[j].text))
        j += 1
    if j >= len(toks) or toks[j].text != "," or not _next_word(toks, j + 1):
        return -1
    k = j + 1
    rest: list[str] = []
    while k < len(toks) and toks[k].kind != "nl" and toks[k].text not in _TERMINAL:
        if toks[k].kind != "ws":
            rest.append(_norm(toks[k].text) if toks[k].kind == "word" else "")
        k += 1
    if all(w in PLEASANTRY_WORDS for w in rest):  # the whole sentence is a pleasantry: it goes whole
        return -1
    greets = any(tuple(words[:len(o)]) == o for o in _GREETINGS)
    return j if greets and _pleasantry(toks[i:j], words) else -1


def _whole_line(toks: list[Tok], start: int, end: int) -> bool:
    """Whether only spaces share the line with ``toks[start:end]``."""
    i = start - 1
    while i >= 0 and toks[i].kind == "ws":
        i -= 1
    j = end
    while j < len(toks) and toks[j].kind == "ws":
        j += 1
    return (i < 0 or toks[i].kind == "nl") and (j == len(toks) or toks[j].kind == "nl")


def _pleasantry(body: list[Tok], words: list[str]) -> bool:
    """A sentence of thanks, greeting or well-wishing only (no protected chunk in it)."""
    if not words or any(t.kind == "prot" for t in body) or not all(w in PLEASANTRY_WORDS for w in words):
        return False
    return any(tuple(words[:len(o)]) == o for o in PLEASANTRY_OPENERS)


def _drop_sentences(toks: list[Tok], seen: set[tuple[str, ...]], opts: RuleOptions) -> list[Tok]:
    """Drop thanks-only sentences and sentences already said earlier in the same text."""
    drop = [False] * len(toks)
    for start, end in sentences(toks):
        body = [t for t in toks[start:end] if t.kind != "ws"]
        words = [_norm(t.text) for t in body if t.kind == "word"]
        if _pleasantry(body, words):
            gone = True
        else:
            key = tuple(_norm(t.text) if t.kind == "word" else t.text for t in body
                        if not (t.kind == "punct" and t.text in _TERMINAL))
            gone = opts.dedupe and len(words) >= 2 and key in seen and (
                len(words) >= 4 or _whole_line(toks, start, end))
            if len(words) >= 2:
                seen.add(key)
        if gone:
            for k in range(start, end):
                drop[k] = True
            if end < len(toks) and toks[end].kind == "ws":
                drop[end] = True
            elif start > 0 and toks[start - 1].kind == "ws":
                drop[start - 1] = True
    return [t for t, d in zip(toks, drop) if not d]


def _tidy(toks: list[Tok]) -> str:
    """Join tokens, collapsing inner spaces, dropping trailing spaces and emptied lines."""
    lines: list[str] = []
    cur: list[str] = []
    line_start = True
    for t in toks:
        if t.kind == "nl":
            lines.append("".join(cur).rstrip())
            cur, line_start = [], True
        elif t.kind == "ws":
            cur.append(t.text if line_start else " ")
        else:
            cur.append(t.text)
            line_start = False
    lines.append("".join(cur).rstrip())
    return "\n".join(line for line in lines if line.strip())


def _compact_json(block: Block) -> str:
    return "".join(json_tokens(block.text))


def _compact_table(block: Block) -> list[str]:
    rows = []
    for n, line in enumerate(block.lines):
        cells = table_cells(line)
        if n == 1 and is_delimiter_row(cells):
            cells = [(":" if c.startswith(":") else "") + "---" + (":" if len(c) > 1 and c.endswith(":") else "")
                     for c in cells]
        rows.append("|" + "|".join(cells) + "|")
    return rows


def _rewrite(text: str, opts: RuleOptions) -> str:
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for block in segment(textwrap.dedent(text)):
        if block.kind == "blank":
            if out and out[-1]:
                out.append("")
        elif block.kind == "json" and opts.compact_json:
            out.append(_compact_json(block))
        elif block.kind == "table":
            out.extend(_compact_table(block))
        elif block.kind == "prose":
            toks = list(prose_tokens(block.text))
            if opts.instructions:
                toks = _drop_sentences(_Trimmer(toks, opts).run(), seen, opts)
            elif opts.hedges:
                toks = _Trimmer(toks, opts).run()
            tidy = _tidy(toks)
            if tidy:
                out.extend(tidy.split("\n"))
        else:
            out.extend(block.lines)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def preserves_atoms(before: str, after: str, *, all_kept: bool = True) -> bool:
    """Whether ``after`` keeps the protected spans of ``before``: its spans are a subsequence of
    ``before``'s (nothing altered, nothing invented) and, with ``all_kept``, every distinct span
    of ``before`` still shows (compression may drop a span with its sentence, never change it)."""
    a, b = atoms(before), atoms(after)
    if all_kept and not set(a) <= set(b):
        return False
    it = iter(a)
    return all(any(x == y for y in it) for x in b)


def minify_text(text: str, options: RuleOptions | None = None) -> str:
    """The safe rewrite of ``text``; ``text`` itself when no rewrite both shortens and keeps it intact.

    Shorter means fewer characters and no more tokens (a capitalised word can cost one more token).
    """
    opts = options or RuleOptions()
    current, current_tokens = text, -1  # counted only when a rewrite first gets that far
    while True:
        candidate = _rewrite(current, opts)
        if len(candidate) >= len(current) or not candidate.strip() or not preserves_atoms(current, candidate):
            return current
        if current_tokens < 0:
            current_tokens = count_tokens(current)
        candidate_tokens = count_tokens(candidate)
        if candidate_tokens > current_tokens:
            return current
        current, current_tokens = candidate, candidate_tokens


_POLITE_ONLY = RuleOptions(instructions=True, dedupe=False, hedges=True, compact_json=False)


def strip_pleasantries(text: str) -> str:
    """``text`` without greetings, thanks, polite openers and hedges: the minifier's safe
    rewrites, which change how a request is worded, never what it asks (numbers, identifiers,
    code, URLs and quoted text are kept as written). The semantic cache reads questions through
    this same function, so both agree on what a pleasantry is."""
    return minify_text(text, _POLITE_ONLY)
