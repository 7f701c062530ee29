"""The store protocol, the in-memory store, and the store names a config string may use."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from costmw.plugin_api import ConfigError, Registry, callable_factory

from ._entry import Entry
from ._index import VectorIndex, check_ann

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "STORES",
    "MemoryStore",
    "Store",
    "gptcache_store",
    "memory_store",
    "redis_store",
    "register_store",
    "sqlite_store",
    "store_from_spec",
]


class Store:
    """Where entries live. Methods are synchronous and thread-safe; ``blocking`` stores (disk,
    network) are called from a worker thread so the event loop never waits on them.

    ``search`` returns up to ``k`` (entry, cosine similarity) pairs of one group, best first;
    stores drop expired entries themselves, so callers never see one.
    """

    name = "store"
    blocking = True
    #: ``get`` and ``search`` only read local data and never wait on a lock a writer holds, so
    #: callers may run them on the event loop even when writes are ``blocking``
    inline_reads = False
    #: ``touch`` only records in memory (written out later), so callers may call it on the event loop
    cheap_touch = False
    max_entries: int | None = None

    def get(self, key: str, now: float) -> Entry | None:
        raise NotImplementedError

    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        raise NotImplementedError

    def put(self, entry: Entry) -> None:
        raise NotImplementedError

    def touch(self, key: str, now: float) -> None:
        """Mark an entry used (for LRU eviction and hit counts)."""

    def flush_due(self) -> bool:
        """Whether touches recorded in memory (``cheap_touch``) are waiting to be written."""
        return False

    def flush(self) -> None:
        """Write touches recorded in memory; a blocking call."""

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files."""

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_entries={self.max_entries})"


def _check_max(max_entries: int | None) -> int | None:
    if max_entries is not None and (isinstance(max_entries, bool) or not isinstance(max_entries, int)
                                    or max_entries < 1):
        raise ConfigError(f"max_entries must be a positive integer or None, got {max_entries!r}")
    return max_entries


class MemoryStore(Store):
    """Entries in this process's memory, least recently used evicted past ``max_entries``."""

    name = "memory"
    blocking = False

    def __init__(self, max_entries: int | None = 100_000, *, ann: bool | str = "auto",
                 ann_min: int = 5_000) -> None:
        self.max_entries = _check_max(max_entries)
        check_ann(ann)
        self._ann = ann
        self._ann_min = ann_min
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._groups: dict[str, VectorIndex] = {}
        self._lock = threading.RLock()

    def get(self, key: str, now: float) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expired(now):
                self._drop(key)
                return None
            return entry

    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        index = self._groups.get(group)
        if index is None:
            return []
        out: list[tuple[Entry, float]] = []
        for key, sim in index.search(vector, k):
            entry = self.get(key, now)
            if entry is not None:
                out.append((entry, sim))
        return out

    def put(self, entry: Entry) -> None:
        with self._lock:
            if entry.key in self._entries:
                self._drop(entry.key)
            self._entries[entry.key] = entry
            if entry.vector is not None:
                index = self._groups.get(entry.group)
                if index is None:
                    index = self._groups[entry.group] = VectorIndex(
                        int(entry.vector.shape[-1]), ann=self._ann, ann_min=self._ann_min)
                index.add(entry.key, entry.vector)
            while self.max_entries is not None and len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def touch(self, key: str, now: float) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.hits += 1
                self._entries.move_to_end(key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.vector is not None:
            index = self._groups.get(entry.group)
            if index is not None:
                index.remove(key)
                if not len(index):
                    del self._groups[entry.group]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._groups.clear()

    def count(self) -> int:
        return len(self._entries)


def memory_store(spec: str, max_entries: int | None) -> Store:
    """``"memory"``: a :class:`MemoryStore`."""
    return MemoryStore(max_entries)


def sqlite_store(spec: str, max_entries: int | None) -> Store:
    """``"sqlite"`` (the default file) or ``"sqlite:///path.db"`` (``sqlite:///:memory:`` in memory)."""
    from ._sqlite import SQLiteStore

    path = spec.partition("://")[2].removeprefix("/")
    return SQLiteStore(None if not path else path if path == ":memory:" else Path(path), max_entries=max_entries)


def redis_store(spec: str, max_entries: int | None) -> Store:
    """``"redis://host:port/db"`` (also ``rediss://`` and ``unix://``)."""
    from ._redis import RedisStore

    return RedisStore(spec, max_entries=max_entries)


def gptcache_store(spec: str, max_entries: int | None) -> Store:
    """``"gptcache"`` or ``"gptcache:///dir"``: a GPTCache data manager."""
    from ._gptcache import GPTCacheStore

    return GPTCacheStore(path=spec.partition("://")[2].removeprefix("/") or None)


# a store string's scheme (the part before "://", or the whole string) -> the factory that opens it
BUILTIN_STORES: dict[str, str] = {
    "memory": "costmw.plugins.cache._store:memory_store",
    "sqlite": "costmw.plugins.cache._store:sqlite_store",
    "redis": "costmw.plugins.cache._store:redis_store",
    "rediss": "costmw.plugins.cache._store:redis_store",
    "unix": "costmw.plugins.cache._store:redis_store",
    "gptcache": "costmw.plugins.cache._store:gptcache_store",
}


STORES: Registry[Callable[[str, int | None], Store]] = Registry("cache store", "costmw.stores", BUILTIN_STORES,
                                                                 callable_factory("cache store"))


def register_store(scheme: str, factory: str | Callable[[str, int | None], Store]) -> None:
    """Make ``store="<scheme>://..."`` (or just ``"<scheme>"``) open a store: ``factory(spec,
    max_entries)`` gets the whole string. Built-in schemes cannot be taken."""
    STORES.register(scheme, factory)


def store_from_spec(spec: str, max_entries: int | None) -> Store:
    """The store a config string names: "memory", "sqlite", "sqlite:///path.db",
    "redis://host:port/db", "gptcache", "gptcache:///dir", or a scheme added with ``register_store``."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"store must be a Store or a string like 'memory' or 'sqlite:///cache.db', got {spec!r}")
    scheme = spec.partition("://")[0]
    return STORES.get(scheme)(spec, max_entries)
