"""Question-aware compression of long context: score, then drop sentences, then drop words.

Every word is scored by a causal LM's self-information (nats, read after the question). Coarse:
sentences are ranked by BM25 relevance to the question (raised for sentences that also state a
number, code or name, smoothed over neighbours) plus their information density, and the lowest are
dropped; the best matches for the question are kept first. Fine: the most predictable words of the
other kept sentences are dropped until the requested size is reached; the best matches stay word for
word. Protected spans (numbers, codes, URLs, quotes, inline code), words of the question, negations,
conjunctions, commas and brackets are never dropped by the fine stage; code blocks, JSON, tables and
other verbatim blocks are kept whole.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from costmw.plugin_api import count_tokens

from ._scorer import TokenScorer
from ._segment import TERMINAL, Block, Tok, prose_tokens, segment, sentences

__all__ = ["Compression", "Compressor", "question_terms"]


def _words(text: str) -> list[str]:
    return text.split()


_STOP = frozenset(_words("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers him his how i if in into is it its itself just me more most my no nor
not now of off on once only or other our ours out over own same she should so some such than that the
their theirs them then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours please tell give find
"""))
_NORM = re.compile(r"[^a-z0-9]+")
# Small words whose loss would flip or blur the meaning of a sentence: never dropped one by one
# (negations, restrictions, and the conjunctions and commas that hold lists and clauses apart).
_KEEP = frozenset(_words("not no never nor none neither without cannot nothing nobody nowhere only except unless "
                         "and or but"))
_KEEP_PUNCT = frozenset(",;:()[]")


@lru_cache(maxsize=65536)
def _term(word: str) -> str:
    w = _NORM.sub("", word.lower())
    if len(w) > 4 and w.endswith("es") and not w.endswith("ses"):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def question_terms(question: str) -> set[str]:
    """The content words of a question, normalised (lowercase, plural stripped)."""
    out = set()
    for t in prose_tokens(question):
        if t.kind in ("word", "prot"):
            term = _term(t.text)
            if term and term not in _STOP:
                out.add(term)
    return out


@dataclass(frozen=True, slots=True)
class Compression:
    """What compression made of one text."""

    text: str
    tokens_before: int
    tokens_after: int
    scored_tokens: int = 0
    seconds: float = 0.0
    dropped_sentences: int = 0

    @property
    def ratio(self) -> float:
        return self.tokens_before / max(1, self.tokens_after)


@dataclass(slots=True)
class _Sentence:
    block: int
    toks: list[Tok]
    tokens: int
    terms: list[str]
    lead: str = ""               # what separated it from the previous sentence of its block
    score: float = 0.0
    relevant: bool = False       # among the best matches for the question: kept word for word
    kept: list[bool] = field(default_factory=list)
    nats: list[float] = field(default_factory=list)  # self-information of each token (0 for spaces)

    def density(self, cost: Callable[[Tok], int]) -> float:
        """Nats per token of the sentence: how much it says for its length."""
        return sum(self.nats) / max(1, sum(cost(t) for t in self.toks))


def _bm25(sents: list[_Sentence], query: set[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    if not query or not sents:
        return [0.0] * len(sents)
    df: Counter[str] = Counter()
    for s in sents:
        df.update(set(s.terms) & query)
    n = len(sents)
    avg = sum(len(s.terms) for s in sents) / n or 1.0
    scores = []
    for s in sents:
        tf = Counter(t for t in s.terms if t in query)
        norm = k1 * (1 - b + b * len(s.terms) / avg)
        scores.append(sum(math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * c * (k1 + 1) / (c + norm)
                          for t, c in tf.items()))
    return scores


class Compressor:
    """Compress text to a ``rate`` (kept fraction of tokens) or to ``target_tokens``.

    ``fine_keep`` is the fraction of words the fine stage keeps of the sentences the coarse stage
    kept; the coarse stage drops the rest of what the request asks for. ``relevant_share``: the
    sentences whose relevance to the question is at least this share of the best one's are kept
    word for word (within half the requested size). ``fact_bonus``: relevance is multiplied by
    ``1 + fact_bonus`` for sentences that state a number, code or name. Both were tuned on the dev
    split of the benchmark's generated documents (``benchmarks/gen_minifier_docs.py``).
    """

    def __init__(self, scorer: TokenScorer, *, model: str | None = None, fine_keep: float = 0.9,
                 relevant_share: float = 0.3, fact_bonus: float = 0.5) -> None:
        if not 0 < fine_keep <= 1:
            raise ValueError(f"fine_keep must be in (0, 1], got {fine_keep}")
        if not 0 < relevant_share <= 1:
            raise ValueError(f"relevant_share must be in (0, 1], got {relevant_share}")
        if fact_bonus < 0:
            raise ValueError(f"fact_bonus must be >= 0, got {fact_bonus}")
        self.scorer = scorer
        self.model = model
        self.fine_keep = fine_keep
        self.relevant_share = relevant_share
        self.fact_bonus = fact_bonus
        self._cost: Callable[[str], int] = lru_cache(maxsize=65536)(lambda w: count_tokens(w, model))

    def compress(self, text: str, question: str = "", *, rate: float | None = 0.5,
                 target_tokens: int | None = None) -> Compression:
        started = time.perf_counter()
        before = count_tokens(text, self.model)
        goal = target_tokens if target_tokens is not None else round((rate or 1.0) * before)
        blocks = segment(text)
        sents: list[_Sentence] = []
        fixed = 0
        for bi, block in enumerate(blocks):
            if block.kind != "prose":
                fixed += count_tokens(block.text, self.model) if block.kind != "blank" else 0
                continue
            toks = list(prose_tokens(block.text))
            previous = 0
            for s, e in sentences(toks):
                part = toks[s:e]
                terms = [_term(t.text) for t in part if t.kind in ("word", "prot")]
                lead = "\n" if any(t.kind == "nl" for t in toks[previous:s]) else " " if s > previous else ""
                sents.append(_Sentence(bi, part, sum(self._tok_cost(t) for t in part), terms, lead))
                previous = e
        prose_total = sum(s.tokens for s in sents)
        prose_goal = max(1, goal - fixed)
        if not sents or prose_goal >= prose_total:
            return Compression(text, before, before, seconds=time.perf_counter() - started)
        query = question_terms(question)
        scored = self._score(sents, question)
        kept = self._coarse(sents, query, prose_goal)
        self._fine(kept, query, prose_goal)
        out = self._assemble(blocks, sents)
        after = count_tokens(out, self.model)
        if after >= before:
            out, after = text, before
        return Compression(out, before, after, scored, time.perf_counter() - started,
                           dropped_sentences=len(sents) - len(kept))

    def _tok_cost(self, tok: Tok) -> int:
        if tok.kind in ("ws", "nl"):
            return 0
        if tok.kind == "punct":
            return 1
        return int(self._cost(" " + tok.text))

    def _coarse(self, sents: list[_Sentence], query: set[str], prose_goal: int) -> list[_Sentence]:
        """Keep the sentences most relevant to the question, about prose_goal / fine_keep tokens.

        Relevance is BM25 against the question, raised by the factor ``1 + fact_bonus`` for sentences
        that also state a fact (a number, code or name: what a question usually asks for), plus a share of
        the neighbours' relevance (an answer often spans two sentences), plus the sentence's
        information density under the scoring LM as a standardised score, which decides among
        sentences the question says nothing about. The best matches (see :meth:`_mark_relevant`)
        are kept first and word for word.
        """
        total = sum(s.tokens for s in sents)
        raw = [r * (1 + self.fact_bonus) if r > 0 and _states_a_fact(s.toks) else r
               for r, s in zip(_bm25(sents, query), sents)]
        fixed = self._mark_relevant(sents, raw, prose_goal)
        coarse_goal = fixed + max(0.0, prose_goal - fixed) / self.fine_keep
        dens = [s.density(self._tok_cost) for s in sents]
        mean = sum(dens) / len(dens)
        spread = math.sqrt(sum((d - mean) ** 2 for d in dens) / len(dens)) or 1.0
        for i, s in enumerate(sents):
            near = max(raw[i - 1] if i else 0.0, raw[i + 1] if i + 1 < len(raw) else 0.0)
            s.score = raw[i] + 0.3 * near + (dens[i] - mean) / spread
        chosen: set[int] = set()
        if coarse_goal >= total:
            chosen = set(range(len(sents)))
        else:
            used = 0
            for i in sorted(range(len(sents)), key=lambda i: (not sents[i].relevant, -sents[i].score, i)):
                if used + sents[i].tokens <= coarse_goal or not chosen:
                    chosen.add(i)
                    used += sents[i].tokens
        chosen -= _orphan_headings(sents, chosen)
        for i, s in enumerate(sents):
            s.kept = [i in chosen] * len(s.toks)
        return [s for i, s in enumerate(sents) if i in chosen]

    def _mark_relevant(self, sents: list[_Sentence], raw: list[float], prose_goal: int) -> int:
        """Mark the best matches for the question, to be kept whole: sentences scoring at least
        ``relevant_share`` of the best relevance score, best first, within half the prose goal (so that
        the other sentences keep room). Returns their tokens."""
        top = max(raw, default=0.0)
        used = 0
        if top <= 0:
            return 0
        for i in sorted(range(len(sents)), key=lambda i: (-raw[i], i)):
            if raw[i] < self.relevant_share * top or used + sents[i].tokens > prose_goal / 2:
                break
            sents[i].relevant = True
            used += sents[i].tokens
        return used

    def _fine(self, kept: list[_Sentence], query: set[str], prose_goal: int) -> None:
        """Drop the most predictable words of the kept sentences until prose_goal tokens remain
        (none of the sentences marked relevant)."""
        spans = [(si, ti) for si, s in enumerate(kept) for ti, t in enumerate(s.toks) if t.kind not in ("ws", "nl")]
        forced: set[int] = set()
        terminal: list[int] = []
        optional: list[tuple[float, int, int]] = []
        for k, (si, ti) in enumerate(spans):
            tok = kept[si].toks[ti]
            if kept[si].relevant or tok.kind == "prot" or _term(tok.text) in query or _meaning_word(tok):
                forced.add(k)
            elif tok.kind == "punct" and tok.text in TERMINAL:
                terminal.append(k)
            else:
                cost = self._tok_cost(tok)
                optional.append((kept[si].nats[ti] / cost, k, cost))
        order = sorted(optional, key=lambda x: (-x[0], x[1]))
        chosen: set[int] = set()
        used = sum(self._tok_cost(kept[spans[k][0]].toks[spans[k][1]]) for k in forced)
        left = _take(order, chosen, prose_goal - used - len(terminal))
        # a sentence left with nothing but its full stop loses the stop too: spend what that frees
        speaking = {spans[k][0] for k in forced | chosen}
        _take(order, chosen, left + sum(1 for k in terminal if spans[k][0] not in speaking))
        speaking |= {spans[k][0] for k in chosen}
        keep = forced | chosen | {k for k in terminal if spans[k][0] in speaking}
        for k, (si, ti) in enumerate(spans):
            if k not in keep:
                kept[si].kept[ti] = False

    def _score(self, sents: list[_Sentence], question: str) -> int:
        """Fill each sentence's ``nats``: the self-information of every word, punctuation mark and
        protected chunk (summed over the scorer's tokens inside it). Returns how many were scored."""
        pieces: list[str] = []
        bounds: list[tuple[int, int]] = []
        where: list[tuple[int, int]] = []
        pos = 0
        for si, s in enumerate(sents):
            s.nats = [0.0] * len(s.toks)
            for ti, t in enumerate(s.toks):
                if t.kind in ("ws", "nl"):
                    continue
                if pieces and t.kind != "punct":
                    pieces.append(" ")
                    pos += 1
                pieces.append(t.text)
                bounds.append((pos, pos + len(t.text)))
                where.append((si, ti))
                pos += len(t.text)
        scored = self.scorer.surprisal(question, "".join(pieces))
        j = 0
        for start, end, value in scored:
            last = max(start, end - 1)
            while j < len(bounds) and bounds[j][1] <= last:
                j += 1
            if j < len(bounds) and bounds[j][0] <= last:
                si, ti = where[j]
                sents[si].nats[ti] += value if math.isfinite(value) else 50.0
        return len(scored)

    @staticmethod
    def _assemble(blocks: list[Block], sents: list[_Sentence]) -> str:
        by_block: dict[int, list[str]] = {}
        pending: dict[int, str] = {}
        for s in sents:
            parts = by_block.setdefault(s.block, [])
            sep = _gap(pending.get(s.block, ""), s.lead)
            for tok, keep in zip(s.toks, s.kept):
                if tok.kind in ("ws", "nl") or not keep:
                    sep = _gap(sep, " ")
                    continue
                if parts:
                    parts.append("" if tok.kind == "punct" and tok.text in ",.;:!?)]" else sep)
                parts.append(tok.text)
                sep = ""
            pending[s.block] = sep
        out: list[str] = []
        for bi, block in enumerate(blocks):
            if block.kind == "prose":
                text = "".join(by_block.get(bi, [])).strip()
                if text:
                    out.append(text)
            elif block.kind != "blank":
                out.append(block.text)
        return "\n\n".join(out)


def _orphan_headings(sents: list[_Sentence], chosen: set[int]) -> set[int]:
    """Short first sentences ("Storage.") whose paragraph was otherwise dropped: a title of nothing."""
    firsts: dict[int, int] = {}
    kept_in: Counter[int] = Counter()
    for i, s in enumerate(sents):
        firsts.setdefault(s.block, i)
        if i in chosen:
            kept_in[s.block] += 1
    return {i for b, i in firsts.items() if i in chosen and kept_in[b] == 1 and len(sents[i].terms) <= 4
            and i + 1 < len(sents) and sents[i + 1].block == b}


def _states_a_fact(toks: list[Tok]) -> bool:
    """Whether a sentence holds a number, a code or a name (a capitalised word after its first word)."""
    words = [t for t in toks if t.kind in ("word", "prot")]
    return any(t.kind == "prot" and any(c.isdigit() or c.isupper() for c in t.text) for t in words) or any(
        t.kind == "word" and t.text[:1].isupper() and t.text not in ("I", "A") for t in words[1:])


def _meaning_word(tok: Tok) -> bool:
    if tok.kind == "punct":
        return tok.text in _KEEP_PUNCT
    if tok.kind != "word":
        return False
    word = tok.text.lower().replace("’", "'")
    return word in _KEEP or word.endswith("n't")


def _take(order: list[tuple[float, int, int]], chosen: set[int], budget: int) -> int:
    """Add the densest items of ``order`` not yet chosen while they fit ``budget``; return what is left."""
    for _, k, cost in order:
        if k not in chosen and cost <= budget:
            chosen.add(k)
            budget -= cost
    return budget


def _gap(a: str, b: str) -> str:
    """The stronger of two separators: a newline beats a space beats nothing."""
    return "\n" if "\n" in (a, b) else " " if " " in (a, b) else ""
