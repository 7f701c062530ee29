"""Checks of a cheap answer that need no model: its worked arithmetic, its final answer, its use of the prompt.

A wrong answer to a worked problem often shows it: a calculation that does not add up, no final
answer, a number the question gives that the working never uses, a hedge ("assuming", "not enough
information"). :func:`check_arithmetic` re-computes every calculation written as ``a op b = c``
(and ``<<a*b=c>>`` calculator notes); :func:`answer_features` turns these checks into the
fixed-length vector a :class:`~costmw.plugins.router.QualityModel` learns from. Microseconds per
answer, no model, no network.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ANSWER_FEATURE_NAMES", "REFUSAL", "ArithmeticCheck", "answer_features", "check_arithmetic",
           "final_answer", "safe_eval"]

ANSWER_FEATURE_NAMES = (
    "a_log_chars", "a_lines", "a_has_final_marker", "a_has_number", "a_final_integer", "a_final_negative",
    "a_log_final", "a_final_in_prompt", "a_final_computed", "a_checked", "a_wrong", "a_wrong_share",
    "a_prompt_numbers_unused", "a_hedges", "a_variables", "a_refusal", "a_length_ratio", "a_repeats",
)

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_NUMBER = re.compile(r"(?<![\w.])-?" + _NUM)
_CALC_NOTE = re.compile(r"<<([^<>=]{1,200})=([^<>]{1,60})>>")
# "12 * 3 = 36", "$4 + $5.50 = $9.50 = 9.5", "(3+4)*2 = 14": runs of arithmetic with at least one "="
_CHAIN = re.compile(r"[\d$€£(][\d$€£.,%()\s+\-*/×÷x^]*(?:\s*=[\d$€£.,%()\s+\-*/×÷x^]*[\d)%])+")
_DIGIT = re.compile(r"\d")
_OPERATION = re.compile(r"[\d)%]\s*[-+*/×÷x^]\s*\$?[\d(]")
_FINAL_MARKER = re.compile(r"####|\bthe (?:final )?answer is\b|\bfinal answer\b|\\boxed\{|\btherefore\b|\bso the\b"
                           r"|\bin total\b|\btotal of\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(assum\w*|approximately|roughly|not enough information|cannot be determined|can't be "
                    r"determined|unclear|ambiguous|not possible to|insufficient|estimate\w*|unknown|mistake|"
                    r"actually|re-?evaluate|wait)\b", re.IGNORECASE)
_VARIABLE = re.compile(r"(?:\b[a-wyz]\b\s*[=+\-*/]|[=+\-*/(]\s*\b[a-wyz]\b|\blet [a-z] be\b)", re.IGNORECASE)
#: an answer that opens with a refusal (also what the cascade's ``refusal`` scorer looks for)
REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i can(?:no|')t|i cannot|i'?m (?:not able|unable)|i am (?:not able|unable)"
    r"|as an ai\b|i don'?t know\b|i do not know\b|unfortunately,? i)", re.IGNORECASE)
_WORD_NUMBERS = {w: float(i) for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
_WORD_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                      "ninety": 90, "hundred": 100, "thousand": 1000, "dozen": 12, "half": 0.5, "twice": 2,
                      "double": 2, "triple": 3, "quarter": 0.25})
_WORD = re.compile(r"[a-z]+")

_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}


def safe_eval(expression: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + - * / // % ^ and brackets), else None.

    Only a parsed tree of numbers and those operators is evaluated; names, calls and anything
    else make it None, as do huge powers and division by zero.
    """
    text = (expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace("$", "")
            .replace("€", "").replace("£", "").replace(",", ""))
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", text)  # "3 x 4"
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", text)
    if not text.strip() or len(text) > 200:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 12 or abs(left) > 1e6):
                raise ValueError("power too large")
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not arithmetic: {type(node).__name__}")

    try:
        value = walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _number(token: str) -> float | None:
    try:
        return float(token.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _close(a: float, b: float) -> bool:
    """Equal up to the rounding people write: 2 decimals, or 1% of the size."""
    return abs(a - b) <= max(0.011, 0.01 * max(abs(a), abs(b)))


_PLAIN = re.compile(r"^\s*[$€£]?\s*-?\d+(?:,\d{3})*(?:\.(\d+))?\s*%?\s*$")


def _adds_up(computed: float, written: float, text: str) -> bool:
    """Whether a written result matches the computed one, given the precision it is written to.

    "78.33" for 235/3 is rounding (half a unit in the last decimal written), "15040" for 300*50
    is a slip, "78" for 235/3 is rounding to a whole number.
    """
    plain = _PLAIN.match(text)
    decimals = len(plain.group(1) or "") if plain else 2
    return abs(computed - written) <= 0.5 * 10.0 ** -decimals + 1e-9 * max(abs(computed), abs(written), 1.0)


@dataclass(frozen=True)
class ArithmeticCheck:
    """Calculations found in an answer: how many could be re-computed, which did not add up, and
    the results the answer wrote down (right of each ``<<...=c>>`` note, end of each chain)."""

    checked: int
    wrong: tuple[str, ...]
    results: tuple[float, ...] = ()


def check_arithmetic(answer: str) -> ArithmeticCheck:
    """Re-computes ``<<expr=value>>`` notes and ``a op b = c`` lines of ``answer``."""
    checked, wrong, results = 0, [], []
    for match in _CALC_NOTE.finditer(answer):
        left, right = safe_eval(match.group(1)), _number(match.group(2))
        if right is not None:
            results.append(right)
        if left is None or right is None:
            continue
        checked += 1
        if not _adds_up(left, right, match.group(2)):
            wrong.append(match.group(0))
    for chain in _CHAIN.findall(_CALC_NOTE.sub("", answer)):
        pieces = [p.strip() for p in chain.split("=")]
        if (result := safe_eval(pieces[-1])) is not None:
            results.append(result)
        for lhs, rhs in itertools.pairwise(pieces):
            if not (_DIGIT.search(lhs) and _DIGIT.search(rhs)):
                continue
            if not (_OPERATION.search(lhs) or _OPERATION.search(rhs)):
                continue  # "x = 3", or a bare number on both sides
            left, right = safe_eval(lhs), safe_eval(rhs)
            if left is None or right is None:
                continue
            checked += 1
            if not (_adds_up(left, right, rhs) or _adds_up(right, left, lhs)):
                wrong.append(f"{lhs} = {rhs}")
    return ArithmeticCheck(checked, tuple(wrong), tuple(results))


def final_answer(answer: str) -> float | None:
    """The answer's final number: after ``####``, "the answer is" or ``\\boxed{}``, else its last number."""
    for pattern in (r"####\s*\$?\s*(-?" + _NUM + ")", r"\\boxed\{\s*\$?(-?" + _NUM + ")",
                    r"answer is:?\s*\$?\s*(-?" + _NUM + ")"):
        found = re.findall(pattern, answer, flags=re.IGNORECASE)
        if found:
            return _number(found[-1])
    numbers = _NUMBER.findall(answer)
    return _number(numbers[-1]) if numbers else None


def _numbers_in(text: str) -> list[float]:
    values = [v for v in (_number(t) for t in _NUMBER.findall(text)) if v is not None]
    values += [_WORD_NUMBERS[w] for w in _WORD.findall(text.lower()) if w in _WORD_NUMBERS]
    return values


def answer_features(prompt: str, answer: str) -> np.ndarray:
    """A fixed-length float vector of :data:`ANSWER_FEATURE_NAMES` for a prompt's answer."""
    text = answer.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    final = final_answer(text)
    prompt_numbers = [v for v in _numbers_in(prompt) if v not in (0.0,)]
    answer_numbers = _numbers_in(text)
    check = check_arithmetic(text)
    unused = [p for p in set(prompt_numbers) if not any(_close(p, a) for a in answer_numbers)]
    line_counts: dict[str, int] = {}
    for line in lines:
        line_counts[line.strip().lower()] = line_counts.get(line.strip().lower(), 0) + 1
    values = [
        math.log1p(len(text)), math.log1p(len(lines)), float(bool(_FINAL_MARKER.search(text))),
        float(final is not None), float(final is not None and float(final).is_integer()),
        float(final is not None and final < 0), math.log1p(min(abs(final), 1e12)) if final is not None else 0.0,
        float(final is not None and any(_close(final, p) for p in prompt_numbers)),
        float(final is not None and any(_close(final, c) for c in check.results)),
        math.log1p(check.checked), float(len(check.wrong)),
        len(check.wrong) / check.checked if check.checked else 0.0,
        len(unused) / len(set(prompt_numbers)) if prompt_numbers else 0.0,
        float(len(_HEDGE.findall(text))), float(min(len(_VARIABLE.findall(text)), 20)),
        float(not text or bool(REFUSAL.search(text))), math.log1p(len(text)) - math.log1p(len(prompt)),
        float(sum(c - 1 for c in line_counts.values())),
    ]
    return np.asarray(values, dtype=np.float32)
