"""Per-key rate limits in requests and tokens per minute.

Counts are kept per key and per minute (fixed windows). With a Redis URL every gateway worker and
host counts against the same numbers; without one, each process counts on its own (fine for a
single worker). A limiter that cannot reach Redis lets calls through and logs once: a rate limit
protects a budget, which the ledger's reservations already hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

__all__ = ["RateLimiter"]

log = logging.getLogger("costmw.server")
_WINDOW_S = 60


class RateLimiter:
    """``admit`` before a call, ``settle`` after it; both per key id."""

    def __init__(self, redis_url: str | None = None, *, prefix: str = "costmw:rl") -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._redis: Any = None
        self._counts: dict[tuple[str, int, str], int] = {}
        self._lock = asyncio.Lock()
        self._warned = False
        self.errors = 0

    def _client(self) -> Any:
        if self._redis is None and self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return self._redis

    async def _add(self, key_id: str, window: int, kind: str, amount: int) -> int:
        client = self._client()
        if client is None:
            async with self._lock:
                slot = (key_id, window, kind)
                self._counts[slot] = self._counts.get(slot, 0) + amount
                if len(self._counts) > 50_000:
                    for old in [k for k in self._counts if k[1] < window]:
                        del self._counts[old]
                return self._counts[slot]
        name = f"{self.prefix}:{key_id}:{window}:{kind}"
        pipe = client.pipeline()
        pipe.incrby(name, amount)
        pipe.expire(name, _WINDOW_S * 2)
        total, _ = await pipe.execute()
        return int(total)

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int) -> float | None:
        """Count one request of about ``tokens`` tokens. Returns None to go on, else the seconds to
        wait before the window turns (the request is then not counted)."""
        if rpm is None and tpm is None:
            return None
        now = time.time()
        window = int(now // _WINDOW_S)
        retry = _WINDOW_S - (now % _WINDOW_S)
        try:
            if rpm is not None:
                count = await self._add(key_id, window, "req", 1)
                if count > rpm:
                    await self._add(key_id, window, "req", -1)
                    return retry
            if tpm is not None:
                used = await self._add(key_id, window, "tok", tokens)
                if used > tpm:
                    await self._add(key_id, window, "tok", -tokens)
                    if rpm is not None:
                        await self._add(key_id, window, "req", -1)
                    return retry
        except Exception as exc:  # a limiter that cannot count lets the call through
            self.errors += 1
            if not self._warned:
                self._warned = True
                log.warning("costmw gateway: rate limits not enforced (%s: %s)", type(exc).__name__, exc)
        return None

    async def settle(self, key_id: str, tpm: int | None, estimated: int, actual: int) -> None:
        """Replace a request's estimated tokens with what it really used."""
        if tpm is None or actual == estimated:
            return
        try:
            await self._add(key_id, int(time.time() // _WINDOW_S), "tok", actual - estimated)
        except Exception:
            self.errors += 1

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
