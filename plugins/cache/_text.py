"""Reading a question for what changes its answer: numbers, dates, units, names, identifiers,
negation, the output format asked for. The verifier compares two of these readings."""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from . import _lexicon as lx

__all__ = ["READING_FORMAT", "Facts", "lemma", "opposite_stems", "read_facts", "stem"]

#: Stored readings carry this tag and are used only when it matches: change it whenever
#: ``read_facts`` or the word lists would read some text differently.
READING_FORMAT = "facts/3"

_CONTRACTIONS = ((re.compile(r"\b(can)'t\b", re.I), r"\1 not"), (re.compile(r"\bwon't\b", re.I), "will not"),
                 (re.compile(r"\bshan't\b", re.I), "shall not"), (re.compile(r"n't\b", re.I), " not"))
_TOKEN = re.compile(r"[$€£¥%]|[A-Za-z0-9_]+(?:[.\-/+#@&'][A-Za-z0-9_]+)*(?:\+\+|#)?")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(\d{1,3}(?:,\d{3})+|\d+)((?:\.\d+)*)(?:st|nd|rd|th)?(?![A-Za-z0-9_])")
_VERSION = re.compile(r"\bv(\d+(?:\.\d+)+)\b", re.I)
_QUOTED = re.compile(r"`([^`]{1,80})`|(?<![\w])'([^'\n]{1,60})'(?![\w])|\"([^\"\n]{1,60})\"|[“‘]([^”’\n]{1,60})[”’]")
_IDENT = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                      # e-mail
    r"|https?://\S+|www\.\S+"                             # URL
    r"|(?<![\w])(?:/[\w.\-]+){2,}|[A-Za-z]:\\[\w\\.\-]+"  # path
    r"|#\d+"                                              # ticket, build, order number
    r"|\b\w+\(\)"                                         # a call
    r"|\b[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)+\b"             # snake_case, dotted.name
    r"|\b(?=[\w-]*\d)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b"    # CODE-123
    r"|\b[a-z]+[A-Z]\w*\b"                                # camelCase
    r"|\b(?=\w*\d)(?=\w*[A-Za-z])\w+\b"                   # letters and digits mixed: E1042, jsmith42
)
# Every kind of _IDENT match holds one of these; most questions hold none, and skip the long scan.
_IDENT_HINT = re.compile(r"[@/\\#_\d]|\(\)|\w\.\w|[a-z][A-Z]").search
_QUOTE_HINT = re.compile("[`'\"“‘]").search
_PLAIN_NUMBER_WORD = re.compile(r"^\d+(?:st|nd|rd|th)?(?:-?[a-z]{3,})?$")
_LIST_MARKER = re.compile(r"(?m)(?:^\s*|[:;]\s+)\(?\d{1,2}[.)](?=\s)")
_DIGIT = re.compile(r"\d").search
_ACRONYM_PLURAL = re.compile(r"[A-Z][A-Z0-9]+s").fullmatch
_OR_NOT = re.compile(r"\bor not\b", re.I)
_INTERJECTION = re.compile(r"^\s*(?:yes|no|yeah|nope|sure|ok|okay)\s*[,.!]\s+", re.I)
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*[\"'“‘(\[]*")
_CLAUSE_END = re.compile(r"[,.;:!?()\[\]\n]|\s-\s|—")
_PRONOUNS = frozenset({"it", "them", "one", "ones", "this", "that", "these", "those", "him", "her", "us", "me"})
_CUES = frozenset({"to", "into", "than", "from", "in", "vs", "versus", "over", "per", "before", "after"})
_MULTIPLIERS = {"hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_DATE_CONTEXT = frozenset({"in", "on", "of", "during", "since", "until", "by", "this", "next", "last", "early",
                           "late", "mid", "every"})


def _phrases() -> dict[tuple[str, ...], str]:
    names: set[str] = set()
    names.update(lx.NAMED_ENTITIES, lx.FORMATS, (w for pair in lx.OPPOSITES for w in pair))
    return {tuple(n.split("_")): n for n in names if "_" in n}


_PHRASES = _phrases()
_MAX_PHRASE = max(len(p) for p in _PHRASES)
_PHRASE_STARTS = frozenset(p[0] for p in _PHRASES)
_OPPOSITE_OF: dict[str, set[str]] = {}


@functools.lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """A crude singular, lower-case form, enough to match 'dicts' with 'dict'."""
    w = _bare(word)
    if _ACRONYM_PLURAL(word):  # LLMs, APIs, GPUs
        return w[:-1]
    if w in lx.NAMED_ENTITIES or word[1:] != word[1:].lower():
        return w
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if (len(w) > 4 and w.endswith("es") and w[-3] in "sxz") or w.endswith(("ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in lx.STOPWORDS:
        return w[:-1]
    return w


@functools.lru_cache(maxsize=65536)
def _bare(word: str) -> str:
    """Lower case without a possessive ending."""
    w = word.lower()
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    return w.rstrip("'’")


for _a, _b in lx.OPPOSITES:
    _OPPOSITE_OF.setdefault(lemma(_a), set()).add(lemma(_b))
    _OPPOSITE_OF.setdefault(lemma(_b), set()).add(lemma(_a))


@dataclass(frozen=True, slots=True)
class Facts:
    """What one text says that a cached answer depends on."""

    lower: str
    words: frozenset[str]
    numbers: frozenset[str]
    units: frozenset[str]
    dates: frozenset[str]
    entities: tuple[str, ...]
    modifiers: frozenset[str]  # everyday acronyms used as modifiers: "an HTTP status code"
    identifiers: frozenset[str]
    formats: frozenset[str]
    negated: frozenset[str]
    avoided: frozenset[str]
    near: frozenset[str]
    prevents: bool
    cued: bool
    negates: bool
    stems: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    def to_data(self) -> dict[str, object]:
        """Plain JSON data (sorted lists), tagged with :data:`READING_FORMAT`."""
        return {"format": READING_FORMAT, "lower": self.lower, "words": sorted(self.words),
                "numbers": sorted(self.numbers), "units": sorted(self.units), "dates": sorted(self.dates),
                "entities": list(self.entities), "modifiers": sorted(self.modifiers),
                "identifiers": sorted(self.identifiers),
                "formats": sorted(self.formats), "negated": sorted(self.negated),
                "avoided": sorted(self.avoided), "near": sorted(self.near),
                "prevents": self.prevents, "cued": self.cued, "negates": self.negates,
                "stems": sorted(self.stems), "pairs": sorted(self.pairs)}

    @classmethod
    def from_data(cls, data: dict[str, object]) -> Facts | None:
        """The reading ``to_data`` wrote, or None when it is of another format or malformed."""
        if data.get("format") != READING_FORMAT:
            return None
        try:
            def strings(name: str) -> frozenset[str]:
                return frozenset(str(x) for x in data[name])  # type: ignore[attr-defined]

            pairs = frozenset((str(a), str(b)) for a, b in data["pairs"])  # type: ignore[attr-defined]
            return cls(lower=str(data["lower"]), words=strings("words"), numbers=strings("numbers"),
                       units=strings("units"), dates=strings("dates"),
                       entities=tuple(str(x) for x in data["entities"]),  # type: ignore[attr-defined]
                       modifiers=strings("modifiers"),
                       identifiers=strings("identifiers"), formats=strings("formats"),
                       negated=strings("negated"), avoided=strings("avoided"), near=strings("near"),
                       prevents=bool(data["prevents"]), cued=bool(data["cued"]),
                       negates=bool(data["negates"]),
                       stems=strings("stems"), pairs=pairs)
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(slots=True)
class _Token:
    raw: str
    low: str
    lem: str
    initial: bool
    brk: bool = False  # punctuation stands between this token and the one before


def _tokens(text: str) -> list[_Token]:
    starts = {m.end() for m in _SENTENCE_END.finditer(text)}
    out: list[_Token] = []
    end = 0
    for m in _TOKEN.finditer(text):
        raw = m.group(0)
        initial = not out or m.start() in starts
        brk = bool(out) and _CLAUSE_END.search(text, end, m.start()) is not None
        out.append(_Token(raw, _bare(raw), lemma(raw), initial, brk))
        end = m.end()
    return _join_phrases(out)


def _join_phrases(tokens: list[_Token]) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(tokens):
        if tokens[i].low not in _PHRASE_STARTS:
            out.append(tokens[i])
            i += 1
            continue
        for n in range(min(_MAX_PHRASE, len(tokens) - i), 1, -1):
            key = tuple(t.low for t in tokens[i:i + n])
            name = _PHRASES.get(key) or _PHRASES.get((*key[:-1], tokens[i + n - 1].lem))
            if name:
                raw = " ".join(t.raw for t in tokens[i:i + n])
                out.append(_Token(raw, name, name, tokens[i].initial, tokens[i].brk))
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _canonical_number(digits: str, decimals: str = "") -> str:
    digits = digits.replace(",", "")
    if decimals.count(".") >= 2:
        return digits + decimals
    return f"{float(digits + decimals):.12g}"


def _numbers(text: str, tokens: list[_Token]) -> set[str]:
    text = _LIST_MARKER.sub(" ", text)
    found = {_canonical_number(*m.groups()) for m in _NUMBER.finditer(text)}
    found |= {_canonical_number(v.split(".", 1)[0], "." + v.split(".", 1)[1]) for v in _VERSION.findall(text)}
    values: list[float] = []
    for i, t in enumerate(tokens):
        prev = tokens[i - 1].low if i else ""
        for part in t.low.split("-"):
            if part in lx.ORDINALS and prev not in lx.DETERMINERS:
                continue
            if part == "second" and (prev == "per" or _is_number(prev)):
                continue
            if part in _MULTIPLIERS and not (_is_number(prev) or prev in ("a", "one")):
                continue
            if part == "zero" and _zero_negates(tokens, i):
                continue
            if part in lx.NUMBER_WORDS:
                values.append(lx.NUMBER_WORDS[part])
            elif part in lx.ROMAN and t.raw.isupper():
                values.append(float(lx.ROMAN[part]))
    found |= {f"{v:.12g}" for v in _combine(values)}
    return found


def _combine(values: list[float]) -> list[float]:
    """'twenty five' -> 25, 'two hundred' -> 200 (adjacent number words read as one number)."""
    out: list[float] = []
    for v in values:
        if out and v in _MULTIPLIERS.values() and out[-1] < v:
            out[-1] *= v
        elif out and 20 <= out[-1] < 100 and out[-1] % 10 == 0 and 0 < v < 10:
            out[-1] += v
        else:
            out.append(v)
    return out


def _is_number(word: str) -> bool:
    return word.replace(",", "").replace(".", "", 1).isdigit() or word in lx.NUMBER_WORDS


def _identifiers(text: str) -> set[str]:
    found: set[str] = set()
    for m in _QUOTED.finditer(text) if _QUOTE_HINT(text) else ():
        inner = next(g for g in m.groups() if g is not None)
        found.add(" ".join(inner.lower().split()))
    for m in _IDENT.finditer(text) if _IDENT_HINT(text) else ():
        ident = m.group(0).lower().rstrip(".,;:!?)'\"")
        if ident.endswith("'s"):
            ident = ident[:-2]
        if _PLAIN_NUMBER_WORD.match(ident) or ident in lx.NAMED_ENTITIES or ident in ("e.g", "i.e", "etc"):
            continue
        if _VERSION.fullmatch(ident) or re.fullmatch(r"[\d.,]+", ident):
            continue
        found.add(ident)
    return found


def _is_entity(t: _Token, prev: _Token | None) -> bool:
    if t.lem in lx.STOPWORDS or t.low in lx.STOPWORDS or t.raw == "I" or t.lem in lx.DATES:
        return False
    name = t.low if t.low in lx.NAMED_ENTITIES else t.lem if t.lem in lx.NAMED_ENTITIES else None
    shaped = len(t.raw) > 1 and (t.raw.isupper() or (t.raw[0].isupper() and any(c.isupper() for c in t.raw[1:])))
    capital = t.raw[:1].isupper() and not t.initial
    if name is not None:
        if name not in lx.AMBIGUOUS_NAMES:
            return True
        return capital or shaped or (prev is not None and prev.low in lx.PREPOSITIONS)
    if t.low in lx.FORMATS or t.low in lx.UNITS or _DIGIT(t.raw):
        return False
    return shaped or (capital and not t.low.endswith("ing"))


def _modifier(tokens: list[_Token], i: int, key: str) -> bool:
    """An everyday acronym used as a modifier ("an HTTP status code", "the API response") names
    no one thing; as the head of a phrase ("the URL of the page") it still counts."""
    if key not in lx.GENERIC_ACRONYMS or i + 1 >= len(tokens):
        return False
    after = tokens[i + 1]
    return not after.brk and after.low not in lx.STOPWORDS and after.low not in lx.PREPOSITIONS


def _units(tokens: list[_Token]) -> set[str]:
    found: set[str] = set()
    for i, t in enumerate(tokens):
        for part in t.low.split("-") if "-" in t.low else [t.low]:
            unit = lx.UNITS.get(part) or lx.UNITS.get(lemma(part))
            if unit is None:
                continue
            weak = (len(part) <= 3 and part not in ("$", "€", "£", "¥", "%", "km", "kg", "mph", "usd", "eur", "gbp")) \
                or unit in lx.COUNT_UNITS
            if weak and not (i and _is_number(tokens[i - 1].low)) and "-" not in t.low:
                continue
            prev = tokens[i - 1].low if i else ""
            if part in ("second", "pound") and not (prev in ("per", "a") or _is_number(prev)):
                continue
            if t.low == "in" and i + 1 < len(tokens) and not tokens[i + 1].brk and tokens[i + 1].low not in ("x", "by"):
                continue  # "$7.5 billion in stock": a preposition; "a 12 in. screen", "8 in x 10 in": inches
            found.add(unit)
    return found


def _dates(tokens: list[_Token]) -> set[str]:
    found: set[str] = set()
    for i, t in enumerate(tokens):
        date = lx.DATES.get(t.low)
        if date is None:
            continue
        if t.low in lx.AMBIGUOUS_DATES:
            near = [tokens[j].low for j in (i - 1, i + 1) if 0 <= j < len(tokens)]
            if not (t.raw[0].isupper() and not t.initial) and not any(
                    _is_number(w) or w in _DATE_CONTEXT for w in near[:1]) and not any(_is_number(w) for w in near):
                continue
        found.add(date)
    return found


def read_facts(text: str) -> Facts:
    """Read ``text`` once; the verifier compares two readings."""
    text = text.replace("’", "'").replace("‘", "'") if "’" in text and "‘" not in text else text
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = _INTERJECTION.sub("", _OR_NOT.sub(" ", text))
    tokens = _tokens(text)
    words: set[str] = set()
    for t in tokens:
        words.update((t.low, t.lem))
        if "-" in t.low:
            words.update(lemma(p) for p in t.low.split("-"))
    words.update(_acronyms(tokens))
    words.update(lx.ALIASES[w] for w in list(words) if w in lx.ALIASES)
    entities: list[str] = []
    modifiers: set[str] = set()
    for i, t in enumerate(tokens):
        key = t.low if t.low in lx.NAMED_ENTITIES else t.lem
        key = lx.ALIASES.get(key, key)
        if _is_entity(t, tokens[i - 1] if i else None) and key not in entities:
            if _modifier(tokens, i, key):
                modifiers.add(key)
            else:
                entities.append(key)
    formats = {lx.FORMATS[w] for w in (t.low for t in tokens) if w in lx.FORMATS}
    formats |= {lx.FORMATS[t.lem] for t in tokens if t.lem in lx.FORMATS}
    formats |= {lx.FORMATS[t.low[:-5]] for t in tokens if t.low.endswith("-like") and t.low[:-5] in lx.FORMATS}
    units = _units(tokens)
    pairs = _directed_pairs(tokens, entities, units)
    negated, avoided, near, prevents, cued = _negations(tokens)
    negates = bool(negated or avoided or prevents) or any(t.low in lx.NEGATIONS or t.low in lx.RESTRICTING
                                                         for t in tokens)
    stems = {stem(p) for t in tokens if t.low not in lx.SCOPE_SKIP for p in _parts(t.low)}
    return Facts(
        lower=" ".join(text.lower().split()), words=frozenset(words), numbers=frozenset(_numbers(text, tokens)),
        units=frozenset(units), dates=frozenset(_dates(tokens)), entities=tuple(entities),
        modifiers=frozenset(modifiers - set(entities)),
        identifiers=frozenset(_identifiers(text)), formats=frozenset(formats), negated=frozenset(negated),
        avoided=frozenset(avoided), near=frozenset(near), prevents=prevents, cued=cued, negates=negates,
        stems=frozenset(stems),
        pairs=frozenset(pairs),
    )


_ADJECTIVE_ENDS = ("ed", "able", "ible", "ful", "al", "ic", "y", "ive", "ent", "ant", "ous", "ar", "ure", "ate",
                   "own", "ear", "ean", "afe")
_PASSIVE = frozenset({"is", "are", "was", "were", "be", "been", "being", "get", "gets", "got"})
_EASE = frozenset({"simpler", "easier"})
_FUSS = frozenset({"hassle", "effort", "fuss", "trouble", "difficulty"})


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A cruder form than :func:`lemma`, for matching a negated word with its other forms:
    "taking"/"take", "compiled"/"compile", "stopped"/"stop" share one."""
    w = lemma(word)
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ied"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    if len(w) > 3 and ((w[-1] == w[-2] and w[-1] not in "lsz") or w.endswith("e")):  # "stopp", "take"
        w = w[:-1]
    return w


# What "X-ing ... is not ___" says of X-ing: "renaming a column is not possible / not needed".
_MODAL_STEMS = frozenset(stem(w) for w in ("possible", "necessary", "needed", "required", "recommended",
                                            "allowed", "permitted", "supported", "advisable"))


def _parts(word: str) -> list[str]:
    return [p for p in word.split("-") if p] if "-" in word else [word]


def _negations(tokens: list[_Token]) -> tuple[set[str], set[str], set[str], bool, bool]:
    """What a text negates: the stem of the content word each negation reaches (not past the
    end of the clause), the stems that a verb like "avoid" or "prevent" governs, and
    the stems near a negation (the word it reaches and the next), whether the text holds such a
    verb, and whether a negating word ("not", "without", "avoid", ...) reached anything, as opposed
    to words that negate their own stem only ("unused", "serverless", "gluten-free")."""
    cued = False
    negated: set[str] = set()
    near: set[str] = set()
    avoided: set[str] = set()
    prevents = False
    n = len(tokens)
    for i, t in enumerate(tokens):
        low = t.low
        start = i + 1
        target = negated
        said = _self_negated(tokens, i)
        if said:  # a word that negates its own stem: "unused", "serverless", "non-toxic", "gluten-free"
            if i and tokens[i - 1].low in _PASSIVE and set(said) & _MODAL_STEMS:
                said = said + _gerund_subject(tokens, i - 1)  # "renaming it is impossible": renaming is
            negated.update(said)
            near.update(said)
            continue
        if (low, tokens[start].low if start < n else "") in (("instead", "of"), ("rather", "than")):
            _reach(tokens, start + 1, set(), near)  # "rather than modifying it" is near what "does not modify" negates
            continue
        if low == "free" and start < n and tokens[start].low in ("of", "from") and not tokens[start].brk:
            cued = _reach(tokens, start + 1, negated, near) or cued  # "free of gluten"
            continue
        if low in lx.NEGATING_FROM:
            found = next((k for k in range(i + 1, min(i + 6, n)) if tokens[k].low == "from"), None)
            if found is not None and low.startswith(("keep", "kept")) and not (
                    found + 1 < n and tokens[found + 1].low.endswith("ing")):
                found = None  # "kept separate from the system": only "keep ... from doing" prevents
            if found is not None:  # "stop my dog from barking", "keep them from leaking"
                prevents = True
                cued = _reach(tokens, found + 1, avoided, near) or cued
                continue
        if low in lx.PREVENTING:
            if low.startswith("keep"):
                continue
            if i and tokens[i - 1].low in _PASSIVE and low.endswith("ed"):
                prevents = True  # "is ignored", "was skipped": what it governs came before
                continue
            prevents, target = True, avoided
        elif low in lx.NEGATING_TO:
            if start >= n or tokens[start].low != "to":
                continue
            start += 1
        elif low == "zero":
            if not _zero_negates(tokens, i):
                continue
        elif low not in lx.NEGATIONS or _idiom(tokens, i) or (
                start < n and tokens[start].low in lx.NOT_NEGATING and not tokens[start].brk):
            continue
        reached: set[str] = set()
        cued = _reach(tokens, start, reached, near, _inverted(tokens, i)) or cued
        target.update(reached)
        if low == "not" and i and tokens[i - 1].low in _PASSIVE:
            near.update(_subject(tokens, i - 1, start))
            if reached & _MODAL_STEMS:  # "renaming a column is not possible" negates renaming
                gerund = _gerund_subject(tokens, i - 1)
                target.update(gerund)
                near.update(gerund)
    return negated, avoided, near, prevents, cued


def _self_negated(tokens: list[_Token], i: int) -> list[str]:
    """The stems a word negates in itself: "unused" -> "used", "unhealthy" -> "healthy",
    "serverless" -> "server", "non-toxic", "no-code", "zero-configuration", "gluten-free"."""
    low = tokens[i].low
    root = lx.NEGATED_ADJECTIVES.get(low) or (None if low in lx.NEGATIONS else _negated_root(low))
    if root:
        return [stem(root)]
    if low.startswith(("non-", "no-")) or (low.startswith("zero-") and _zero_negates(tokens, i)):
        return [stem(p) for p in _parts(low)[1:]]
    if low.endswith("-free") and len(low) > 5:
        return [stem(p) for p in _parts(low)[:-1]]
    return []


def _gerund_subject(tokens: list[_Token], aux: int) -> list[str]:
    """The stem of the "-ing" word that opens the clause ending at ``aux`` ("Renaming a column
    is"), within four words; none otherwise."""
    for k in range(aux - 1, max(-1, aux - 6), -1):
        t = tokens[k]
        if t.low in lx.CLAUSE_WORDS or t.low in lx.NEGATIONS:
            return []
        if t.low.endswith("ing") and len(t.low) > 4 and (k == 0 or t.brk or tokens[k - 1].low in lx.CLAUSE_WORDS):
            return [stem(t.low)]
        if t.brk:
            return []
    return []


def _subject(tokens: list[_Token], aux: int, start: int) -> list[str]:
    """In a passive "the tokenizer is not provided", the word before "is" is what is missing,
    as in "no tokenizer is passed"."""
    after = next((t for t in tokens[start:start + 3] if t.low not in lx.SCOPE_SKIP), None)
    if after is None or not (after.low.endswith(("ed", "en")) or after.low in ("set", "put", "kept", "built")):
        return []
    for t in reversed(tokens[max(0, aux - 3):aux]):
        if t.low in lx.CLAUSE_WORDS or t.low in lx.NEGATIONS:
            return []
        if t.low not in lx.SCOPE_SKIP:
            return [stem(p) for p in _parts(t.low)]
    return []


def _negated_root(word: str) -> str | None:
    """The word that an "un-" adjective or a "-less" word negates: "unhealthy" -> "healthy",
    "serverless" -> "server". Verbs such as "unpack" or "uninstall" reverse rather than negate
    (the direction check compares those)."""
    if len(word) < 6 or not word.isalpha() or word in lx.NOT_AFFIXED:
        return None
    if word.startswith("un") and not word.startswith(("under", "uni", "unt")) and word.endswith(_ADJECTIVE_ENDS):
        return word[2:]
    if word.endswith("less") and len(word) >= 7:
        return word[:-4]
    return None


def _inverted(tokens: list[_Token], i: int) -> bool:
    """A question that puts "not" before its subject: "why won't my car start", "doesn't the
    build pass": the negated word is the verb after the subject, not the subject."""
    if tokens[i].low != "not" or i + 1 >= len(tokens) or tokens[i + 1].low not in lx.DETERMINERS:
        return False
    if i == 0 or tokens[i - 1].low not in lx.AUXILIARIES:
        return False
    return tokens[i - 1].initial or (i >= 2 and tokens[i - 2].low in lx.QUESTION_WORDS)


def _zero_negates(tokens: list[_Token], i: int) -> bool:
    """Whether "zero" says "no" ("zero copy", "zero-configuration") rather than a number ("divide
    by zero", "zero to sixty", "zero-indexed")."""
    parts = _parts(tokens[i].low)
    if len(parts) > 1:
        follower = parts[1]
    elif i + 1 < len(tokens) and not tokens[i + 1].brk:
        follower = tokens[i + 1].low
    else:
        return False
    if follower.endswith("ed"):  # "zero-indexed", "zero-padded", "zero-based": the number
        return False
    return follower.isalpha() and not _is_number(follower) and follower not in (
        "to", "and", "or", "point", "percent", "through", "until", "if", "when", "is", "are", "in", "on", "at")


def _reach(tokens: list[_Token], start: int, into: set[str], near: set[str], inverted: bool = False) -> bool:
    """Add the stem(s) of the next content word from ``start``, the word a negation reaches, to
    ``into``; that word's and the next one's to ``near`` ("without needing a server" is near
    "server", as "with no server" negates it). ``inverted``: the first content word is the
    subject of an inverted question, and the word reached is the next one. True when it reached
    a word."""
    taken = 0
    head = 1 if inverted else 0
    if not inverted and start < len(tokens) and tokens[start].low in _PRONOUNS and not tokens[start].brk:
        pronoun = stem(tokens[start].low)  # "without one", "that lack one", "no one": not the words after it
        into.add(pronoun)
        near.add(pronoun)
        return True
    last = ""
    for k, t in enumerate(tokens[start:start + 6], start):
        if t.brk or t.low in lx.CLAUSE_WORDS or t.low in lx.NEGATIONS:
            return taken > head
        if t.low in lx.SCOPE_SKIP:
            if taken and t.low in lx.PREPOSITIONS:  # "no effect on Windows": the reach ends
                if taken == 1 and not inverted and last.endswith("ing"):  # "without asking for confirmation"
                    _near_object(tokens, k + 1, near)
                return taken > head
            continue
        last = t.low
        stems = [stem(p) for p in _parts(t.low)]
        if taken == head:
            into.update(stems)
        near.update(stems)
        taken += 1
        if taken == 2:
            return True
    if inverted and taken == 1:  # "why can't Python ...": no word after the subject
        into.update(near & {stem(p) for t in tokens[start:start + 6] for p in _parts(t.low)})
    return taken > 0


def _near_object(tokens: list[_Token], start: int, near: set[str]) -> None:
    """The object of the verb a negation reached, after its preposition, is near the negation."""
    for t in tokens[start:start + 3]:
        if t.brk or t.low in lx.CLAUSE_WORDS:
            return
        if t.low not in lx.SCOPE_SKIP:
            near.update(stem(p) for p in _parts(t.low))
            return


def _idiom(tokens: list[_Token], i: int) -> bool:
    """A negation that says "easily": "nothing is simpler", "could not be easier", "without hassle"."""
    after = [t.low for t in tokens[i + 1:i + 4]]
    return any(w in _EASE for w in after) or (tokens[i].low == "without" and bool(after) and after[0] in _FUSS)


def _acronyms(tokens: list[_Token]) -> set[str]:
    """Initials of short runs of words ("Natural Language Processing" -> "nlp"), so an acronym in
    one text matches the words it stands for in the other."""
    parts = [p for t in tokens for p in t.low.split("-") if p]
    heads = [p[0] for p in parts if p[:1].isalpha() and p not in ("of", "and", "the", "for")]
    return {"".join(heads[i:i + n]) for n in range(2, 6) for i in range(len(heads) - n + 1)}


def _directed_pairs(tokens: list[_Token], entities: list[str], units: set[str]) -> set[tuple[str, str]]:
    """Ordered (a, b) for "a to b", "a than b", "from a into b": order that changes the answer."""
    keys: list[tuple[int, str]] = []
    for i, t in enumerate(tokens):
        key = lx.FORMATS.get(t.low) or (lx.UNITS.get(t.low) if lx.UNITS.get(t.low) in units else None) \
            or next((k for k in (t.low, t.lem) if k in entities), None)
        if key:
            keys.append((i, key))
    pairs: set[tuple[str, str]] = set()
    for (i, a), (j, b) in itertools.pairwise(keys):
        cues = {tokens[k].low for k in range(i + 1, j)} & _CUES
        if a != b and j - i <= 5 and cues:
            pairs.add((b, a) if cues == {"from"} else (a, b))  # "to PostgreSQL from MySQL": MySQL first
    pairs.update(_from_to(tokens))
    pairs.update(_instead_of(tokens))
    return pairs


def _phrase_head(tokens: list[_Token], start: int) -> int | None:
    """The last of the plain words that open the phrase at ``start`` ("the remote server")."""
    head: int | None = None
    for k in range(start, min(start + 4, len(tokens))):
        if tokens[k].brk or (head is not None and not _plain(tokens[k])):
            break
        if _plain(tokens[k]):
            head = k
    return head


def _instead_of(tokens: list[_Token]) -> set[tuple[str, str]]:
    """("copy", "view") for "returns a copy rather than a view": what is chosen over what."""
    pairs: set[tuple[str, str]] = set()
    for i in range(1, len(tokens) - 2):
        if (tokens[i].low, tokens[i + 1].low) not in (("instead", "of"), ("rather", "than")):
            continue
        chosen = next((k for k in range(i - 1, max(-1, i - 4), -1) if _plain(tokens[k])), None)
        over = _phrase_head(tokens, i + 2)
        if chosen is not None and over is not None and stem(tokens[chosen].low) != stem(tokens[over].low):
            pairs.add((stem(tokens[chosen].low), stem(tokens[over].low)))
    return pairs


def _plain(t: _Token) -> bool:
    return t.low not in lx.STOPWORDS and t.low not in lx.PREPOSITIONS and any(ch.isalnum() for ch in t.low)


def _from_to(tokens: list[_Token]) -> set[tuple[str, str]]:
    """("machine", "server") for "copies files from the local machine to the remote server": the
    last plain word between "from" and "to"/"into" and the last of the plain words right after
    it, within one clause."""
    pairs: set[tuple[str, str]] = set()
    for i, t in enumerate(tokens):
        if t.low != "from":
            continue
        for j in range(i + 1, min(i + 6, len(tokens))):
            if tokens[j].brk:
                break
            if tokens[j].low in ("to", "into"):
                source = [k for k in range(i + 1, j) if _plain(tokens[k])]
                target = _phrase_head(tokens, j + 1)
                if source and target is not None and tokens[source[-1]].lem != tokens[target].lem:
                    pairs.add((tokens[source[-1]].lem, tokens[target].lem))
                break
    return pairs


def opposites_of(word: str) -> set[str]:
    return _OPPOSITE_OF.get(word, set())


@functools.lru_cache(maxsize=1)
def _opposite_stems() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for a, b in lx.OPPOSITES:
        if "_" not in a and "_" not in b:
            out.setdefault(stem(a), set()).add(stem(b))
            out.setdefault(stem(b), set()).add(stem(a))
    return {k: frozenset(v) for k, v in out.items()}


def opposite_stems(word_stem: str) -> frozenset[str]:
    """Stems of the opposites of a stem: "not required" says what "optional" says."""
    return _opposite_stems().get(word_stem, frozenset())
