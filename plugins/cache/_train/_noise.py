"""Rewrites that keep a question's meaning: typos, chat speak, polite wrappers, reordering, terse
forms. Each takes the text and a seeded ``random.Random`` and returns the rewritten text; digits,
code in backticks and identifiers are left alone, because changing them changes the question.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from ._seeds import CHAT, PREFIXES, SUFFIXES

__all__ = ["NOISES", "chat_speak", "noisy", "polite", "reorder", "terse", "typos"]

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        for other in (_r - 1, _r + 1):
            if 0 <= other < len(_ROWS):
                near += [_ROWS[other][i] for i in (_c - 1, _c) if 0 <= i < len(_ROWS[other])]
        _NEIGHBOURS[_ch] = "".join(near)

_PLAIN_WORD = re.compile(r"(?<![`\w])[A-Za-z]{4,}(?![`\w])")
_PROTECTED = re.compile(r"`[^`]*`|\S*\d\S*|\S*[_./]\S*\w")


def _editable_spans(text: str) -> list[tuple[int, int]]:
    """Plain words of four letters or more, outside code, numbers and identifiers."""
    blocked = [m.span() for m in _PROTECTED.finditer(text)]
    return [m.span() for m in _PLAIN_WORD.finditer(text)
            if not any(s <= m.start() < e for s, e in blocked) and not m.group().isupper()]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word))  # keep the first letter, as people mostly do
    kind = rng.randrange(4)
    if kind == 0:
        near = _NEIGHBOURS.get(word[i].lower(), "")
        return word[:i] + rng.choice(near) + word[i + 1:] if near else word
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    j = min(i + 1, len(word) - 1)
    return word[:i] + word[j] + word[i] + word[j + 1:] if j > i else word


def typos(text: str, rng: random.Random, rate: float = 0.25) -> str:
    """Keyboard-neighbour substitutions, dropped, doubled and swapped letters in some words."""
    spans = _editable_spans(text)
    chosen = [s for s in spans if rng.random() < rate] or (spans and [rng.choice(spans)]) or []
    for start, end in sorted(chosen, reverse=True):
        text = text[:start] + _typo(text[start:end], rng) + text[end:]
    return text


def chat_speak(text: str, rng: random.Random) -> str:
    """Short forms (u, pls, thx), lower case, dropped punctuation."""
    for long, short in CHAT.items():
        if rng.random() < 0.7:
            text = re.sub(rf"(?<![\w`]){re.escape(long)}(?![\w`])", short, text, flags=re.IGNORECASE)
    if rng.random() < 0.7:
        text = _lower_outside_code(text)
    if rng.random() < 0.6:
        text = re.sub(r"[?.!,;:]+(?=\s|$)", "", text).strip()
    if rng.random() < 0.2:
        text += rng.choice(("??", "?!", " ?", "..."))
    return text


def _lower_outside_code(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.lower() for p in parts)


def polite(text: str, rng: random.Random) -> str:
    """A greeting or hedge before, thanks or a hedge after, or both."""
    roll = rng.random()
    if roll < 0.45 or roll >= 0.8:
        text = f"{rng.choice(PREFIXES)} {text[:1].lower() + text[1:] if rng.random() < 0.5 else text}"
    if roll >= 0.45:
        suffix = rng.choice(SUFFIXES)
        text = f"{text.rstrip('?.!')} {suffix}" if suffix[0].islower() else f"{text} {suffix}"
    return text


_LEAD = re.compile(r"^(If|When|After|Before|While|Since|Once) ([^,]{3,60}), (.+?)([?.!]?)$", re.IGNORECASE)
_TAIL = re.compile(r"^(.+?) (if|when|after|before|while|once) ([^,]{3,60}?)([?.!]?)$", re.IGNORECASE)


def reorder(text: str, rng: random.Random) -> str:
    """Move a leading condition clause to the end or a trailing one to the front."""
    m = _LEAD.match(text)
    if m:
        main = m.group(3)
        return f"{main[:1].upper() + main[1:]} {m.group(1).lower()} {m.group(2)}{m.group(4)}"
    m = _TAIL.match(text)
    if m and rng.random() < 0.8:
        main = m.group(1)
        return f"{m.group(2).capitalize()} {m.group(3)}, {main[:1].lower() + main[1:]}{m.group(4)}"
    return text


_TERSE = (
    (re.compile(r"^(can|could) you (please )?(tell me|explain) ", re.IGNORECASE), ""),
    (re.compile(r"^(what is|what's|what are) (the )?", re.IGNORECASE), ""),
    (re.compile(r"^(how do i|how can i|how to) ", re.IGNORECASE), "how to "),
    (re.compile(r"\b(exactly|actually|basically|really|just) ", re.IGNORECASE), ""),
)
_VERBOSE = ("Can you tell me {q}", "I'd like to know: {q}", "I need some help. {q}", "{q} I couldn't find it anywhere.",
            "So, {q}", "{q} I've been trying to figure this out.", "Could you please help: {q}")


def terse(text: str, rng: random.Random) -> str:
    """A shorter or a wordier form of the same question."""
    if rng.random() < 0.5:
        for pattern, repl in _TERSE:
            text = pattern.sub(repl, text, count=1)
        return text[:1].upper() + text[1:] if text else text
    return rng.choice(_VERBOSE).format(q=text[:1].lower() + text[1:] if rng.random() < 0.3 else text)


NOISES: tuple[Callable[[str, random.Random], str], ...] = (typos, chat_speak, polite, reorder, terse)


def noisy(text: str, rng: random.Random, strength: float = 0.5) -> str:
    """Apply a random handful of the meaning-keeping rewrites (none at strength 0)."""
    for noise in rng.sample(NOISES, len(NOISES)):
        if rng.random() < strength * 0.6:
            text = noise(text, rng)
    return text
