"""No answer crosses tenants or users, whatever the store and however the identity is spelt."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.plugins.cache import MemoryStore, RedisStore, SemanticCache, SQLiteStore, Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmw import Chain, Request
from costmw.embeddings import HashingEmbedder

# Spellings that must be one identity (NFC and NFD of the same name), and names that must not
# meet (a tenant and a user of the same name, a number-like name, the empty scope).
NAMES = ["acme", "42", "Zo\u00eb", unicodedata.normalize("NFD", "Zo\u00eb"), "\u00c5ngstr\u00f6m",
         unicodedata.normalize("NFD", "\u00c5ngstr\u00f6m"), None]
QUESTIONS = ["What is the capital of France?", "what is the capital of france", "How do I reset my password?",
             "Where is my order?"]


def _nfc(value: str | None) -> str | None:
    return None if value is None else unicodedata.normalize("NFC", value)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function making a fresh, empty store of one kind (one per hypothesis example)."""
    made: list[Store] = []
    prefixes: list[str] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def make() -> Store:
        store: Store
        if request.param == "memory":
            store = MemoryStore()
        elif request.param == "sqlite":
            store = SQLiteStore(tmp_path / f"{uuid.uuid4().hex}.db")
        else:
            prefix = f"costmw-test:identity:{uuid.uuid4().hex[:10]}"
            prefixes.append(prefix)
            store = RedisStore(url, prefix=prefix)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    if prefixes:
        import redis

        client = redis.Redis.from_url(url)
        for prefix in prefixes:
            names = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if names:
                client.delete(*names)
        client.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(QUESTIONS)),
                      min_size=1, max_size=12),
       scope=st.sampled_from(["tenant", "user"]))
def test_no_answer_crosses_tenants_or_users_in_any_store(store_factory: Any, calls: list[tuple[Any, Any, str]],
                                                         scope: str) -> None:
    def handler(request: Request) -> str:
        return f"[{request.options.tenant}|{request.options.user}] {request.last_user_text}"

    cache = SemanticCache(store=store_factory(), embedder=HashingEmbedder(256), threshold=0.0, verifier=False,
                          scope=scope)
    chain = Chain([cache], [MockTarget(handler, model="gpt-4o-mini")])
    try:
        for tenant, user, question in calls:
            options = {k: v for k, v in (("tenant", tenant), ("user", user)) if v is not None}
            response = chain.complete([{"role": "user", "content": question}], model="gpt-4o-mini",
                                      options=options)
            made_tenant, made_user = response.text[1:].split("] ")[0].split("|")
            assert made_tenant == str(_nfc(tenant))
            if scope == "user" or tenant is None:
                assert made_user == str(_nfc(user))
    finally:
        chain.close()


def test_a_user_is_never_served_the_tenant_of_the_same_name() -> None:
    chain = Chain([SemanticCache(store="memory", embedder=HashingEmbedder(256), verifier=False)],
                  [MockTarget(lambda r: f"for tenant {r.options.tenant} user {r.options.user}")])
    question = [{"role": "user", "content": "What is our refund policy?"}]
    assert chain.complete(question, model="m", options={"tenant": "42"}).text == "for tenant 42 user None"
    as_user = chain.complete(question, model="m", options={"user": "42"})
    assert as_user.served_by == "target:mock" and as_user.text == "for tenant None user 42"


def test_nfc_and_nfd_spellings_of_a_tenant_share_its_cache_and_its_budget() -> None:
    chain = Chain([SemanticCache(store="memory", embedder=None, verifier=False)], [MockTarget(lambda r: "ok")])
    question = [{"role": "user", "content": "hello"}]
    chain.complete(question, model="m", options={"tenant": "Zo\u00eb"})
    again = chain.complete(question, model="m", options={"tenant": unicodedata.normalize("NFD", "Zo\u00eb")})
    assert again.served_by == "cache:exact"
    assert {row.tenant for row in chain.ledger.rows()} == {"Zo\u00eb"}


def test_a_lone_surrogate_user_from_a_json_body_is_refused_before_any_budget_or_row(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    from starlette.testclient import TestClient

    from costmw import Ledger
    from costmw.server import create_app, load_gateway

    ledger = tmp_path / "ledger.db"
    gateway = load_gateway({"targets": [{"kind": "mock", "name": "gpt-4o-mini", "reply": "ok"}],
                            "ledger": str(ledger), "server": {"keys": str(tmp_path / "keys.db")}})
    assert gateway.keys is not None
    secret, _ = gateway.keys.create("team-a", budget_day_usd=0.0001)
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "user": "mallory\\ud800"}'
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    with TestClient(create_app(gateway)) as client:
        for _ in range(5):
            reply = client.post("/v1/chat/completions", content=body, headers=headers)
            assert reply.status_code == 400, reply.text
            assert "options.user" in reply.json()["error"]["message"]
    assert Ledger(ledger).rows() == []
