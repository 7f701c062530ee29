"""No secret is written: one redaction covers every key format, and a scan of every file costmw
writes (ledger, cache, logs) after calls full of keys finds none."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from costmw.adapters import CallableTarget, MockTarget
from costmw.plugins import SemanticCache
from costmw.plugins.cache import SQLiteStore

from costmw import Chain, Ledger, TargetError
from costmw.plugin_api import contains_secret, redact_secrets

SECRETS = {
    "openai": "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "openai project": "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56",
    "openai short": "sk-9fA3kd82Lq",
    "anthropic": "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "aws secret": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "github": "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "github pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "huggingface": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "azure hex": "api-key: 0123456789abcdef0123456789abcdef",
    "bearer base64": "Authorization: Bearer ab+cd/ef=gh+ij/kl+mn/op==",
    "basic": "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "basic bare": "use Basic YWxhZGRpbjpvcGVuc2VzYW1l to log in",
    "password": "password=Tr0ub4dor&3xyz",
}
SECRET_PARTS = {
    "aws secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "azure hex": "0123456789abcdef0123456789abcdef",
    "bearer base64": "ab+cd/ef=gh+ij/kl+mn/op==",
    "basic": "dXNlcjpwYXNzd29yZA==",
    "basic bare": "YWxhZGRpbjpvcGVuc2VzYW1l",
    "password": "Tr0ub4dor",
}
PLAIN = ["The basic idea is simple.", "Bearer of good news", "a risk-assessment task", "the api key goes in .env",
         "Set the token: see the docs", "sha256 of the file", "password reset instructions"]


def _part(name: str) -> str:
    return SECRET_PARTS.get(name, SECRETS[name])


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_key_format_is_redacted(name: str) -> None:
    text = f"here it is: {SECRETS[name]} thanks"
    assert contains_secret(text)
    assert _part(name) not in redact_secrets(text)


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_is_left_alone(text: str) -> None:
    assert not contains_secret(text) and redact_secrets(text) == text


def test_no_file_costmw_writes_holds_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Calls whose prompts, answers and errors carry every key format; then every byte written
    (the SQLite ledger with text kept, the cache file and its WAL, the log) is scanned."""

    def answer(messages: list[dict[str, str]]) -> str:
        text = messages[-1]["content"]
        if "fail" in text:
            raise RuntimeError(f"401 Unauthorized: invalid key {text}")
        return f"echo {text}"

    log_file = tmp_path / "costmw.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger("costmw").addHandler(handler)
    try:
        ledger = Ledger(tmp_path / "ledger.db", store_text=True)
        cache = SemanticCache(store=SQLiteStore(tmp_path / "cache.db"), embedder="hashing", verifier="guards")
        chain = Chain([cache], targets=[CallableTarget(answer, name="t")], ledger=ledger)
        for secret in SECRETS.values():
            chain.complete([{"role": "user", "content": f"my key is {secret}"}], "t")
            with pytest.raises(TargetError):
                chain.complete([{"role": "user", "content": f"fail {secret}"}], "t")
        chain.complete([{"role": "user", "content": "a question with no key"}], "t")
        assert cache.stats["secrets_skipped"] == len(SECRETS)
        assert cache.storage.count() == 1  # only the answer without a key was cached
        assert ledger.flush(10)
        chain.close()
    finally:
        logging.getLogger("costmw").removeHandler(handler)
        handler.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.db" for p in written) and any(p.name == "cache.db" for p in written)
    for path in written:
        data = path.read_bytes()
        for name in SECRETS:
            assert _part(name).encode() not in data, f"{name} found in {path.name}"


def test_the_cache_can_store_answers_with_the_secrets_redacted(tmp_path: Path) -> None:
    target = MockTarget(lambda r: "stored: " + r.last_user_text, name="t")
    cache = SemanticCache(store=SQLiteStore(tmp_path / "cache.db"), embedder=None, secrets="redact")
    chain = Chain([cache], targets=[target])
    key = SECRETS["openai"]
    first = chain.complete([{"role": "user", "content": f"use {key}"}], "t")
    again = chain.complete([{"role": "user", "content": f"use {key}"}], "t")
    assert key in first.text and again.served_by == "cache:exact"
    assert key not in again.text and "[REDACTED]" in again.text
    chain.close()
    assert key.encode() not in (tmp_path / "cache.db").read_bytes()


def test_every_costmw_logger_redacts_secrets(caplog: pytest.LogCaptureFixture) -> None:
    import re

    from costmw._redact import LOGGERS

    root = Path(__file__).resolve().parents[2]
    named = set()
    for folder in ("costmw", "plugins", "adapters"):
        for path in (root / folder).rglob("*.py"):
            named.update(re.findall(r'getLogger\("(costmw[\w.]*)"\)', path.read_text(encoding="utf-8")))
    assert named <= set(LOGGERS), f"add {sorted(named - set(LOGGERS))} to costmw._redact.LOGGERS"
    with caplog.at_level(logging.WARNING):
        for name in LOGGERS:
            logging.getLogger(name).warning("connect failed with %s", SECRETS["openai"])
    assert caplog.records and all(SECRETS["openai"] not in r.getMessage() for r in caplog.records)
