"""Training pairs for the cache verifier, made by generators from the seeds and from mock data.

A pair is ``(a, b, label, kind)``: ``label`` 1 when one answer serves both questions, 0 when it
does not; ``kind`` names the generator, for reports. Every generator takes a seeded
``random.Random``, so a seed gives the same pairs every time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from ._noise import noisy
from ._seeds import ASKS, FORMATS, GROUPS, POOLS, SITUATIONS, TOPICS

__all__ = ["Pair", "ask_pairs", "format_pairs", "group_pairs", "negate", "situation_pairs", "swap_number",
           "text_pairs"]

_SLOT = re.compile(r"\{(?:(\w):)?(\w+)\}")


class Pair(NamedTuple):
    a: str
    b: str
    label: int
    kind: str


def _slots(template: str) -> list[tuple[str, str]]:
    """(key, pool) per distinct slot: ``{a:city}`` has key ``a:city`` and pool ``city``."""
    seen: dict[str, str] = {}
    for m in _SLOT.finditer(template):
        key = f"{m.group(1)}:{m.group(2)}" if m.group(1) else m.group(2)
        seen.setdefault(key, m.group(2))
    return list(seen.items())


def _fill(template: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        return values[f"{m.group(1)}:{m.group(2)}" if m.group(1) else m.group(2)]

    return _SLOT.sub(one, template)


def _draw(slots: list[tuple[str, str]], rng: random.Random) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, pool in slots:
        taken = {v for k, v in values.items() if k.endswith(f":{pool}") or k == pool}
        values[key] = rng.choice([v for v in POOLS[pool] if v not in taken])
    return values


def _changed(slots: list[tuple[str, str]], values: dict[str, str], rng: random.Random) -> tuple[dict[str, str], str]:
    """The same values with one detail changed: a reversed direction or one slot swapped."""
    keys = [k for k, _ in slots]
    if "a:" in "".join(keys) and rng.random() < 0.5:
        pairs = [(k, k.replace("a:", "b:", 1)) for k in keys if k.startswith("a:")]
        ka, kb = rng.choice(pairs)
        if kb in values:
            return values | {ka: values[kb], kb: values[ka]}, "direction"
    key, pool = rng.choice(slots)
    taken = set(values.values())
    new = rng.choice([v for v in POOLS[pool] if v not in taken])
    kind = "number" if pool in ("n", "age", "year") else "unit" if pool.startswith("unit") else "entity"
    return values | {key: new}, kind


def group_pairs(groups: Sequence[Sequence[str]], rng: random.Random, per_group: int) -> Iterator[Pair]:
    """Two phrasings of one question (positive), and the same with one detail changed (negative)."""
    for phrasings in groups:
        slots = _slots(phrasings[0])
        for _ in range(per_group):
            values = _draw(slots, rng)
            first, second = rng.choice(phrasings), rng.choice(phrasings)
            a = _fill(first, values)
            yield Pair(a, noisy(_fill(second, values), rng), 1, "para")
            other, kind = _changed(slots, values, rng) if slots else (values, "")
            if kind:
                yield Pair(noisy(a, rng, 0.3), noisy(_fill(rng.choice(phrasings), other), rng), 0, kind)


def ask_pairs(topics: Sequence[str], rng: random.Random, per_topic: int) -> Iterator[Pair]:
    """One topic asked for the same kind of answer (positive) or another kind (negative)."""
    for topic in topics:
        for _ in range(per_topic):
            cls = rng.randrange(len(ASKS))
            a = rng.choice(ASKS[cls]).format(t=topic)
            yield Pair(a, noisy(rng.choice(ASKS[cls]).format(t=topic), rng), 1, "para")
            other = rng.choice([i for i in range(len(ASKS)) if i != cls and (cls == 0 or i == 0 or rng.random() < 0.5)])
            yield Pair(noisy(a, rng, 0.3), noisy(rng.choice(ASKS[other]).format(t=topic), rng), 0, "ask")
            if rng.random() < 0.3:
                swap = rng.choice([t for t in topics if t != topic])
                yield Pair(a, noisy(rng.choice(ASKS[cls]).format(t=swap), rng), 0, "entity")


def _join(question: str, extra: str, rng: random.Random) -> str:
    if rng.random() < 0.75:
        return f"{question} {extra}"
    return f"{extra} {question}"


def format_pairs(questions: Sequence[str], rng: random.Random, count: int) -> Iterator[Pair]:
    """A question with and without an output format, or with two formats (negatives), and with
    the same format said twice (positive)."""
    for _ in range(count):
        q = rng.choice(questions)
        cls = rng.randrange(len(FORMATS))
        with_format = _join(q, rng.choice(FORMATS[cls]), rng)
        yield Pair(with_format, noisy(_join(q, rng.choice(FORMATS[cls]), rng), rng, 0.3), 1, "para")
        if rng.random() < 0.5:
            yield Pair(noisy(q, rng, 0.3), with_format, 0, "format")
        else:
            other = rng.choice([i for i in range(len(FORMATS)) if i != cls])
            yield Pair(with_format, noisy(_join(q, rng.choice(FORMATS[other]), rng), rng, 0.3), 0, "format")


def situation_pairs(questions: Sequence[str], rng: random.Random, count: int) -> Iterator[Pair]:
    """A question asked by users in different situations (negative) or the same one (positive)."""
    for _ in range(count):
        q = rng.choice(questions)
        cls = rng.randrange(len(SITUATIONS))
        mine = _join(q, rng.choice(SITUATIONS[cls]), rng)
        yield Pair(mine, noisy(_join(q, rng.choice(SITUATIONS[cls]), rng), rng, 0.4), 1, "para")
        if rng.random() < 0.4:
            yield Pair(noisy(q, rng, 0.3), mine, 0, "situation")
        else:
            other = rng.choice([i for i in range(len(SITUATIONS)) if i != cls])
            yield Pair(mine, noisy(_join(q, rng.choice(SITUATIONS[other]), rng), rng, 0.3), 0, "situation")


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_AUX = re.compile(r"\b(is|are|was|were|can|could|does|do|did|should|would|will|has|have)\b(?! not\b|n't)",
                  re.IGNORECASE)
_NEGATED = {"can": "cannot", "will": "won't"}


def swap_number(text: str, rng: random.Random) -> str | None:
    """The text with one number changed, or None when it has none."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return None
    m = rng.choice(found)
    value = float(m.group())
    new = rng.choice([value + rng.randint(1, 9), value * rng.choice((2, 10)), max(0.0, value - rng.randint(1, 5))])
    if new == value:
        new = value + 1
    shown = f"{new:g}" if "." in m.group() else str(int(new))
    return text[:m.start()] + shown + text[m.end():]


def negate(text: str, rng: random.Random) -> str | None:
    """The text with its first auxiliary verb negated, or None when it has none."""
    m = _AUX.search(text)
    if not m:
        return None
    word = m.group(1)
    low = word.lower()
    neg = _NEGATED.get(low, f"{low} not" if rng.random() < 0.5 else f"{low}n't")
    if word[0].isupper():
        neg = neg[0].upper() + neg[1:]
    return text[:m.start()] + neg + text[m.end():]


_TIME_SLOT = re.compile(r"([?.])$")


def text_pairs(texts: Sequence[str], rng: random.Random) -> Iterator[Pair]:
    """Edits of free text (mock data, hand-written pairs): noise (positive); a changed number,
    a negation or a time phrase added (negative)."""
    times = POOLS["time"]
    for text in texts:
        yield Pair(text, noisy(text, rng, 0.8), 1, "noise")
        changed = swap_number(text, rng)
        if changed is not None:
            yield Pair(noisy(text, rng, 0.3), noisy(changed, rng, 0.3), 0, "number")
        negated = negate(text, rng) if rng.random() < 0.5 else None
        if negated is not None:
            yield Pair(noisy(text, rng, 0.3), noisy(negated, rng, 0.3), 0, "negation")
        if text.endswith("?") and rng.random() < 0.25:
            t1, t2 = rng.sample(times, 2)
            a = _TIME_SLOT.sub(f" {t1}\\1", text)
            yield Pair(a, noisy(_TIME_SLOT.sub(f" {t2}\\1", text), rng, 0.3), 0, "time")


def seed_questions(rng: random.Random, groups: Sequence[Sequence[str]] = GROUPS, count: int = 400) -> list[str]:
    """Filled phrasings of the seed groups, as plain questions for the other generators."""
    out = []
    for _ in range(count):
        phrasings = rng.choice(groups)
        out.append(_fill(rng.choice(phrasings), _draw(_slots(phrasings[0]), rng)))
    return out


def split_seeds(held_out_share: float = 0.2, seed: int = 0) -> tuple[tuple[list[Sequence[str]], list[str]],
                                                                    tuple[list[Sequence[str]], list[str]]]:
    """Seed groups and topics cut into a training part and a calibration part, by a fixed seed."""
    rng = random.Random(seed)
    groups: list[Sequence[str]] = list(GROUPS)
    topics = list(TOPICS)
    rng.shuffle(groups)
    rng.shuffle(topics)
    g, t = int(len(groups) * held_out_share), int(len(topics) * held_out_share)
    return (groups[g:], topics[t:]), (groups[:g], topics[:t])
