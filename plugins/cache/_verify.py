"""The verifier: the step between "a near neighbour was found" and "serve its answer".

Embeddings place "capital of France" next to "capital of Germany"; the verifier reads both
questions and refuses a hit when they differ in what changes the answer: numbers, dates, units,
named things (places, people, products, programming languages and libraries), identifiers such
as order numbers, negation, direction (install/uninstall, A than B / B than A) and the output
format asked for. Rules and word lists were tuned on costmw's own hand-written pairs
(``tests/plugins/cache/data/verifier_dev.tsv``), never on the benchmark data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from costmw.plugin_api import LRUCache

from ._lexicon import DONE_BADLY, DONE_WELL, NAMED_ENTITIES, SCOPE_SKIP
from ._protocol import CacheVerdict
from ._text import Facts, opposite_stems, opposites_of, read_facts, stem

__all__ = ["CHECKS", "RuleVerifier", "Verdict", "Verifier"]

CHECKS = ("identifier", "number", "date", "unit", "format", "negation", "entity", "direction")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verifier's answer: ``ok`` to serve, else ``reason`` names the check that refused."""

    ok: bool
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


_OK = Verdict(True)
_JOINERS = re.compile(r"[\s_\-]+")
_WORD = re.compile(r"[a-z0-9]+")
_PRESENT = frozenset({"today"})


class Verifier:
    """Decides whether the answer cached for one question may serve another that looks like it.

    ``checks`` picks which of :data:`CHECKS` run (all by default). Readings of texts are kept in
    a small LRU, so a cached question is read once however often it is a candidate.
    """

    def __init__(self, checks: Iterable[str] | None = None, cache_size: int = 8192) -> None:
        chosen = tuple(CHECKS if checks is None else checks)
        unknown = [c for c in chosen if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown verifier check(s) {unknown}; choose from {list(CHECKS)}")
        self.checks = chosen
        self._runs: list[Callable[[Facts, Facts], Verdict | None]] = [getattr(self, f"_{c}") for c in chosen]
        self._facts: LRUCache[str, Facts] = LRUCache(cache_size)

    def facts(self, text: str) -> Facts:
        found = self._facts.get(text)
        if found is None:
            found = read_facts(text)
            self._facts.put(text, found)
        return found

    def reading(self, text: str) -> dict[str, object]:
        """This verifier's reading of ``text`` as JSON data, to store with a cached answer."""
        return self.facts(text).to_data()

    def remember(self, text: str, reading: dict[str, object] | str) -> bool:
        """Use a stored ``reading`` of ``text`` (its data or JSON text) instead of reading it
        again; False when it is of an older format or malformed (the text is then read at the
        next check)."""
        if text in self._facts:
            return True
        if isinstance(reading, str):
            try:
                reading = json.loads(reading)
            except ValueError:
                return False
            if not isinstance(reading, dict):
                return False
        facts = Facts.from_data(reading)
        if facts is None:
            return False
        self._facts.put(text, facts)
        return True

    def check(self, query: str, cached: str) -> Verdict:
        """Whether the answer cached for ``cached`` also answers ``query``."""
        if query == cached:
            return _OK
        q, c = self.facts(query), self.facts(cached)
        for run in self._runs:
            verdict = run(q, c)
            if verdict is not None:
                return verdict
        return _OK

    __call__ = check

    # -- the checks: each returns a refusing Verdict, or None to pass ------------------------
    @staticmethod
    def _identifier(q: Facts, c: Facts) -> Verdict | None:
        for ident in q.identifiers:
            if not _names_identifier(c, ident):
                return Verdict(False, "identifier", ident)
        for ident in c.identifiers:
            if not _names_identifier(q, ident):
                return Verdict(False, "identifier", ident)
        return None

    @staticmethod
    def _number(q: Facts, c: Facts) -> Verdict | None:
        if q.numbers != c.numbers:
            return Verdict(False, "number", _diff(q.numbers, c.numbers))
        return None

    @staticmethod
    def _date(q: Facts, c: Facts) -> Verdict | None:
        # "today" is when a question without a date is asked: "today's most used tokenizers"
        if q.dates != c.dates and not (q.dates | c.dates == _PRESENT and not (q.dates and c.dates)):
            return Verdict(False, "date", _diff(q.dates, c.dates))
        return None

    @staticmethod
    def _unit(q: Facts, c: Facts) -> Verdict | None:
        if q.units and c.units and q.units != c.units:
            return Verdict(False, "unit", _diff(q.units, c.units))
        return None

    @staticmethod
    def _format(q: Facts, c: Facts) -> Verdict | None:
        if q.formats != c.formats:
            return Verdict(False, "format", _diff(q.formats, c.formats))
        return None

    @staticmethod
    def _negation(q: Facts, c: Facts) -> Verdict | None:
        """Refuses when one text negates and the other does not negate at all ("must not be
        taken with alcohol" / "safe to take with alcohol"), or negates a word the other says
        plainly ("not safe" / "safe"), or, when the negated word is missing from the other text
        and that text negates nothing near it, the word after it is there ("don't need
        internet" / "require internet"). Texts that negate the same words, each in its own way,
        pass: "has no effect" / "is ignored", "without needing a server" / "with no server",
        "won't start" / "does not start"."""
        for a, b in ((q, c), (c, q)):
            reached = a.negated if b.prevents else a.negated | a.avoided
            reached = frozenset(s for s in reached if not opposite_stems(s) & b.stems)  # "not required" / "optional"
            if not reached or a.near & b.near:  # nothing negated, or both negate around the same words
                continue
            if a.cued and not b.negates:  # only one of the two texts negates at all
                return Verdict(False, "negation", f"{min(reached)} negated in one text only")
            badly = bool(a.words & DONE_WELL and b.words & DONE_BADLY)  # "not ... well" / "poorly"
            for said in sorted(reached):
                if said in b.stems and said not in b.near and not badly:
                    return Verdict(False, "negation", said)
            if not (b.negated or b.avoided) and not (reached & b.stems):
                for said in sorted(a.near - reached):
                    if said in b.stems:
                        return Verdict(False, "negation", said)
        return None

    @staticmethod
    def _entity(q: Facts, c: Facts) -> Verdict | None:
        q_only = [e for e in q.entities if not _named_in(e, c)]
        c_only = [e for e in c.entities if not _named_in(e, q)]
        q_mod = [m for m in q.modifiers if m not in c.words]
        c_mod = [m for m in c.modifiers if m not in q.words]
        if q_mod and c_mod:  # "the HTTP port" / "the FTP port"; "HTTP" alone may go unsaid
            return Verdict(False, "entity", f"{q_mod} vs {c_mod}")
        if (q_only and (c_only or not c.entities)) or (c_only and not q.entities):
            return Verdict(False, "entity", f"{q_only} vs {c_only}")
        return None

    @staticmethod
    def _direction(q: Facts, c: Facts) -> Verdict | None:
        # words, then stems for inflected forms ("enabled" / "disabled", "installed" / "uninstalled")
        for mine, theirs, opposites, key in ((q.words, c.words, opposites_of, stem),
                                             (q.stems, c.stems, opposite_stems, str)):
            for word in mine:
                for other in opposites(word):
                    if other in theirs and other not in mine and word not in theirs and \
                            key(other) not in q.stems and key(word) not in c.stems and \
                            key(word) not in q.negated and key(other) not in c.negated:  # "disabled" / "not enabled"
                        return Verdict(False, "direction", f"{word} vs {other}")
        for a, b in q.pairs:
            if (b, a) in c.pairs and (a, b) not in c.pairs:
                return Verdict(False, "direction", f"{a}->{b} vs {b}->{a}")
        return None


def _named_in(entity: str, other: Facts) -> bool:
    """Whether ``other`` names ``entity`` (a known name exactly; other names also as part of a word)."""
    if entity in other.words:
        return True
    if entity in NAMED_ENTITIES or len(entity) < 4:
        return False
    return any(len(w) >= 4 and w not in NAMED_ENTITIES and (entity in w or w in entity) for w in other.words)


def _names_identifier(other: Facts, ident: str) -> bool:
    """Whether ``other`` names ``ident``: verbatim; hyphenated parts as separate words; a call
    ``print()`` as "print"; for ``owner.specific_name``, by its last part alone when that part is
    specific (an underscore, or 8 letters or more) and ``other`` gives it no other owner; a quoted
    ``DatasetBuilder`` as "dataset builder"; a quoted phrase of three words or more by its content
    words."""
    if _mentions(other.lower, ident):
        return True
    if "-" in ident and ident.replace("-", "").isalnum() and _mentions(other.lower, ident.replace("-", " ")):
        return True  # "a 7B-parameter model" / "a 7B parameter model"
    call = ident.endswith(("(", "()"))  # "print()" (its closing parenthesis may be trimmed with punctuation)
    base = ident.rstrip("()")
    if call and base.replace("_", "").replace(".", "").isalnum() and (
            _mentions(other.lower, base) or _mentions(other.lower, base + "(")):
        return True  # "print()" / "the print function"
    if "." in base and not any(c in base for c in "/@ \\"):
        last = base.rsplit(".", 1)[1]
        if ("_" in last or len(last) >= 8) and (_mentions(other.lower, last) or _mentions(other.lower, last + "()")):
            return not any(o != ident and o.rstrip("()").endswith("." + last) for o in other.identifiers)
        return False
    if base.isalpha() and len(base) >= 8:
        return base in _JOINERS.sub("", other.lower)
    words = [w for w in _WORD.findall(base) if w not in SCOPE_SKIP]
    if len(_WORD.findall(base)) >= 3 and words:
        return all(stem(w) in other.stems for w in words)
    return False


def _mentions(text: str, ident: str) -> bool:
    """Whether ``ident`` occurs in ``text`` as a whole word (no word character either side).

    A plain scan, not a regex built per identifier: identifiers are new with every question, so
    such patterns would be compiled on every check."""
    if not ident:
        return True
    start = text.find(ident)
    while start >= 0:
        end = start + len(ident)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _word_char(before) and not _word_char(after):
            return True
        start = text.find(ident, start + 1)
    return False


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _diff(a: frozenset[str], b: frozenset[str]) -> str:
    return f"{sorted(a - b)} vs {sorted(b - a)}"


class RuleVerifier:
    """:class:`Verifier` behind the verifier protocol (:class:`CacheVerifier`)."""

    def __init__(self) -> None:
        import hashlib
        from pathlib import Path

        self.rules = Verifier()
        digest = hashlib.sha256()
        for name in ("_verify.py", "_text.py", "_lexicon.py"):
            digest.update(Path(__file__).with_name(name).read_bytes())
        self.version = f"rules/{digest.hexdigest()[:12]}"

    def check(self, query: str, cached: str) -> CacheVerdict:
        verdict = self.rules.check(query, cached)
        return CacheVerdict(verdict.ok, 1.0 if verdict.ok else 0.0, verdict.reason or "rules", verdict.detail)

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        import asyncio

        return await asyncio.to_thread(lambda: [self.check(query, c) for c in candidates])
