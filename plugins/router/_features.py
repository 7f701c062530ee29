"""Cheap text features of a prompt that say something about how hard it is to answer.

Length, numbers, arithmetic and logic symbols, code, multiple-choice shape, negations: a few
microseconds per prompt, added to the embedding so the classifier sees more than the topic.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["FEATURE_NAMES", "text_features"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_OPTION = re.compile(r"^\s*\(?[A-J][.)]\s", re.MULTILINE)
_WORD = re.compile(r"\w+")
_NEGATION = re.compile(r"\b(not|except|least|false|never|incorrect)\b", re.IGNORECASE)
_COMPUTE = re.compile(r"\b(calculate|compute|find|how many|how much|what is the value|solve|evaluate|"
                      r"probability|total|percent|each|per|remaining|left)\b", re.IGNORECASE)
_LOGIC = re.compile(r"[⊃∨∧≡¬→↔∀∃]|\b(valid|premise|conclusion|implies|if and only if)\b", re.IGNORECASE)
_CODE = re.compile(r"(\bdef |\breturn\b|\bprint\(|[{};]\s*$|\bfor \w+ in\b|==|!=|\+\+)", re.MULTILINE)
_STATEMENT = re.compile(r"statement\s*1", re.IGNORECASE)

FEATURE_NAMES = (
    "log_chars", "log_words", "numbers", "log_numbers", "digit_share", "symbol_share", "sentences",
    "dollar", "percent", "statement_pair", "negation", "compute_words", "options", "option_chars",
    "numeric_options", "log_max_number", "decimals", "logic", "code", "question_marks",
)


def _number_value(token: str) -> float:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return 0.0


def text_features(text: str) -> np.ndarray:
    """A fixed-length float vector of :data:`FEATURE_NAMES` for ``text``."""
    options = _OPTION.findall(text)
    option_lines = [line for line in text.splitlines() if _OPTION.match(line)]
    body = "\n".join(line for line in text.splitlines() if not _OPTION.match(line))
    numbers = _NUMBER.findall(body)
    n_chars = max(1, len(text))
    symbols = sum(text.count(c) for c in "+-*/=^<>()")
    largest = max((_number_value(n) for n in numbers), default=0.0)
    values = [
        math.log1p(len(text)), math.log1p(len(_WORD.findall(body))), float(len(numbers)),
        math.log1p(len(numbers)), sum(c.isdigit() for c in text) / n_chars, symbols / n_chars,
        float(body.count(".") + body.count("?")), float("$" in text), float("%" in text),
        float(bool(_STATEMENT.search(text))), float(len(_NEGATION.findall(body))),
        float(len(_COMPUTE.findall(body))), float(len(options)),
        float(np.mean([len(o) for o in option_lines])) / 100.0 if option_lines else 0.0,
        float(np.mean([bool(_NUMBER.search(o[3:])) for o in option_lines])) if option_lines else 0.0,
        math.log1p(min(largest, 1e12)), float(sum("." in n for n in numbers)),
        float(len(_LOGIC.findall(text))), float(len(_CODE.findall(text))), float(text.count("?")),
    ]
    return np.asarray(values, dtype=np.float32)
