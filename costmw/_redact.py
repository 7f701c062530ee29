"""The one redaction of secrets: API keys, tokens and credentials in any text costmw writes.

The ledger, error messages, log records and (by default) the cache's decision to store an entry
all go through :func:`redact_secrets` / :func:`contains_secret`, so a key format added here is
covered everywhere at once. Formats: OpenAI (``sk-``, ``sk-proj-``), Anthropic (``sk-ant-``), AWS
access key ids and secret keys written as ``key=value``, GitHub (``ghp_`` and friends,
``github_pat_``), Slack (``xox?-``), Google (``AIza``), Hugging Face (``hf_``), JWTs, PEM private
keys, Azure-style 32-hex keys and other values written after a key-like name (``api_key=``,
``Ocp-Apim-Subscription-Key:``, ``password:``), and ``Bearer`` / ``Basic`` credentials.
"""

from __future__ import annotations

import logging
import re

__all__ = ["LOGGERS", "REDACTED", "RedactingFilter", "contains_secret", "get_logger", "redact_secrets"]

REDACTED = "[REDACTED]"

# Tokens recognised by their own shape. Each pattern starts with literal text (so a search skips
# ahead quickly); ``True`` marks those that must not follow a letter or digit.
_TOKENS: list[tuple[re.Pattern[str], bool]] = [(re.compile(p), bounded) for p, bounded in [
    # OpenAI, Anthropic (sk-ant-): long keys, and short ones with a digit
    (r"sk-(?:[A-Za-z0-9_\-]{20,}|(?=[A-Za-z_\-]*[0-9])[A-Za-z0-9_\-]{8,})", True),
    (r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}(?![0-9A-Z])", True),  # AWS key ids
    (r"gh[pousr]_[A-Za-z0-9]{20,}", True),  # GitHub tokens
    (r"github_pat_[A-Za-z0-9_]{20,}", True),
    (r"xox[abposre]-[A-Za-z0-9\-]{10,}", True),  # Slack
    (r"AIza[0-9A-Za-z_\-]{30,}", True),  # Google API keys
    (r"hf_[A-Za-z0-9]{20,}", True),  # Hugging Face
    (r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", True),  # JWTs
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", False),
    # Bearer tokens (base64 with + / =, JWTs, opaque ids) that do not read as a word
    (r"(?:[Bb]earer|BEARER)\s+(?:[A-Za-z0-9+/_\-.~=]{20,}"
     r"|(?=[A-Za-z0-9+/_\-.~=]*(?:[0-9+/=_\-.~]|[a-z][A-Z]))[A-Za-z0-9+/_\-.~=]{12,})", False),
    # Basic credentials: after an Authorization header, or a capitalised "Basic" with a value that
    # does not read as a word (a digit, + / =, or a capital after a small letter)
    (r"(?:[Aa]uthorization|AUTHORIZATION)\s*[:=]\s*[\"']?(?:[Bb]asic|BASIC)\s+[A-Za-z0-9+/]{4,}=*", False),
    (r"Basic\s+(?=[A-Za-z0-9+/]*(?:[0-9+/]|[a-z][A-Z]))[A-Za-z0-9+/]{12,}=*", True),
]]
# Values written after a key-like name (searched in the lower-cased text): the name stays, the value goes.
_KEYED = re.compile(
    r"(?:api[_\-]?key|secret[_\-]?(?:access[_\-]?)?key|access[_\-]?key|subscription[_\-]?key|"
    r"client[_\-]?secret|auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|password|passwd|secret|token|"
    r"credential)s?[\"']?\s*[:=]\s*[\"']?"
    r"(?P<value>[0-9a-f]{32}(?![0-9a-f])|(?=[a-z0-9+/=_\-.]*[0-9])[a-z0-9+/=_\-.]{8,})")
_KEYED_ANY_CASE = re.compile(_KEYED.pattern, re.IGNORECASE)


_WINDOW, _OVERLAP = 65_536, 1_024


def _spans(text: str, first_only: bool = False) -> list[tuple[int, int]]:
    """Where the secrets in ``text`` are (start, end), possibly overlapping. A long text is read
    in overlapping windows, so a search never holds the interpreter for long at a time (other
    threads, an event loop among them, run in between)."""
    if len(text) <= _WINDOW + _OVERLAP:
        return _spans_in(text, 0, first_only)
    found: set[tuple[int, int]] = set()
    for start in range(0, len(text), _WINDOW):
        offset = max(0, start - _OVERLAP)
        found.update(_spans_in(text[offset:start + _WINDOW + _OVERLAP], offset, first_only))
        if found and first_only:
            break
    if "-----BEGIN" in text:  # a private key can be longer than the overlap
        found.update(_spans_in(text, 0, first_only, _TOKENS[8:9], keyed=False))
    return list(found)


def _spans_in(text: str, offset: int, first_only: bool,
              tokens: list[tuple[re.Pattern[str], bool]] | None = None, keyed: bool = True) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for pattern, bounded in _TOKENS if tokens is None else tokens:
        for m in pattern.finditer(text):
            if bounded and m.start() > 0 and text[m.start() - 1].isalnum():
                continue
            out.append((m.start() + offset, m.end() + offset))
            if first_only:
                return out
    if not keyed:
        return out
    lower = text.lower()
    by_name, haystack = (_KEYED, lower) if len(lower) == len(text) else (_KEYED_ANY_CASE, text)
    for m in by_name.finditer(haystack):
        out.append((m.start("value") + offset, m.end("value") + offset))
        if first_only:
            return out
    return out


def redact_secrets(text: str) -> str:
    """``text`` with everything that looks like an API key, token or credential replaced by
    ``[REDACTED]`` (for a ``name=value`` pair, only the value)."""
    if not text:
        return text
    spans = sorted(_spans(text))
    if not spans:
        return text
    pieces, at = [], 0
    for start, end in spans:
        if end <= at:
            continue
        if start >= at:
            pieces.append(text[at:start])
            pieces.append(REDACTED)
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds anything :func:`redact_secrets` would replace."""
    return bool(text) and bool(_spans(text, first_only=True))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to the handler to report
            return True
        clean = redact_secrets(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactingFilter()

#: costmw's loggers; each gets the redacting filter when costmw is imported (a logger's filters
#: apply only to records it logs itself, not to its children's, so every name is listed; a test
#: checks that every logger named in the source is here).
LOGGERS = ("costmw", "costmw.adapters", "costmw.batcher", "costmw.cache", "costmw.langchain", "costmw.ledger",
           "costmw.make", "costmw.minifier", "costmw.router", "costmw.server", "costmw.gateway")


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with secrets redacted from every record it logs."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


for _name in LOGGERS:
    get_logger(_name)
