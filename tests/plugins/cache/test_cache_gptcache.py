"""GPTCacheStore: a GPTCache data manager (SQLite + FAISS here) as costmw's storage."""

from __future__ import annotations

from pathlib import Path

from cache_helpers import MODEL, make_cache, make_chain, user
from costmw.plugins.cache import GPTCacheStore

from costmw.embeddings import HashingEmbedder


def test_gptcache_data_manager_as_the_store(tmp_path: Path) -> None:
    store = GPTCacheStore(path=tmp_path / "gptcache", dimension=256)
    cache = make_cache(store=store, embedder=HashingEmbedder(256))
    chain, mock = make_chain(cache)
    chain.complete(user("What is the capital of France?"), model=MODEL, options={"tenant": "a"})
    exact = chain.complete(user("What is the capital of France?"), model=MODEL, options={"tenant": "a"})
    near = chain.complete(user("what is the capital of france"), model=MODEL, options={"tenant": "a"})
    germany = chain.complete(user("What is the capital of Germany?"), model=MODEL, options={"tenant": "a"})
    other_tenant = chain.complete(user("What is the capital of France?"), model=MODEL, options={"tenant": "b"})
    assert (exact.served_by, near.served_by) == ("cache:exact", "cache:semantic")
    assert germany.served_by == other_tenant.served_by == "target:mock"
    assert len(mock.calls) == 3
    assert store.count() == 3
    cache.clear()
    assert store.count() == 0
    chain.close()
    assert (tmp_path / "gptcache" / "gptcache.db").exists()
