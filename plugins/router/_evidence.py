"""What a cheap answer says about itself: token uncertainty, agreement across samples, answer checks.

A small model that guesses tends to show it: low probabilities on the tokens of its final answer
(a number, a label, a name), samples drawn at a temperature that disagree, a reply that ignores the
format the question asked for. :func:`evidence` turns one answer into a fixed set of named numbers
(:data:`EVIDENCE_NAMES`) that the cascade's confidence model reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._answer import ANSWER_FEATURE_NAMES, answer_features

__all__ = ["EVIDENCE_NAMES", "answer_key", "answer_span", "evidence", "token_stats"]

_LOGPROB_NAMES = ("lp_mean", "lp_min", "lp_q10", "lp_q25", "lp_median", "span_mean", "span_min", "span_first",
                  "span_margin", "log_tokens", "has_logprobs")
_SAMPLE_NAMES = ("agree", "distinct", "has_samples")
_CHECK_NAMES = ("a_wrong", "a_refusal", "a_hedges", "a_has_number", "a_final_in_prompt", "a_log_chars",
                "a_length_ratio", "a_repeats")
_FORMAT_NAMES = ("truncated", "ignores_format", "asks_number", "asks_short")
#: every evidence feature, in the order :func:`evidence` returns them
EVIDENCE_NAMES = _LOGPROB_NAMES + _SAMPLE_NAMES + _CHECK_NAMES + _FORMAT_NAMES

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"\w+")
_SHORT = re.compile(r"\b(only|just the|one word|single word|yes or no|the label|the number|the name|the symbol)\b",
                    re.IGNORECASE)
_ASKS_NUMBER = re.compile(r"\b(how many|how much|what is \d|compute|calculate|number|in dollars|total)\b",
                          re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\n]\s*")


def answer_span(text: str) -> tuple[int, int]:
    """Where the final answer sits in ``text``: its last number, the whole of a short reply, else its
    last sentence (character offsets)."""
    numbers = list(_NUMBER.finditer(text))
    if numbers:
        return numbers[-1].start(), numbers[-1].end()
    stripped = text.rstrip()
    if len(_WORD.findall(stripped)) <= 6:
        return len(text) - len(text.lstrip()), len(stripped)
    ends = [m.end() for m in _SENTENCE_END.finditer(stripped) if m.end() < len(stripped)]
    return (ends[-1] if ends else 0), len(stripped)


def token_stats(logprobs: Sequence[Mapping[str, Any]] | None, text: str) -> dict[str, float]:
    """Statistics of the answer tokens' log-probabilities, over all of them and over the final answer span."""
    if not logprobs:
        return {name: 0.0 for name in _LOGPROB_NAMES}
    values = np.asarray([float(t["logprob"]) for t in logprobs], dtype=np.float64)
    start, end = answer_span(text)
    spans, margins, at = [], [], 0
    for token, value in zip(logprobs, values, strict=True):
        width = len(str(token.get("token", "")))
        if at < end and at + width > start:
            spans.append(value)
            others = [float(t["logprob"]) for t in token.get("top_logprobs") or () if t.get("token") != token["token"]]
            margins.append(value - max(others) if others else 0.0)
        at += width
    span = np.asarray(spans or values[-1:], dtype=np.float64)
    return {"lp_mean": float(values.mean()), "lp_min": float(values.min()),
            "lp_q10": float(np.quantile(values, 0.1)), "lp_q25": float(np.quantile(values, 0.25)),
            "lp_median": float(np.median(values)), "span_mean": float(span.mean()), "span_min": float(span.min()),
            "span_first": float(span[0]), "span_margin": float(min(margins)) if margins else 0.0,
            "log_tokens": math.log1p(len(values)), "has_logprobs": 1.0}


def answer_key(text: str) -> str:
    """What two answers must share to agree: the final number if there is one, else the span's words."""
    start, end = answer_span(text)
    piece = text[start:end]
    if _NUMBER.fullmatch(piece.strip()):
        try:
            return str(float(piece.replace(",", "")))
        except ValueError:
            return piece.strip()
    return " ".join(w.lower() for w in _WORD.findall(piece))


def _sample_stats(text: str, samples: Sequence[str] | None) -> dict[str, float]:
    if not samples:
        return {"agree": 0.0, "distinct": 0.0, "has_samples": 0.0}
    key = answer_key(text)
    keys = [answer_key(s) for s in samples]
    return {"agree": sum(k == key for k in keys) / len(keys),
            "distinct": len(set(keys) | {key}) / (len(keys) + 1), "has_samples": 1.0}


def _format_stats(prompt: str, text: str, finish_reason: str | None) -> dict[str, float]:
    asks_short = bool(_SHORT.search(prompt))
    return {"truncated": float(finish_reason == "length"),
            "ignores_format": float(asks_short and len(_WORD.findall(text)) > 5),
            "asks_number": float(bool(_ASKS_NUMBER.search(prompt))), "asks_short": float(asks_short)}


def evidence(prompt: str, text: str, *, logprobs: Sequence[Mapping[str, Any]] | None = None,
             samples: Sequence[str] | None = None, finish_reason: str | None = "stop") -> dict[str, float]:
    """Every :data:`EVIDENCE_NAMES` feature of one answer; missing evidence reads as zeros with its
    ``has_*`` flag at 0."""
    checks = dict(zip(ANSWER_FEATURE_NAMES, answer_features(prompt, text).tolist(), strict=True))
    out = {**token_stats(logprobs, text), **_sample_stats(text, samples),
           **{name: float(checks[name]) for name in _CHECK_NAMES}, **_format_stats(prompt, text, finish_reason)}
    return {name: out[name] for name in EVIDENCE_NAMES}
