"""RedisStore: one cache shared by every process that points at the same Redis.

Each entry is a hash ``<prefix>:e:<key>`` (its JSON, group, float32 vector), expiring with its
TTL. The semantic index works on plain Redis >= 6: every vector is filed in LSH buckets (sets),
and a query re-scores exactly the few entries its buckets hold. Where the server has the vector
query engine (Redis Stack, Redis 8), an HNSW index over the same hashes is used instead.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import missing_extra

from ._entry import Entry, vector_from_bytes, vector_to_bytes
from ._lsh import HyperplaneLSH
from ._store import Store, _check_max

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RedisStore"]

log = logging.getLogger("costmw.cache")


class RedisStore(Store):
    """A cache in Redis. ``url`` like ``redis://127.0.0.1:6379/0``; ``prefix`` namespaces the keys
    (several caches can share one database); ``index`` is "auto" (the server's vector engine when
    present, else LSH), "lsh" or "vector". Operations time out after ``timeout`` seconds so a
    missing server costs little; the plugin steps aside and tries again later."""

    name = "redis"

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "costmw:cache",
                 max_entries: int | None = 100_000, index: str = "auto", timeout: float = 0.5,
                 lsh_tables: int = 40, lsh_bits: int = 12, max_candidates: int = 4096,
                 client: Any = None) -> None:
        if index not in ("auto", "lsh", "vector"):
            raise ValueError(f"index must be 'auto', 'lsh' or 'vector', got {index!r}")
        self.max_entries = _check_max(max_entries)
        self.url, self.prefix, self.index = url, prefix, index
        self.max_candidates = max_candidates
        self._lsh_shape = (lsh_tables, lsh_bits)
        self._r = client if client is not None else _connect(url, timeout)
        self._lsh: HyperplaneLSH | None = None
        self._mode: str | None = None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._puts = 0

    # -- layout ------------------------------------------------------------------------------
    def _k(self, *parts: object) -> str:
        return ":".join((self.prefix, *map(str, parts)))

    def _setup(self, dim: int | None) -> str | None:
        """The index mode ("lsh" or "vector") agreed through ``<prefix>:meta``; None before any vector.
        The index is made for one vector size: vectors of another size (the embedder changed)
        make it again, here and, through the meta's size, in every process sharing the prefix."""
        if self._mode is not None and (dim is None or self._lsh is None or self._lsh.dim == dim):
            return self._mode
        self._mode = self._lsh = None
        meta = {k.decode(): v.decode() for k, v in self._r.hgetall(self._k("meta")).items()}
        if meta and dim is not None and int(meta["dim"]) != dim:
            log.warning("costmw cache: the Redis index under %r was made for vectors of size %s and the embedder "
                        "now makes size %d; making the index again (exact-match entries are kept)",
                        self.prefix, meta["dim"], dim)
            self._drop_index()
            meta = {}
        if not meta:
            if dim is None:
                return None
            mode = self._pick_mode(dim)
            tables, bits = self._lsh_shape
            self._r.hsetnx(self._k("meta"), "dim", dim)
            for field, value in (("mode", mode), ("tables", tables), ("bits", bits)):
                self._r.hsetnx(self._k("meta"), field, value)
            meta = {k.decode(): v.decode() for k, v in self._r.hgetall(self._k("meta")).items()}
        self._lsh = HyperplaneLSH(int(meta["dim"]), tables=int(meta["tables"]), bits=int(meta["bits"]))
        self._mode = meta["mode"]
        return self._mode

    def _drop_index(self) -> None:
        """Forget the semantic index: its size and mode, the vector engine's index, the LSH buckets."""
        self._r.delete(self._k("meta"))
        try:
            self._r.execute_command("FT.DROPINDEX", self._k("idx"))
        except Exception as exc:  # no vector engine, or no index yet
            log.debug("costmw cache: no Redis vector index to drop (%s)", exc)
        for pattern in (self._k("b", "*"), self._k("f", "*")):
            batch = list(self._r.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 1000):
                self._r.delete(*batch[i:i + 1000])
        self._mode = self._lsh = None
        with self._lock:
            self._vectors.clear()

    def _pick_mode(self, dim: int) -> str:
        if self.index == "lsh":
            return "lsh"
        try:
            self._r.execute_command(
                "FT.CREATE", self._k("idx"), "ON", "HASH", "PREFIX", "1", self._k("e", ""), "SCHEMA",
                "grp", "TAG", "vec", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", str(dim),
                "DISTANCE_METRIC", "COSINE")
            return "vector"
        except Exception as exc:
            if "already exists" in str(exc).lower():
                return "vector"
            if self.index == "vector":
                raise
            log.info("costmw cache: Redis has no vector query engine (%s); using LSH buckets", exc)
            return "lsh"

    # -- the store protocol ----------------------------------------------------------------
    def get(self, key: str, now: float) -> Entry | None:
        raw, vec = self._r.hmget(self._k("e", key), "json", "vec")
        if raw is None:
            return None
        entry = Entry.from_json(raw, vector_from_bytes(vec))
        return None if entry.expired(now) else entry

    def search(self, group: str, vector: np.ndarray, k: int, now: float) -> list[tuple[Entry, float]]:
        mode = self._setup(None)
        if mode is not None and self._lsh is not None and self._lsh.dim != int(vector.shape[-1]):
            self._mode = None  # another process may have made the index again for this size: read it again
            mode = self._setup(None)
        if mode is None or self._lsh is None or self._lsh.dim != int(vector.shape[-1]):
            return []  # an index of another size (the next put of this size makes it again)
        scored = self._vector_search(group, vector, k) if mode == "vector" else self._lsh_search(group, vector, k)
        if not scored:
            return []
        pipe = self._r.pipeline(transaction=False)
        for key, _ in scored:
            pipe.hget(self._k("e", key), "json")
        out: list[tuple[Entry, float]] = []
        for (key, sim), raw in zip(scored, pipe.execute()):
            if raw is not None:
                entry = Entry.from_json(raw, self._vectors.get(key))
                if not entry.expired(now):
                    out.append((entry, sim))
        return out

    def _lsh_search(self, group: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        import numpy as np

        assert self._lsh is not None
        buckets = [self._k("b", group, table, bucket) for table, bucket in self._lsh.probes(vector)]
        pipe = self._r.pipeline(transaction=False)
        for bucket in buckets:
            pipe.smembers(bucket)
        found: dict[str, list[str]] = {}
        for bucket, members in zip(buckets, pipe.execute()):
            for m in members:
                found.setdefault(m.decode(), []).append(bucket)
        keys = sorted(found)[: self.max_candidates]
        vectors = self._fetch_vectors(keys, found)
        if not vectors:
            return []
        names = list(vectors)
        sims = np.stack([vectors[n] for n in names]) @ np.asarray(vector, dtype=np.float32).reshape(-1)
        order = np.argsort(-sims)[:k]
        return [(names[i], float(sims[i])) for i in order]

    def _fetch_vectors(self, keys: list[str], seen_in: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Vectors of ``keys``, from the local copy where possible; entries gone from Redis (expired
        or evicted) are taken out of the buckets that still name them."""
        with self._lock:
            out = {k: self._vectors[k] for k in keys if k in self._vectors}
        missing = [k for k in keys if k not in out]
        if not missing:
            return out
        pipe = self._r.pipeline(transaction=False)
        for key in missing:
            pipe.hget(self._k("e", key), "vec")
        gone: list[str] = []
        for key, blob in zip(missing, pipe.execute()):
            vec = vector_from_bytes(blob)
            if vec is None:
                gone.append(key)
            else:
                out[key] = vec
                self._remember(key, vec)
        if gone:
            pipe = self._r.pipeline(transaction=False)
            for key in gone:
                for bucket in seen_in.get(key, ()):
                    pipe.srem(bucket, key)
                pipe.zrem(self._k("lru"), key)
            pipe.execute()
        return out

    def _remember(self, key: str, vector: np.ndarray) -> None:
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > 50_000:
                self._vectors.popitem(last=False)

    def _vector_search(self, group: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        import numpy as np

        query = f"(@grp:{{{group}}})=>[KNN {max(k, 4)} @vec $B AS dist]"
        reply = self._r.execute_command(
            "FT.SEARCH", self._k("idx"), query, "PARAMS", "2", "B", vector_to_bytes(vector),
            "RETURN", "1", "vec", "SORTBY", "dist", "DIALECT", "2", "LIMIT", "0", str(max(k, 4)))
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        scored: list[tuple[str, float]] = []
        for i in range(1, len(reply), 2):
            name = reply[i].decode()
            fields = reply[i + 1]
            blob = next((fields[j + 1] for j in range(0, len(fields), 2) if fields[j] == b"vec"), None)
            vec = vector_from_bytes(blob)
            if vec is not None:
                key = name.removeprefix(self._k("e", ""))
                self._remember(key, vec)
                scored.append((key, float(vec @ q)))
        scored.sort(key=lambda kv: -kv[1])
        return scored[:k]

    def put(self, entry: Entry) -> None:
        dim = None if entry.vector is None else int(entry.vector.shape[-1])
        mode = self._setup(dim) if dim is not None else self._mode
        name = self._k("e", entry.key)
        fields: dict[str, Any] = {"json": entry.to_json(), "grp": entry.group}
        if entry.vector is not None:
            fields["vec"] = vector_to_bytes(entry.vector)
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping=fields)
        if entry.expires is not None:
            pipe.pexpireat(name, int(entry.expires * 1000))
        pipe.zadd(self._k("lru"), {entry.key: entry.created})
        if entry.vector is not None and mode == "lsh":
            assert self._lsh is not None
            buckets = [self._k("b", entry.group, t, b) for t, b in enumerate(self._lsh.buckets(entry.vector))]
            for bucket in buckets:
                pipe.sadd(bucket, entry.key)
            pipe.delete(self._k("f", entry.key))
            pipe.sadd(self._k("f", entry.key), *buckets)
            if entry.expires is not None:
                pipe.pexpireat(self._k("f", entry.key), int(entry.expires * 1000))
        pipe.execute()
        self._puts += 1
        if self.max_entries is not None and (self.max_entries <= 1000 or self._puts % 64 == 0):
            self._evict()

    def _evict(self) -> None:
        excess = int(self._r.zcard(self._k("lru"))) - int(self.max_entries or 0)
        if excess > 0:
            for key in self._r.zrange(self._k("lru"), 0, excess - 1):
                self.delete(key.decode())

    def touch(self, key: str, now: float) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.zadd(self._k("lru"), {key: now}, xx=True)
        pipe.execute()

    def delete(self, key: str) -> None:
        buckets = self._r.smembers(self._k("f", key))
        pipe = self._r.pipeline(transaction=True)
        for bucket in buckets:
            pipe.srem(bucket, key)
        pipe.delete(self._k("e", key), self._k("f", key))
        pipe.zrem(self._k("lru"), key)
        pipe.execute()
        with self._lock:
            self._vectors.pop(key, None)

    def clear(self) -> None:
        """Delete every key under this store's prefix (and nothing else), the index's size and
        schema included: the next vector, of whatever size, makes a new index."""
        self._drop_index()
        batch: list[bytes] = []
        for name in self._r.scan_iter(match=self._k("*"), count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self._r.delete(*batch)
                batch.clear()
        if batch:
            self._r.delete(*batch)
        with self._lock:
            self._vectors.clear()

    def count(self) -> int:
        """Entries filed (expired ones are counted until a search or eviction meets them)."""
        return int(self._r.zcard(self._k("lru")))

    def close(self) -> None:
        close = getattr(self._r, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"RedisStore({_safe_url(self.url)!r}, prefix={self.prefix!r}, max_entries={self.max_entries})"


def _connect(url: str, timeout: float) -> Any:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise missing_extra("redis", "redis", exc) from exc
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=0)


def _safe_url(url: str) -> str:
    """The URL without a password, for logs and reprs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
