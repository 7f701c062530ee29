"""LangChain's own standard cache suites (langchain-tests) for CostmwCache, sync and async."""

from __future__ import annotations

import pytest
from costmw.plugins import MemoryStore, SemanticCache
from langchain_core.caches import BaseCache
from langchain_tests.integration_tests import AsyncCacheTestSuite, SyncCacheTestSuite

from costmw.integrations.langchain import CostmwCache


def _cache() -> CostmwCache:
    return CostmwCache(SemanticCache(store=MemoryStore(), embedder="hashing", threshold=0.9))


class TestCostmwCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self) -> BaseCache:
        return _cache()


class TestCostmwCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self) -> BaseCache:
        return _cache()
