"""LRUCache: the one bounded memo every in-process cache of costmw uses."""

from __future__ import annotations

import threading

import pytest

from costmw.plugin_api import LRUCache


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # reading makes "a" the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2


def test_missing_keys_give_the_default_and_stored_falsy_values_are_kept() -> None:
    cache: LRUCache[str, int] = LRUCache(4)
    assert cache.get("x") is None and cache.get("x", -1) == -1
    cache.put("zero", 0)
    assert cache.get("zero", -1) == 0


def test_threads_share_it_without_exceeding_the_bound() -> None:
    cache: LRUCache[int, int] = LRUCache(50)

    def work(offset: int) -> None:
        for i in range(500):
            cache.put(offset + i, i)
            cache.get(offset + i // 2)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LRUCache(0)
