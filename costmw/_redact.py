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

# Tokens recognised by their own shape, wherever they appear.
_TOKENS = [
    # OpenAI, Anthropic (sk-ant-): long keys, and short ones with a digit
    r"(?<![A-Za-z0-9])sk-(?:[A-Za-z0-9_\-]{20,}|(?=[A-Za-z_\-]*[0-9])[A-Za-z0-9_\-]{8,})",
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}(?![0-9A-Z])",  # AWS key ids
    r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
    r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9\-]{10,}",  # Slack
    r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{30,}",  # Google API keys
    r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}",  # Hugging Face
    r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    # Bearer tokens (base64 with + / =, JWTs, opaque ids) that do not read as a word
    r"(?i:bearer)\s+(?:[A-Za-z0-9+/_\-.~=]{20,}"
    r"|(?=[A-Za-z0-9+/_\-.~=]*(?:[0-9+/=_\-.~]|[a-z][A-Z]))[A-Za-z0-9+/_\-.~=]{12,})",
    # Basic credentials: after an Authorization header in any case, or a capitalised "Basic" with
    # a value that does not read as a word (a digit, + / =, or a capital after a small letter)
    r"(?i:authorization)\s*[:=]\s*[\"']?(?i:basic)\s+[A-Za-z0-9+/]{4,}=*",
    r"\bBasic\s+(?=[A-Za-z0-9+/]*(?:[0-9+/]|[a-z][A-Z]))[A-Za-z0-9+/]{12,}=*",
]
# Values written after a key-like name: the name stays, the value goes.
_KEY_NAME = (r"(?i:[A-Za-z0-9_\-]*(?:api[_\-]?key|secret[_\-]?(?:access[_\-]?)?key|access[_\-]?key|"
             r"subscription[_\-]?key|client[_\-]?secret|auth[_\-]?token|access[_\-]?token|"
             r"refresh[_\-]?token|password|passwd|secret|token|credential)s?)")
_KEY_VALUE = (_KEY_NAME + r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
              r"(?P<value>[0-9a-fA-F]{32}(?![0-9a-fA-F])"  # Azure-style hex keys
              r"|(?=[A-Za-z0-9+/=_\-.]*[0-9])[A-Za-z0-9+/=_\-.]{8,})")  # other values with a digit

_SECRET = re.compile("|".join(f"(?:{p})" for p in _TOKENS))
_KEYED = re.compile(_KEY_VALUE)


def _keep_name(match: re.Match[str]) -> str:
    start = match.start("value") - match.start()
    return match.group(0)[:start] + REDACTED


def redact_secrets(text: str) -> str:
    """``text`` with everything that looks like an API key, token or credential replaced by
    ``[REDACTED]`` (for a ``name=value`` pair, only the value)."""
    if not text:
        return text
    return _SECRET.sub(REDACTED, _KEYED.sub(_keep_name, text))


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds anything :func:`redact_secrets` would replace."""
    return bool(text) and (_SECRET.search(text) is not None or _KEYED.search(text) is not None)


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
