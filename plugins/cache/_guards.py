"""Hard guards: readings of two questions that settle "different answer" without a model.

Each guard reads one kind of thing whose change always changes the answer, and refuses only
when both questions state it and they state it differently: numbers (with their units),
identifiers and code, quoted text, what is negated, and the order of the two sides of a
conversion or comparison ("fraction to decimal" / "decimal to fraction"). Anything a guard
cannot settle is left to the verifier's model: a question that drops a number ("World War I" /
"world war 1"), says a thing in other words, or wraps itself in politeness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ._protocol import CacheVerdict

__all__ = ["Reading", "guard", "read"]



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Closed classes, not phrase lists: number words, units of measure, negation cues, the
# prepositions that order two sides, and the few words that carry no content.
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"))}
_UNITS = _words("""
mm cm m km inch inches ft foot feet yd yard yards mi mile miles nm um mg g kg lb lbs pound pounds
oz ounce ounces ton tons tonne tonnes ml l liter liters litre litres gal gallon gallons cup cups s
sec secs second seconds ms min mins minute minutes h hr hrs hour hours day days week weeks month
months year years b kb mb gb tb pb kib mib gib tib byte bytes bit bits kbps mbps gbps hz khz mhz ghz
c f k celsius fahrenheit kelvin degree degrees percent % px pt em rem usd eur gbp jpy dollar dollars
euro euros cent cents $ € £ ¥ w kw mw kwh v volt volts watt watts amp amps mph kph rpm calorie
calories kcal
""")
# A negation followed by one of these opens an inverted question ("why doesn't my code work"):
# the words after it are its subject, not what it negates, so the guard leaves it to the model.
_SUBJECTS = _words("a an the this that these those my your our their its his her it i you we they he she")
_NEGATIONS = frozenset(("not", "no", "never", "without", "cannot", "nothing", "none", "nor"))
_ORDERING = frozenset(("to", "into", "than"))
_FUNCTION_WORDS = _words("""
a an the this that these those my your our their its his her it i you we they he she me us them is
are was were be been being am do does did done have has had will would can could should may might
must shall of in on at by for with from as about and or but if so then than to into what which who
whom whose how why when where there here any some all each every more most very just also only
""")

_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”|(?<!\w)'([^'\n]+)'(?!\w)")
_IDENT = re.compile(
    r"\b(?:https?|ftp)://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"   # URLs, e-mail
    r"|(?<!\w)(?:[\w.~-]*/){1,}[\w.~-]+"                              # paths
    r"|#\d+|\b\w+\(\)"                                                # ticket numbers, calls
    r"|\b[A-Za-z]\w*(?:[_.][A-Za-z0-9]\w*)+\b"                        # snake_case, dotted.name
    r"|\b[a-z]+[A-Z]\w*\b"                                            # camelCase
    r"|\b(?=[A-Za-z-]*\d)(?=[\d-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b"  # E1042, CODE-123, gpt-4
)
_NUMBER = re.compile(r"(?<![\w.])[$€£¥]?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?%?(?![\w.]*[A-Za-z_])")
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?|[$€£¥%]|\d[\d,]*(?:\.\d+)?")
_CLAUSE = re.compile(r"[,.;:!?()\n]")


@dataclass(frozen=True, slots=True)
class Reading:
    """What the guards compare, read once per text."""

    numbers: frozenset[str]
    quantities: frozenset[tuple[str, str]]
    identifiers: frozenset[str]
    quoted: frozenset[str]
    words: frozenset[str]
    negated: frozenset[str]
    ordered: frozenset[tuple[str, str]]
    sequence: tuple[str, ...]


def _chat_token(token: str) -> bool:
    """Shorthand that the identifier pattern would take for code: "w/o" and "b/c" (every part one
    character), and short lowercase letter-digit mixes ("b4", "gr8", "2nd")."""
    if "/" in token and all(len(part) <= 1 for part in token.split("/")):
        return True
    return len(token) <= 3 and token.islower() and token.isalnum()


def _number(text: str) -> str:
    value = text.strip("$€£¥%").replace(",", "")
    value = re.sub(r"(st|nd|rd|th)$", "", value)
    try:
        return repr(float(value)).removesuffix(".0")
    except ValueError:
        return value


def _stem(word: str) -> str:
    """A plural, possessive or third-person "-s" taken off, so "works" and "work" are one word."""
    w = word.lower().replace("’", "'")
    if w.endswith("n't"):
        return w[:-3]
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


@lru_cache(maxsize=16384)
def read(text: str) -> Reading:
    """The guards' reading of ``text``."""
    codes = frozenset(m.group().strip("`").strip() for m in _CODE.finditer(text))
    plain = _CODE.sub(" ", text)
    quoted = frozenset((m.group(1) or m.group(2) or m.group(3)).strip().lower() for m in _QUOTED.finditer(plain))
    found = (m.group().rstrip(".,;:!?)") for m in _IDENT.finditer(plain))
    idents = frozenset(ident for ident in found if not _chat_token(ident)) | codes
    bare = _IDENT.sub(" ", plain)
    tokens = [t.lower() for t in _WORD.findall(bare)]
    numbers: list[str] = []
    quantities: set[tuple[str, str]] = set()
    for i, tok in enumerate(tokens):
        if tok[0].isdigit() or tok in _NUMBER_WORDS:
            value = _NUMBER_WORDS.get(tok) or _number(tok)
            numbers.append(value)
            after = tokens[i + 1] if i + 1 < len(tokens) else ""
            before = tokens[i - 1] if i else ""
            unit = before if before and before in "$€£¥" else after if after in _UNITS else ""
            if unit:
                quantities.add((value, unit.rstrip("s") if len(unit) > 3 else unit))
    for m in _NUMBER.finditer(bare):
        if m.group().startswith(("$", "€", "£", "¥")) or m.group().endswith("%"):
            quantities.add((_number(m.group()), m.group()[0] if not m.group()[0].isdigit() else "%"))
    sequence = tuple(_stem(t) for t in tokens if t[0].isalpha() and t not in _FUNCTION_WORDS)
    return Reading(frozenset(numbers), frozenset(quantities), idents, quoted,
                   frozenset(_stem(t) for t in tokens), _negated(bare), _ordered(tokens), sequence)


def _negated(text: str) -> frozenset[str]:
    """Content words a negation reaches: from the cue to the end of its clause, function words
    left out ("is not safe" negates "safe"; "if you don't mind" negates "mind"); none for an
    inverted question's cue, whose subject comes next."""
    out: set[str] = set()
    for clause in _CLAUSE.split(text):
        words = [w.lower().replace("’", "'") for w in _WORD.findall(clause)]
        for i, word in enumerate(words):
            if word in _NEGATIONS or word.endswith("n't"):
                if i + 1 < len(words) and words[i + 1] in _SUBJECTS and word not in ("no", "without"):
                    break
                out.update(_stem(w) for w in words[i + 1:] if w not in _FUNCTION_WORDS and w not in _NEGATIONS
                           and not w.endswith("n't"))
                break
    return frozenset(out)


def _ordered(tokens: list[str]) -> frozenset[tuple[str, str]]:
    """(a, b) for "a to b", "a into b", "a than b", "from b ... to a" read as going a -> b."""
    pairs: set[tuple[str, str]] = set()
    content = [t for t in tokens if t not in _FUNCTION_WORDS or t in _ORDERING or t == "from"]
    for i in range(1, len(content) - 1):
        if content[i] in _ORDERING and content[i - 1] not in _ORDERING and content[i + 1] not in _ORDERING:
            a, b = content[i - 1], content[i + 1]
            if (i >= 2 and content[i - 2] == "from") or a != "from":
                pairs.add((_stem(a), _stem(b)))
    return frozenset(pairs)


def _alpha_parts(ident: str) -> frozenset[str]:
    return frozenset(_stem(p) for p in re.findall(r"[A-Za-z]{3,}", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", ident)))


def _names(other: str, others: frozenset[str], ident: str) -> bool:
    """Whether ``other`` (with identifiers ``others``) names ``ident``: as written, its parts in
    order as words (``print()`` / "print", ``max_tokens`` / "max tokens"), or every word-like part
    of it as a word ("Node.js" / "node", "COVID-19" / "covid") when ``other`` has no identifier
    of its own with the same parts ("gpt-4" / "gpt-3" is a change, not a mention)."""
    low = other.lower()
    bare = ident.lower().rstrip("()")
    if bare in low:
        return True
    parts = [p for p in re.split(r"[_.\-/\s]+|(?<=[a-z])(?=[A-Z])", ident.rstrip("()")) if p]
    if len(parts) > 1 and " ".join(p.lower() for p in parts) in " ".join(_WORD.findall(low)):
        return True
    alpha = _alpha_parts(ident)
    if not alpha or any(_alpha_parts(o) == alpha for o in others):
        return False
    return alpha <= {_stem(w) for w in _WORD.findall(low)}


def guard(query: str, cached: str) -> CacheVerdict | None:
    """A refusing verdict when a guard settles that the two questions differ; else None."""
    q, c = read(query), read(cached)
    if q.numbers - c.numbers and c.numbers - q.numbers:  # a number replaced, not one added
        return CacheVerdict(False, 0.0, "guard:number", f"{sorted(q.numbers)} vs {sorted(c.numbers)}")
    for value in {v for v, _ in q.quantities} & {v for v, _ in c.quantities}:
        units_q = {u for v, u in q.quantities if v == value}
        units_c = {u for v, u in c.quantities if v == value}
        if not units_q & units_c:
            return CacheVerdict(False, 0.0, "guard:unit", f"{min(units_q)} vs {min(units_c)}")
    for mine, theirs, text in ((q.identifiers, c.identifiers, cached), (c.identifiers, q.identifiers, query)):
        for ident in mine - theirs:
            if not _names(text, theirs, ident):
                return CacheVerdict(False, 0.0, "guard:identifier", ident)
    if q.quoted and c.quoted and q.quoted != c.quoted:
        return CacheVerdict(False, 0.0, "guard:quoted", f"{sorted(q.quoted)} vs {sorted(c.quoted)}")
    for a, b in ((q, c), (c, q)):
        said = (a.negated & b.words) - b.negated
        if said and not b.negated:
            return CacheVerdict(False, 0.0, "guard:negation", min(said))
    for x, y in q.ordered:
        if (y, x) in c.ordered and (x, y) not in c.ordered:
            return CacheVerdict(False, 0.0, "guard:direction", f"{x} to {y} vs {y} to {x}")
    if q.sequence != c.sequence and len(q.sequence) > 1 and sorted(q.sequence) == sorted(c.sequence):
        # the same content words in another order: who does what to whom has changed
        return CacheVerdict(False, 0.0, "guard:order", " ".join(c.sequence))
    return None
