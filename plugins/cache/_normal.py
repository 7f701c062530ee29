"""How the semantic cache reads a question before embedding and verifying it: the way it is
worded is taken out, what it asks is kept.

Two steps, both deterministic:

1. Greetings, thanks, polite openers and hedges go, through the minifier's safe rewrites
   (:func:`costmw.plugins.minifier.strip_pleasantries`: one place for that logic).
2. Misspelled words are corrected against a word-frequency dictionary (symspellpy's English
   dictionary of 82,765 words and its bigram counts, the ``cache`` extra). A word is changed only
   when it is all letters, not in the dictionary, and a common dictionary word lies one edit
   away (a transposition counts as one); among those, the one a bigram language model finds likeliest
   between its neighbours wins ("i fnd my" reads "i find my", not "i and my"). A contraction typed
   without its apostrophe gets it back ("hasnt", "im"); a word of two letters is left as it is, and one of
   three is only given back a dropped letter ("fnd"), never changed letter for letter ("thx" stays "thx").
   A word of four letters or fewer is changed only into one the bigram counts have seen beside one of
   its neighbours ("my ordr" reads "my order"; "pls send" stays, it does not become "plus send").

Numbers, identifiers (``snake_case``, ``dotted.names``, ``camelCase``, ``ACRONYMS``, ``E1042``),
code, URLs, paths, e-mail addresses and quoted text are never changed. Without symspellpy the
second step is skipped; :attr:`Normaliser.version` says which steps ran, so entries stored under
one reading are re-read under another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

__all__ = ["MAX_TEXT_CHARS", "Normaliser", "default_normaliser"]

log = logging.getLogger("costmw.cache")

#: Texts longer than this are not normalised, embedded or verified: they are served by the
#: exact tier only (a long prompt is reworded rarely, and reading it would cost more than it saves).
MAX_TEXT_CHARS = 4000

_UNIGRAMS = "frequency_dictionary_en_82_765.txt"
_BIGRAMS = "frequency_bigramdictionary_en_243_342.txt"
_BACKOFF = 0.4  # weight of a unigram estimate where a bigram was never seen ("stupid backoff")
# A correction must be a common word: an unknown word one edit from a rare one is more likely a
# name the dictionary lacks ("numpy" is not "bumpy") than a typo.
_MIN_COUNT = 1_000_000
# Unknown words this short are corrected only where the bigrams support the correction.
_SHORT_WORD = 4

# Spans that are kept exactly as written, then plain words; anything else is passed through.
_TOKENS = re.compile(
    r"(?P<keep>```.*?```|`[^`\n]*`"                               # code
    r"|\"[^\"\n]*\"|“[^”\n]*”|(?<!\w)'[^'\n]*'(?!\w)"             # quoted text
    r"|\b(?:https?|ftp)://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # URLs, e-mail
    r"|(?:[\w~.-]*[/\\][\w.~\\/-]*)"                              # paths
    r"|[\w$#%]*\d[\w$#%.,:/-]*"                                   # numbers, versions, codes with digits
    r"|\w+(?:[_.]\w+)+|\w*[a-z][A-Z]\w*|[A-Z]{2,}\w*)"            # identifiers, camelCase, ACRONYMS
    r"|(?P<word>[A-Za-z]+(?:['’][A-Za-z]+)?)",
    re.S,
)
_REPEATED = re.compile(r"([?!.])\1+")
_SPACES = re.compile(r"[ \t]+")


class _Speller:
    """Corrects one word at a time, given its neighbours, from symspellpy's dictionaries."""

    def __init__(self) -> None:
        from symspellpy import SymSpell, Verbosity

        folder = Path(importlib.util.find_spec("symspellpy").origin or "").parent  # type: ignore[union-attr]
        self._closest = Verbosity.CLOSEST
        self._sym = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
        self._sym.load_dictionary(str(folder / _UNIGRAMS), term_index=0, count_index=1)
        self._words: dict[str, int] = dict(self._sym.words)
        self._total = float(sum(self._words.values()))
        self._pairs: dict[tuple[str, str], int] = {}
        with open(folder / _BIGRAMS, encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 3:
                    self._pairs[(parts[0], parts[1])] = int(parts[2])

    def known(self, word: str) -> bool:
        return word in self._words

    def correct(self, word: str, before: str, after: str) -> str:
        """The likeliest dictionary word one edit from ``word`` (lower case) between ``before``
        and ``after`` (lower-case neighbours, "" at an edge), or ``word`` when none is."""
        for cut in range(1, len(word)):  # a contraction typed without its apostrophe: "hasnt", "im"
            if f"{word[:cut]}'{word[cut:]}" in self._words:
                return f"{word[:cut]}'{word[cut:]}"
        if len(word) < 3:
            return word
        found = [s for s in self._sym.lookup(word, self._closest, max_edit_distance=1) if s.count >= _MIN_COUNT]
        if len(word) == 3:
            # a short word is one edit from dozens of others ("thx" / "the", "wut" / "but"): only a
            # dropped letter is put back ("fnd" / "find")
            found = [s for s in found if len(s.term) == len(word) + 1]
        if len(word) == 4:
            # nor is a four-letter word changed letter for letter ("meds" / "beds", "tine" / "time"):
            # a short word has too many neighbours one letter apart; a dropped letter put back
            # ("ordr"), two letters swapped ("wnat") or a doubled letter undone ("arre") stay
            found = [s for s in found if len(s.term) == 5 or sorted(s.term) == sorted(word)
                     or (len(s.term) == 3 and any(word[i] == word[i + 1] for i in range(3)))]
        if len(word) <= _SHORT_WORD:
            # a short unknown word is as likely an abbreviation or a word the dictionary lacks ("pls",
            # "meds") as a typo: it is respelt only to a word seen beside one of its neighbours
            found = [s for s in found if (before, s.term) in self._pairs or (s.term, after) in self._pairs]
        if not found:
            return word
        return str(max((s.term for s in found), key=lambda term: self._score(term, before, after)))

    def _score(self, term: str, before: str, after: str) -> float:
        count = float(self._words.get(term, 1))
        p_term = self._given(before, term, count) if before else count / self._total
        p_after = self._given(term, after, float(self._words.get(after, 1))) if after else 1.0
        return p_term * p_after

    def _given(self, first: str, second: str, second_count: float) -> float:
        """P(second | first), backing off to the unigram estimate of ``second``."""
        pair = self._pairs.get((first, second))
        if pair:
            return pair / float(self._words.get(first, pair))
        return _BACKOFF * second_count / self._total


class Normaliser:
    """Reads a question the way the cache compares it: pleasantries out, spelling fixed.

    ``spelling``: correct misspelled words ("auto": when symspellpy is installed). ``version``
    is a hash of the code and dictionaries that make the reading; anything stored from a reading
    carries it. Readings are kept in a small LRU; the dictionaries load once, on first use.
    """

    def __init__(self, *, spelling: bool | str = "auto", cache_size: int = 8192) -> None:
        if spelling not in (True, False, "auto"):
            raise ValueError(f"spelling must be True, False or 'auto', got {spelling!r}")
        available = importlib.util.find_spec("symspellpy") is not None
        if spelling is True and not available:
            from costmw.plugin_api import missing_extra

            raise missing_extra("symspellpy", "cache")
        self.spelling = bool(spelling) and available
        self._speller: _Speller | None = None
        self._lock = threading.Lock()
        self._read = lru_cache(maxsize=cache_size)(self._normalise)
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = _version(self.spelling)
        return self._version

    def __call__(self, text: str) -> str:
        """The normalised form of ``text`` (``text`` itself past :data:`MAX_TEXT_CHARS`)."""
        if len(text) > MAX_TEXT_CHARS:
            return text
        return self._read(text)

    def _normalise(self, text: str) -> str:
        from costmw.plugins.minifier import strip_pleasantries

        text = strip_pleasantries(text)
        if self.spelling:
            text = self._respell(text)
        return _SPACES.sub(" ", text).strip()

    def _respell(self, text: str) -> str:
        speller = self._load()
        pieces: list[str] = []
        pos = 0
        tokens = list(_TOKENS.finditer(text))
        for i, m in enumerate(tokens):
            between = text[pos:m.start()]
            pieces.append(_REPEATED.sub(r"\1", between))
            word = m.group("word")
            pieces.append(m.group() if word is None else _respelt(speller, word, tokens, i))
            pos = m.end()
        pieces.append(_REPEATED.sub(r"\1", text[pos:]))
        return "".join(pieces)

    def _load(self) -> _Speller:
        if self._speller is None:
            with self._lock:
                if self._speller is None:
                    self._speller = _shared_speller()
        return self._speller


def _neighbour(tokens: list[re.Match[str]], i: int) -> str:
    if 0 <= i < len(tokens) and tokens[i].group("word") is not None:
        return tokens[i].group().lower()
    return ""


def _respelt(speller: _Speller, word: str, tokens: list[re.Match[str]], i: int) -> str:
    low = word.lower()
    if len(word) < 2 or not word.isalpha() or word[1:] != word[1:].lower() or speller.known(low):
        return word
    fixed = speller.correct(low, _neighbour(tokens, i - 1), _neighbour(tokens, i + 1))
    return fixed[:1].upper() + fixed[1:] if word[0].isupper() else fixed


_speller_lock = threading.Lock()
_speller: _Speller | None = None


def _shared_speller() -> _Speller:
    """One speller per process (its dictionaries take a few seconds and ~100 MB to build)."""
    global _speller
    with _speller_lock:
        if _speller is None:
            _speller = _Speller()
            log.debug("costmw semantic cache: spelling dictionaries loaded")
        return _speller


def _version(spelling: bool) -> str:
    """A hash of what makes a reading: this module, the minifier's rewrites and, with spelling,
    symspellpy's version and dictionaries."""
    digest = hashlib.sha256()
    minifier = Path(importlib.util.find_spec("costmw.plugins.minifier").origin or "").parent  # type: ignore[union-attr]
    for path in (Path(__file__), *sorted(minifier.glob("_*.py"))):
        if path.name in ("_rules.py", "_phrases.py", "_segment.py", "_normal.py"):
            digest.update(path.read_bytes())
    if spelling:
        from importlib.metadata import version

        folder = Path(importlib.util.find_spec("symspellpy").origin or "").parent  # type: ignore[union-attr]
        digest.update(version("symspellpy").encode())
        for name in (_UNIGRAMS, _BIGRAMS):
            digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return f"norm/{'spell' if spelling else 'plain'}/{digest.hexdigest()[:16]}"


_default: Normaliser | None = None


def default_normaliser() -> Normaliser:
    """The process-wide normaliser (spelling on when symspellpy is installed)."""
    global _default
    if _default is None:
        _default = Normaliser()
    return _default
