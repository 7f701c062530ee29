"""The semantic cache: exact and meaning-based hits, a verifier against wrong hits, tenant scopes,
single flight, TTL and LRU, and stores in memory, SQLite, Redis or a GPTCache data manager.

Heavy dependencies (redis, gptcache, usearch, sentence-transformers) load only when a store or
embedder that needs them is used.
"""

from __future__ import annotations

from ._cache import SemanticCache
from ._entry import Entry
from ._gptcache import GPTCacheStore
from ._judge import LLMJudge
from ._normal import Normaliser
from ._protocol import CacheVerdict, CacheVerifier
from ._redis import RedisStore
from ._select import Choice, select
from ._sqlite import SQLiteStore
from ._store import MemoryStore, Store, register_store, store_from_spec
from ._traffic import TrafficCheck
from ._verifiers import FunctionVerifier, GuardedVerifier

__all__ = [
    "CacheVerdict",
    "CacheVerifier",
    "Choice",
    "Entry",
    "FunctionVerifier",
    "GPTCacheStore",
    "GuardedVerifier",
    "LLMJudge",
    "MemoryStore",
    "Normaliser",
    "RedisStore",
    "SQLiteStore",
    "SemanticCache",
    "Store",
    "TrafficCheck",
    "register_store",
    "select",
    "store_from_spec",
]
