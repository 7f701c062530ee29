"""SemanticCache: answer repeated and paraphrased questions without a model call, and never wrongly."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from costmw.embeddings import Embedder, aembed_request, resolve_embedder
from costmw.plugin_api import (
    CallNext,
    Chunk,
    ConfigError,
    LoopThread,
    Plugin,
    Request,
    Response,
    Saving,
    StreamNext,
    join_chunks,
    register_plugin,
    response_chunks,
)

from ._entry import Entry, response_from_dict, response_to_dict
from ._flight import SingleFlight
from ._keys import CacheKey, is_deterministic, read_controls, request_key, scope_of
from ._select import Choice, select
from ._sqlite import DEFAULT_PATH, SQLiteStore
from ._store import Store, store_from_spec
from ._template import TemplateCheck, template_slots
from ._verify import Verdict, Verifier

if TYPE_CHECKING:
    from costmw import Chain

__all__ = ["SemanticCache"]

log = logging.getLogger("costmw.cache")
T = TypeVar("T")
_NOT_STORED = frozenset({"error", "content_filter"})


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the synchronous part of a lookup found: an exact ``entry``, a ``choice``, candidates
    still to be chosen among (``found``), or the part that ``failed``."""

    choice: Choice | None = None
    exact: Entry | None = None
    found: list[tuple[Entry, float]] | None = None
    failed: tuple[str, Exception] | None = None
    pending: bool = False
    choose_in_thread: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    key: CacheKey
    store: bool
    ttl: float | None


def _number(name: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bounds}, got {value!r}")
    return float(value)


@register_plugin("semantic_cache")
class SemanticCache(Plugin):
    """Serves a cached answer when a request was answered before: exactly the same request
    (tier "exact"), or the same conversation and parameters with a last user turn that means the
    same (tier "semantic": cosine similarity >= ``threshold``, checked by the verifier).

    ``store``: a :class:`Store`, or "memory", "sqlite:///path.db" (the default is SQLite in
    ``.costmw-cache/``), "redis://host:port/db", "gptcache". ``embedder``: an Embedder, or
    "minilm", "hashing", an API or local model name; None keeps only the exact tier.
    ``threshold`` is a cosine similarity in [0, 1] (0 and 1 are real values). ``scope``: entries
    are private to the tenant ("tenant", the default) or to the tenant and user ("user"); only
    ``shared_namespaces`` are seen across tenants. ``ttl``: seconds an entry lives (None: until
    evicted). Requests with temperature > 0 or n > 1 are not cached unless ``cache_sampled``.
    """

    name = "semantic_cache"

    def __init__(
        self,
        store: Store | str | None = None,
        embedder: Embedder | str | None = "minilm",
        threshold: float = 0.8,
        scope: str = "tenant",
        ttl: float | None = None,
        *,
        max_entries: int | None = 100_000,
        shared_namespaces: Sequence[str] = (),
        verifier: bool | Verifier | Callable[[str, str], Any] = True,
        margin: float = 0.02,
        candidates: int = 5,
        cache_sampled: bool = False,
        stream_chunk_chars: int = 24,
        retry_after: float = 5.0,
    ) -> None:
        self.threshold = _number("threshold", threshold, 0.0, 1.0)
        self.margin = _number("margin", margin, 0.0, 1.0)
        self.retry_after = _number("retry_after", retry_after, 0.0)
        if scope not in ("tenant", "user"):
            raise ConfigError(f"scope must be 'tenant' or 'user', got {scope!r}")
        self.scope = scope
        self.ttl = None if ttl is None else _number("ttl", ttl, 0.0)
        if self.ttl == 0.0:
            raise ConfigError("ttl must be > 0 seconds, or None for entries that live until evicted")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(f"candidates must be a positive integer, got {candidates!r}")
        self.candidates = candidates
        if isinstance(shared_namespaces, str):
            shared_namespaces = [shared_namespaces]
        self.shared_namespaces = frozenset(str(n) for n in shared_namespaces)
        self.cache_sampled = bool(cache_sampled)
        self.stream_chunk_chars = max(0, int(stream_chunk_chars))
        self.storage = self._make_store(store, max_entries)
        self.embedder = None if embedder is None else self._make_embedder(embedder)
        self.verifier = self._make_verifier(verifier)
        self.template_check = (TemplateCheck(self.embedder.embed, self.threshold)
                               if self.embedder is not None and self.verifier is not None else None)
        self.stats: dict[str, int] = dict.fromkeys(
            ("lookups", "hits_exact", "hits_semantic", "shared", "misses", "rejected", "ambiguous", "stored",
             "skipped", "errors"), 0)
        self._flight: SingleFlight[Response] = SingleFlight()
        self._down_until: dict[str, float] = {}
        self._logged: set[tuple[str, str]] = set()
        self._chain: Chain | None = None
        self._runner: LoopThread | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._flushing = False

    # -- construction helpers ------------------------------------------------------------
    @staticmethod
    def _make_store(store: Store | str | None, max_entries: int | None) -> Store:
        if store is None:
            path = os.environ.get("COSTMW_SEMANTIC_CACHE") or DEFAULT_PATH
            return SQLiteStore(Path(path), max_entries=max_entries)
        if isinstance(store, Store):
            return store
        if isinstance(store, str):
            return store_from_spec(store, max_entries)
        raise ConfigError(f"store must be a costmw cache Store or a string, got {type(store).__name__}")

    @staticmethod
    def _make_embedder(embedder: Embedder | str) -> Embedder:
        try:
            return resolve_embedder(embedder)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"embedder: {exc}") from exc

    @staticmethod
    def _make_verifier(verifier: bool | Verifier | Callable[[str, str], Any] | None,
                       ) -> Callable[[str, str], Any] | None:
        if verifier is True:
            return Verifier()
        if verifier is False or verifier is None:
            return None
        if callable(verifier):
            return verifier
        raise ConfigError(f"verifier must be true, false or a function (query, cached) -> bool, got {verifier!r}")

    def bind(self, chain: Chain) -> None:
        self._chain = chain

    # -- the chain hooks -----------------------------------------------------------------
    async def handle(self, request: Request, call_next: CallNext) -> Response:
        plan = self._plan(request)
        if plan is None:
            return await call_next(request)
        hit = await self._lookup(request, plan)
        if hit is not None:
            return hit

        async def fetch() -> Response:
            response = await call_next(request)
            if plan.store:
                await self._save(request, plan, response)
            return response

        response, shared = await self._flight.run(plan.key.exact, fetch)
        if not shared:
            return response
        self.stats["shared"] += 1
        return self._serve_copy(request, response_to_dict(response), "exact", 1.0, "single_flight")

    async def astream(self, request: Request, call_next: StreamNext) -> AsyncIterator[Chunk]:
        plan = self._plan(request)
        if plan is not None:
            hit = await self._lookup(request, plan)
            if hit is not None:
                for chunk in response_chunks(hit, self.stream_chunk_chars):
                    yield chunk
                return
        pieces: list[Chunk] = []
        async for chunk in call_next(request):
            if chunk.response is not None and plan is not None and plan.store:
                await self._save(request, plan, _whole(chunk.response, pieces))
            elif chunk.response is None:
                pieces.append(chunk)
            yield chunk

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._call(self.storage.close)

    # -- the direct API (used by integrations such as the LangChain cache) ------------------
    async def alookup(self, request: Request) -> Response | None:
        """The cached answer to ``request``, or None; honours the request's cache controls."""
        plan = self._plan(request)
        return None if plan is None else await self._lookup(request, plan)

    async def astore(self, request: Request, response: Response) -> None:
        """Cache ``response`` as the answer to ``request`` (unless its controls forbid it)."""
        plan = self._plan(request)
        if plan is not None and plan.store:
            await self._save(request, plan, response)

    async def aclear(self) -> None:
        """Delete every entry of this cache's store."""
        await self._call(self.storage.clear)

    def lookup(self, request: Request) -> Response | None:
        return self._run(self.alookup(request))

    def store(self, request: Request, response: Response) -> None:
        self._run(self.astore(request, response))

    def clear(self) -> None:
        self._run(self.aclear())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._chain is not None:
            return self._chain.run_sync(coro)  # type: ignore[no-any-return]
        if self._runner is None:
            self._runner = LoopThread("costmw-cache")
        return self._runner.run(coro)

    # -- planning a request ----------------------------------------------------------------
    def _plan(self, request: Request) -> _Plan | None:
        controls = read_controls(request.metadata)
        if controls.no_cache:
            self._note(request, False, "no_cache")
            return None
        if not self.cache_sampled and not is_deterministic(request.params):
            self.stats["skipped"] += 1
            self._note(request, False, "sampled")
            return None
        scope = scope_of(request.metadata, controls.namespace, per_user=self.scope == "user",
                         shared_namespaces=self.shared_namespaces)
        space = "exact-only" if self.embedder is None else f"{self.embedder.name}"
        ttl = self.ttl if controls.ttl is None else controls.ttl
        return _Plan(request_key(request, scope, space), not controls.no_store and ttl != 0.0, ttl)

    # -- lookups ---------------------------------------------------------------------------
    async def _lookup(self, request: Request, plan: _Plan) -> Response | None:
        """Exact key, then (on a miss) embed, search and choose: in one worker-thread hop for a
        store whose reads block, or when the query still needs embedding; inline otherwise."""
        self.stats["lookups"] += 1
        if not self._up("store"):
            return self._miss(request, "store_unavailable")
        semantic = bool(plan.key.semantic) and self.embedder is not None and self._up("embedder")
        vector = self._known_vector(request) if semantic else None
        now = time.time()
        if self.storage.blocking and not self.storage.inline_reads:
            outcome = await asyncio.to_thread(self._probe, request, plan, semantic, vector, now, True)
        else:
            outcome = self._probe(request, plan, semantic, vector, now, vector is not None)
            if outcome.pending:  # the exact tier missed: the rest needs the embedder, off the loop
                outcome = await asyncio.to_thread(self._probe, request, plan, semantic, vector, now, True, False)
            elif outcome.choose_in_thread and outcome.found is not None:
                outcome = _Outcome(await asyncio.to_thread(self._choose, plan, outcome.found))
        if outcome.failed is not None:
            part, exc = outcome.failed
            self._failed(part, exc)
            return self._miss(request, f"{part}_error")
        if outcome.exact is not None:
            return self._serve(request, outcome.exact, "exact", 1.0)
        choice = outcome.choice
        if choice is None:
            choice = Choice(None, reason="miss") if outcome.found is None else self._choose(plan, outcome.found)
        if choice.entry is None:
            if choice.reason == "ambiguous":
                self.stats["ambiguous"] += 1
            elif choice.reason.startswith("verifier"):
                self.stats["rejected"] += 1
            return self._miss(request, choice.reason, choice.similarity)
        return self._serve(request, choice.entry, choice.tier, choice.similarity)

    def _known_vector(self, request: Request) -> Any:
        assert self.embedder is not None
        return request.context.recall(("embedding", self.embedder.name, request.last_user_text))

    def _probe(self, request: Request, plan: _Plan, semantic: bool, vector: Any, now: float, may_block: bool,
               exact: bool = True) -> _Outcome:
        """The synchronous part of a lookup. ``may_block``: embedding and the template check may
        run here (a worker thread); otherwise the outcome says what is left for one."""
        if exact:
            try:
                entry = self.storage.get(plan.key.exact, now)
            except Exception as exc:
                return _Outcome(failed=("store", exc))
            if entry is not None:
                return _Outcome(exact=entry)
        if not semantic:
            return _Outcome(Choice(None, reason="miss"))
        if vector is None:
            if not may_block:
                return _Outcome(pending=True)
            assert self.embedder is not None
            try:
                vector = self.embedder.embed([request.last_user_text])[0]
            except Exception as exc:
                return _Outcome(failed=("embedder", exc))
            request.context.remember(("embedding", self.embedder.name, request.last_user_text), vector)
        try:
            found = self.storage.search(plan.key.group, vector, self.candidates, now)
        except Exception as exc:
            return _Outcome(failed=("store", exc))
        if not found:
            return _Outcome(Choice(None, reason="miss"))
        if may_block:
            return _Outcome(self._choose(plan, found))
        templated = self.template_check is not None and any(
            template_slots(plan.key.text, e.text) for e, s in found if s >= self.threshold - 1e-6)
        return _Outcome(found=found, choose_in_thread=templated)

    def _choose(self, plan: _Plan, found: list[tuple[Entry, float]]) -> Choice:
        verify = self.verifier
        if isinstance(verify, Verifier):  # readings stored with the entries spare reading them again
            for entry, similarity in found:
                if entry.reading is not None and similarity >= self.threshold - 1e-6:
                    verify.remember(entry.text, entry.reading)
        if self.template_check is not None and verify is not None:
            base, template = verify, self.template_check

            def verify(query: str, cached: str) -> Any:
                verdict = base(query, cached)
                return verdict if not verdict else (verdict if template(query, cached) else Verdict(
                    False, "template", "the variable part of a templated prompt differs"))
        return select(plan.key.text, plan.key.exact, found, threshold=self.threshold, margin=self.margin,
                      verify=verify)

    def _miss(self, request: Request, reason: str, similarity: float | None = None) -> Response | None:
        self.stats["misses"] += 1
        self._note(request, False, reason, similarity)
        return None

    def _note(self, request: Request, hit: bool, reason: str, similarity: float | None = None) -> None:
        note: dict[str, Any] = {"hit": hit, "reason": reason}
        if similarity is not None:
            note["similarity"] = round(similarity, 4)
        request.context.info["cache"] = note

    def _serve(self, request: Request, entry: Entry, tier: str, similarity: float) -> Response:
        self.stats[f"hits_{tier}"] += 1
        self._touch(entry.key)
        return self._serve_copy(request, entry.response, tier, similarity, tier)

    def _serve_copy(self, request: Request, answer: dict[str, Any], tier: str, similarity: float,
                    how: str) -> Response:
        response = response_from_dict(answer)
        response.served_by = f"cache:{tier}"
        response.cost_usd = 0.0
        response.request_id = request.id
        usd = self._avoided_cost(request, response, answer)
        request.context.savings.append(Saving(self.plugin_name, usd, f"{how} hit", response.usage.total_tokens))
        note = {"hit": True, "tier": how, "similarity": round(similarity, 4)}
        request.context.info["cache"] = note
        response.info["cache"] = note
        return response

    def _avoided_cost(self, request: Request, response: Response, answer: dict[str, Any]) -> float:
        """What the call the cache answered would have cost on the requested model."""
        price = None
        if self._chain is not None:
            try:
                price = self._chain.price_of(request.model)
            except Exception:
                price = None
        if price is not None:
            return price.cost(response.usage.prompt_tokens, response.usage.completion_tokens)
        return float(answer.get("cost_usd") or 0.0)

    def _touch(self, key: str) -> None:
        if not self.storage.blocking or self.storage.cheap_touch:
            try:
                self.storage.touch(key, time.time())
                flush = self.storage.blocking and not self._flushing and self.storage.flush_due()
            except Exception as exc:
                self._failed("store", exc)
                return
            if flush:  # buffered hits are written from a worker thread, one flush at a time
                self._flushing = True
                self._in_background(self.storage.flush).add_done_callback(self._flushed)
            return
        self._in_background(self.storage.touch, key, time.time())

    def _in_background(self, fn: Callable[..., Any], *args: Any) -> asyncio.Task[Any]:
        """Run a store call without waiting for it (failing quietly); ``aclose`` waits for it."""
        task = asyncio.get_running_loop().create_task(self._call_quietly(fn, *args))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _flushed(self, task: asyncio.Task[Any]) -> None:
        self._flushing = False

    # -- storing ---------------------------------------------------------------------------
    async def _save(self, request: Request, plan: _Plan, response: Response) -> None:
        if response.finish_reason in _NOT_STORED or (not response.text and not response.tool_calls):
            return
        if not self._up("store"):
            return
        vector = None
        if plan.key.semantic and self.embedder is not None and self._up("embedder"):
            try:
                vector = await aembed_request(request, self.embedder)
            except Exception as exc:
                self._failed("embedder", exc)
        now = time.time()
        entry = Entry(key=plan.key.exact, group=plan.key.group, text=plan.key.text,
                      scope=hashlib.sha256(plan.key.scope.encode()).hexdigest()[:16],
                      response=response_to_dict(response), vector=vector, created=now,
                      expires=None if plan.ttl is None else now + plan.ttl)
        if await self._call_quietly(self._put, entry):
            self.stats["stored"] += 1

    def _put(self, entry: Entry) -> None:
        """Store ``entry``, with the verifier's reading of its text when it can be searched."""
        if entry.vector is not None and isinstance(self.verifier, Verifier):
            try:
                entry.reading = self.verifier.reading(entry.text)
            except Exception as exc:  # a text the verifier cannot read is read again at lookup
                log.debug("costmw semantic cache: no stored reading for an entry: %s", exc)
        self.storage.put(entry)

    # -- failing open ----------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.storage.blocking:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def _call_quietly(self, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            await self._call(fn, *args)
            return True
        except Exception as exc:
            self._failed("store", exc)
            return False

    def _up(self, part: str) -> bool:
        return time.monotonic() >= self._down_until.get(part, 0.0)

    def _failed(self, part: str, exc: Exception) -> None:
        """Count a failure, log it once per kind, and leave ``part`` alone for ``retry_after`` s."""
        self.stats["errors"] += 1
        self._down_until[part] = time.monotonic() + self.retry_after
        kind = (part, type(exc).__name__)
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("costmw semantic cache: the %s failed (%s: %s); calls go on without the cache, "
                        "retrying in %.0f s", part, type(exc).__name__, exc, self.retry_after)

    def __repr__(self) -> str:
        embedder = None if self.embedder is None else self.embedder.name
        return (f"SemanticCache(store={self.storage!r}, embedder={embedder!r}, threshold={self.threshold}, "
                f"scope={self.scope!r}, ttl={self.ttl})")


def _whole(response: Response, pieces: list[Chunk]) -> Response:
    """The final response of a stream, its text assembled from the chunks when it has none."""
    if response.text or response.tool_calls:
        return response
    text, calls = join_chunks(pieces)
    return response.copy(text=text, tool_calls=calls)
