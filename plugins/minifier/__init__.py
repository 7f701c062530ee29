"""PromptMinifier: fewer input tokens for the same answer.

Three strengths: safe rewrites (whitespace, repeats, filler, pretty JSON and tables), a history
budget (older turns summarised by the cheapest capable target), and question-aware compression of
long context scored by a small local causal LM. Heavy libraries load only when compression runs.
"""

from __future__ import annotations

from ._compress import Compression, Compressor
from ._plugin import PromptMinifier
from ._rules import RuleOptions, minify_text, strip_pleasantries
from ._scorer import LMScorer, TokenScorer

__all__ = ["Compression", "Compressor", "LMScorer", "PromptMinifier", "RuleOptions", "TokenScorer", "minify_text",
           "strip_pleasantries"]
