"""Fixtures for the semantic cache tests: stores of every kind (Redis on 127.0.0.1:6379 db 15,
under a key prefix of the test's own, deleted afterwards)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from costmw.plugins.cache import MemoryStore, RedisStore, SQLiteStore, Store


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; everything under it is deleted afterwards."""
    import redis

    prefix = f"costmw-test:cache:{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    names = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if names:
        client.delete(*names)
    with contextlib.suppress(Exception):
        client.execute_command("FT.DROPINDEX", f"{prefix}:idx")
    client.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    store: Store
    if kind == "memory":
        store = MemoryStore(max_entries=1000)
    elif kind == "sqlite":
        store = SQLiteStore(tmp_path / "cache.db", max_entries=1000)
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisStore(url, prefix=request.getfixturevalue("redis_prefix"), max_entries=1000)
    yield store
    store.close()
