"""`costmw serve` end to end: the official openai client (sync, async, streaming, tools, errors)
and LangChain's ChatOpenAI against a real uvicorn server, with the fake OpenAI-compatible server
as the upstream model."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_support import RunningGateway

from costmw import Ledger
from costmw.server import GatewaySettings, KeyStore, VirtualKey, load_gateway
from costmw.testing import FakeOpenAIServer

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")

UPSTREAM_KEY = "sk-upstream-abcdefghijklmnopqrstuvwxyz0123"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def chain_config(upstream: FakeOpenAIServer, tmp: Path, *, plugins: list[Any] | None = None) -> dict[str, Any]:
    return {
        "plugins": plugins if plugins is not None else [],
        "targets": [{"kind": "litellm", "model": "openai/gpt-4o-mini", "name": "gpt-4o-mini",
                     "api_base": upstream.url, "api_key": UPSTREAM_KEY, "backoff": 0.01}],
        "ledger": str(tmp / "ledger.db"),
    }


@pytest.fixture
def stack(fake_openai: FakeOpenAIServer,
          tmp_path: Path) -> Iterator[tuple[RunningGateway, KeyStore, str]]:
    cache = {"semantic_cache": {"store": "memory", "embedder": "hashing"}}
    config = chain_config(fake_openai, tmp_path, plugins=[cache])
    config["server"] = {"keys": str(tmp_path / "keys.db")}
    gateway = load_gateway(config)
    assert gateway.keys is not None
    secret, _ = gateway.keys.create("team-a", name="tests")
    with RunningGateway(gateway) as running:
        yield running, gateway.keys, secret


def test_sync_client_gets_an_openai_completion_with_costmw_numbers(stack: Any) -> None:
    running, _, secret = stack
    client = openai.OpenAI(base_url=running.url, api_key=secret, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello gateway"}], temperature=0)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert raw.headers["x-costmw-served-by"].startswith("target:")
    assert float(raw.headers["x-costmw-baseline-usd"]) > 0
    extra = completion.model_extra["costmw"]
    assert extra["served_by"] == raw.headers["x-costmw-served-by"]
    # the same question again is a cache hit, booked to the same tenant
    again = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello gateway"}], temperature=0)
    assert again.headers["x-costmw-served-by"].startswith("cache:")
    assert again.parse().choices[0].message.content == "echo: hello gateway"


def test_async_client_and_tools(stack: Any) -> None:
    running, _, secret = stack

    async def go() -> Any:
        client = openai.AsyncOpenAI(base_url=running.url, api_key=secret, max_retries=0)
        return await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "weather in Paris?"}], tools=TOOLS)

    completion = asyncio.run(go())
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": 1}
    assert completion.choices[0].finish_reason == "tool_calls"


def test_streaming_is_framed_as_openai_with_usage_and_done(stack: Any) -> None:
    running, _, secret = stack
    client = openai.OpenAI(base_url=running.url, api_key=secret, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream this answer please"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream this answer please"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    # the raw stream ends with OpenAI's terminator
    with httpx.stream("POST", running.url + "/chat/completions", headers={"authorization": f"Bearer {secret}"},
                      json={"model": "gpt-4o-mini", "stream": True,
                            "messages": [{"role": "user", "content": "raw frames"}]}) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_missing_wrong_and_revoked_keys_get_401(stack: Any) -> None:
    running, keys, _ = stack
    messages = [{"role": "user", "content": "hi"}]
    for bad in ("", "sk-cmw-not-a-real-key", "sk-upstream-abcdefghijklmnopqrstuvwxyz0123"):
        client = openai.OpenAI(base_url=running.url, api_key=bad or "x", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    r = httpx.post(running.url + "/chat/completions", json={"model": "gpt-4o-mini", "messages": messages})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    second, key = keys.create("team-b")
    client = openai.OpenAI(base_url=running.url, api_key=second, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices
    assert keys.revoke(key.id)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)


def test_bad_input_gets_an_openai_shaped_4xx_never_a_500(stack: Any) -> None:
    running, _, secret = stack
    auth = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    msgs = [{"role": "user", "content": "hi"}]
    cases: list[tuple[Any, int, str | None]] = [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        ({"messages": msgs}, 400, "model"),
        ({"model": "gpt-4o-mini", "messages": "hi"}, 400, "messages"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        ({"model": "gpt-4o-mini", "messages": msgs, "temperature": "hot"}, 400, "temperature"),
        ({"model": "gpt-4o-mini", "messages": msgs, "temperature": -1}, 400, "temperature"),
        ({"model": "gpt-4o-mini", "messages": msgs, "max_tokens": -5}, 400, "max_tokens"),
        ({"model": "gpt-4o-mini", "messages": msgs, "n": 0}, 400, "n"),
        ({"model": "gpt-4o-mini", "messages": msgs, "tools": "abc"}, 400, "tools"),
        ({"model": "gpt-4o-mini", "messages": msgs, "stream": "yes"}, 400, "stream"),
        ({"model": "gpt-4o-mini", "messages": msgs, "bogus": 1}, 400, "bogus"),
        ({"model": "no-such-model", "messages": msgs}, 404, "model"),
    ]
    for body, status, param in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = httpx.post(running.url + "/chat/completions", content=content, headers=auth)
        assert r.status_code == status, (body, r.text)
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]
        if param:
            assert err["param"] == param, (body, err)
    big = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5_000_000}]})
    r = httpx.post(running.url + "/chat/completions", content=big.encode(), headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.get(running.url + "/nowhere")
    assert r.status_code == 404 and "error" in r.json()
    client = openai.OpenAI(base_url=running.url, api_key=secret, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=msgs)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=7)


def test_upstream_429_is_retried_and_5xx_after_retries_is_a_502(stack: Any, fake_openai: FakeOpenAIServer) -> None:
    running, _, secret = stack
    client = openai.OpenAI(base_url=running.url, api_key=secret, max_retries=0)
    fake_openai.fail_next(429, times=1)
    ok = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "retry me"}])
    assert ok.choices[0].message.content == "echo: retry me"
    fake_openai.fail_next(503, times=10)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "down"}])
    assert info.value.status_code == 502
    assert UPSTREAM_KEY not in str(info.value)


def test_models_health_and_metrics(stack: Any) -> None:
    running, _, secret = stack
    client = openai.OpenAI(base_url=running.url, api_key=secret, max_retries=0)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "openai/gpt-4o-mini"} <= ids
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}])
    health = httpx.get(running.url.replace("/v1", "") + "/health").json()
    assert health["status"] == "ok" and "semantic_cache" in health["plugins"]
    text = httpx.get(running.url.replace("/v1", "") + "/metrics").text
    assert 'costmw_requests_total{model="gpt-4o-mini",served_by="target",status="ok"}' in text
    assert "costmw_request_latency_seconds_bucket" in text
    assert "costmw_cost_usd_total" in text


def test_a_key_never_sees_another_tenants_cache_or_rows(stack: Any, tmp_path: Path) -> None:
    running, keys, secret_a = stack
    secret_b, _ = keys.create("team-b")
    q = [{"role": "user", "content": "what is our refund policy?"}]
    a = openai.OpenAI(base_url=running.url, api_key=secret_a, max_retries=0)
    b = openai.OpenAI(base_url=running.url, api_key=secret_b, max_retries=0)
    a.chat.completions.create(model="gpt-4o-mini", messages=q)
    hit = a.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=q)
    assert hit.headers["x-costmw-served-by"].startswith("cache:")
    other = b.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=q)
    assert other.headers["x-costmw-served-by"].startswith("target:")
    assert running.gateway.chain.ledger.flush(10)  # rows reach the file from the ledger's writer thread
    tenants = {row.tenant for row in Ledger(tmp_path / "ledger.db").rows()}
    assert tenants == {"team-a", "team-b"}


def test_key_limits_models_and_rate(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    config = chain_config(fake_openai, tmp_path)
    config["server"] = {"keys": str(tmp_path / "keys.db")}
    gateway = load_gateway(config)
    assert gateway.keys is not None
    limited, _ = gateway.keys.create("t", rpm=2, models=["gpt-4o-mini"])
    with RunningGateway(gateway) as running:
        client = openai.OpenAI(base_url=running.url, api_key=limited, max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        assert int(info.value.response.headers["retry-after"]) >= 1
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=msgs)


def test_concurrent_calls_against_a_budget_that_fits_ten_pass_exactly_ten(
        fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_openai.delay = 2.0  # every decision is taken while the passing calls still hold their share
    config = chain_config(fake_openai, tmp_path)
    config["server"] = {"keys": str(tmp_path / "keys.db")}
    gateway = load_gateway(config)
    assert gateway.keys is not None
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "budgeted"}]}
    from costmw.server._openai import parse_chat_body

    probe = gateway._request(VirtualKey(id="probe", tenant="t"), parse_chat_body(json.dumps(body).encode()))
    _, one_call = gateway._estimate(probe)
    assert one_call > 0
    secret, _ = gateway.keys.create("budget-tenant", budget_total_usd=one_call * 10.5)
    with RunningGateway(gateway) as running:
        async def fire() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                rs = await asyncio.gather(*(client.post(running.url + "/chat/completions", json=body,
                                                        headers={"authorization": f"Bearer {secret}"})
                                            for _ in range(100)))
            return [r.status_code for r in rs]

        codes = asyncio.run(fire())
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 90
    assert gateway.chain.ledger.flush(10)
    rows = [r for r in Ledger(tmp_path / "ledger.db").rows() if r.tenant == "budget-tenant"]
    assert len(rows) == 10 and all(r.error is None for r in rows)


def test_client_disconnect_mid_stream_cancels_the_upstream_call_and_books_the_row(
        fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_openai.stream_piece = 2
    config = chain_config(fake_openai, tmp_path)
    config["server"] = {"allow_anonymous": True}
    gateway = load_gateway(config)
    with RunningGateway(gateway) as running:
        with httpx.stream("POST", running.url + "/chat/completions",
                          json={"model": "gpt-4o-mini", "stream": True,
                                "messages": [{"role": "user", "content": "a long answer " * 40}]}) as r:
            request_id = r.headers["x-costmw-request-id"]
            for i, _ in enumerate(r.iter_lines()):
                if i > 3:
                    break
        deadline = time.time() + 10
        rows: list[Any] = []
        while time.time() < deadline:
            rows = [row for row in Ledger(tmp_path / "ledger.db").rows() if row.request_id == request_id]
            if rows:
                break
            time.sleep(0.1)
    assert len(rows) == 1
    assert rows[0].status == "cancelled"  # booked with what was generated before the client left


def test_langchain_chat_openai_through_the_gateway(stack: Any) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    running, _, secret = stack
    llm = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=running.url, api_key=secret, max_retries=0)
    assert llm.invoke("hello from langchain").content == "echo: hello from langchain"
    assert "".join(c.content for c in llm.stream("streamed from langchain")) == "echo: streamed from langchain"


def test_settings_fail_fast_with_a_clear_error(tmp_path: Path) -> None:
    from costmw import ConfigError

    with pytest.raises(ConfigError, match="allow_anonymous"):
        GatewaySettings.from_mapping({})
    with pytest.raises(ConfigError, match="unknown setting"):
        GatewaySettings.from_mapping({"allow_anonymous": True, "workerz": 2})
    with pytest.raises(ConfigError, match="directory"):
        KeyStore(tmp_path)


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    secret, key = store.create("acme", budget_day_usd=5, rpm=10)
    raw = (tmp_path / "keys.db").read_bytes() + (tmp_path / "keys.db-wal").read_bytes() \
        if (tmp_path / "keys.db-wal").exists() else (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw
    assert store.lookup(secret) == key
    assert store.lookup(secret + "x") is None
    listed = store.list()
    assert [k.id for k in listed] == [key.id] and listed[0].budget_day_usd == 5.0


def test_keys_in_postgresql_are_shared_and_revocable(postgres_url: str) -> None:
    first = KeyStore(postgres_url, cache_s=0)
    second = KeyStore(postgres_url, cache_s=0)  # another gateway process sharing the database
    try:
        secret, key = first.create("pg-tenant", models=["gpt-4o-mini"], tpm=1000)
        seen = second.lookup(secret)
        assert seen is not None and seen.tenant == "pg-tenant" and seen.models == ("gpt-4o-mini",)
        assert [k.id for k in second.list()] == [key.id]
        assert second.revoke(key.id) and first.lookup(secret) is None
    finally:
        first.close()
        second.close()


def test_serve_with_workers_leaves_no_connection_open_in_the_parent(fake_openai: FakeOpenAIServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import uvicorn
    import yaml

    import costmw.server
    from costmw.cli._serve import serve

    config = chain_config(fake_openai, tmp_path)
    config["server"] = {"keys": str(tmp_path / "keys.db")}
    path = tmp_path / "costmw.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    built: list[Any] = []
    real_load = costmw.server.load_gateway

    def load(source: Any) -> Any:
        built.append(real_load(source))
        return built[-1]

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(costmw.server, "load_gateway", load)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
    serve(config=path, host="127.0.0.1", port=0, workers=2, log_level="warning")
    assert runs and runs[0]["workers"] == 2 and runs[0]["app"] == "costmw.cli._serve:app_from_env"
    keys = built[0].keys
    with pytest.raises(sqlite3.ProgrammingError):  # the parent's key store is closed before the workers start
        keys._db.execute("SELECT 1")
