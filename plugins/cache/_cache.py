"""SemanticCache: answer repeated and paraphrased questions without a model call, and never wrongly."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from costmw.embeddings import Embedder, resolve_embedder
from costmw.plugin_api import (
    CallNext,
    Chunk,
    ConfigError,
    LoopThread,
    Plugin,
    Request,
    Response,
    StreamNext,
    join_chunks,
    long_text,
    register_plugin,
    response_chunks,
)

from ._entry import Entry, response_from_dict, response_to_dict
from ._flight import SingleFlight
from ._judge import JUDGE_CALLS
from ._keys import CacheKey, is_deterministic, read_controls, request_key, scope_of
from ._normal import MAX_TEXT_CHARS, Normaliser, default_normaliser
from ._protocol import CacheVerdict, CacheVerifier
from ._secrets import check_policy, screen
from ._select import Choice, select
from ._sqlite import SQLiteStore
from ._store import Store, store_from_spec
from ._template import TemplateCheck, template_slots
from ._traffic import TrafficCheck
from ._verifiers import make_verifier

if TYPE_CHECKING:
    from costmw import Chain

__all__ = ["SemanticCache"]

log = logging.getLogger("costmw.cache")
T = TypeVar("T")
_NOT_STORED = frozenset({"error", "content_filter"})
_TRAFFIC = "cache:traffic-candidates"  # request.context memo: ([(stored answer, probability)], checked hit)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the synchronous part of a lookup found: an exact ``entry``, candidates to choose
    among (``found``, with the query as the verifier reads it, and each candidate's text as the
    verifier reads it), or the part that ``failed``; ``pending``: the rest needs a worker thread."""

    exact: Entry | None = None
    found: list[tuple[Entry, float]] | None = None
    query: str = ""
    texts: dict[str, str] | None = None
    failed: tuple[str, Exception] | None = None
    pending: bool = False


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
    (tier "exact"), or the same conversation and parameters with a last user turn that asks the
    same thing (tier "semantic"): its nearest cached questions by embedding (cosine >=
    ``threshold``, default 0.75: 99% of the paraphrases in the learned verifier's training data
    reach it once normalised) are judged by the verifier, which serves one only when the probability that
    its answer is wrong is within ``max_error``.

    ``store``: a :class:`Store`, or "memory", "sqlite:///path.db" (the default is SQLite in
    costmw's cache folder, see ``costmw cache info``), "redis://host:port/db", "gptcache".
    ``embedder``: an Embedder, or
    "minilm", "hashing", an API model name or a local model directory; None keeps only the
    exact tier. ``verifier``: True or "learned" (hard guards, then the learned model), "guards",
    "judge" (the learned model asks the chain's cheapest target about pairs it is unsure of),
    False (cosine alone), a :class:`CacheVerifier`, or a function ``(query, cached) -> bool``.
    ``max_error``: the error rate the learned verifier's operating point is chosen for, from
    the calibration data shipped with its model (at most 0.5; default 0.02). ``normalise``:
    read questions without pleasantries and with spelling corrected before embedding and
    verifying them. ``scope``: entries are private to the tenant ("tenant", the default) or to
    the tenant and user ("user"); only ``shared_namespaces`` are seen across tenants. ``ttl``:
    seconds an entry lives (None: until evicted). Requests with temperature > 0 or n > 1 are
    not cached unless ``cache_sampled``. Last user turns longer than ``max_text_chars`` use the
    exact tier only.
    An answer whose prompt or answer holds a secret (an API key, a token) is not stored
    (``secrets="skip"``, the default) or stored with the secrets redacted (``"redact"``).
    ``traffic_check``: learn the verifier's operating point from this cache's own traffic (a
    :class:`TrafficCheck`, or a number: the share of semantic hits also sent to the model to
    check them); off by default. Needs a verifier with a calibrated ``threshold`` (the default).
    """

    name = "semantic_cache"

    def __init__(
        self,
        store: Store | str | None = None,
        embedder: Embedder | str | None = "minilm",
        threshold: float = 0.75,
        scope: str = "tenant",
        ttl: float | None = None,
        *,
        max_error: float = 0.02,
        max_entries: int | None = 100_000,
        shared_namespaces: Sequence[str] = (),
        verifier: bool | str | CacheVerifier | Callable[[str, str], Any] | None = True,
        normalise: bool | Normaliser = True,
        margin: float = 0.02,
        candidates: int = 5,
        cache_sampled: bool = False,
        stream_chunk_chars: int = 24,
        retry_after: float = 5.0,
        max_text_chars: int = MAX_TEXT_CHARS,
        secrets: str = "skip",
        traffic_check: TrafficCheck | float | None = None,
    ) -> None:
        self.threshold = _number("threshold", threshold, 0.0, 1.0)
        self.max_error = _number("max_error", max_error, 0.0, 0.5)
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
        self.max_text_chars = int(_number("max_text_chars", max_text_chars, 1.0))
        if isinstance(shared_namespaces, str):
            shared_namespaces = [shared_namespaces]
        self.shared_namespaces = frozenset(str(n) for n in shared_namespaces)
        self.cache_sampled = bool(cache_sampled)
        self.secrets = check_policy(secrets)  # an answer whose prompt or answer holds a key: "skip" or "redact"
        self.stream_chunk_chars = max(0, int(stream_chunk_chars))
        self.stats: dict[str, int] = dict.fromkeys(
            ("lookups", "hits_exact", "hits_semantic", "shared", "misses", "rejected", "ambiguous", "stored",
             "skipped", "errors", "reread", "checked"), 0)
        self._logged: set[tuple[str, str]] = set()
        self._down_until: dict[str, float] = {}
        self.storage = self._make_store(store, max_entries)
        self.embedder = None if embedder is None else self._make_embedder(embedder)
        self.normaliser = self._make_normaliser(normalise)
        self.verifier = self._make_verifier(verifier) if self.embedder is not None else None
        self.template_check = (TemplateCheck(self.embedder.embed, self.threshold)
                               if self.embedder is not None and self.verifier is not None else None)
        self.traffic = self._make_traffic(traffic_check)
        self._flight: SingleFlight[Response] = SingleFlight()
        self._chain: Chain | None = None
        self._runner: LoopThread | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._flushing = False

    # -- construction helpers ------------------------------------------------------------
    @staticmethod
    def _make_store(store: Store | str | None, max_entries: int | None) -> Store:
        if store is None:
            return SQLiteStore(max_entries=max_entries)  # costmw's cache folder, or $COSTMW_SEMANTIC_CACHE
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
    def _make_normaliser(normalise: bool | Normaliser) -> Normaliser | None:
        if isinstance(normalise, Normaliser):
            return normalise
        if normalise is True:
            return default_normaliser()
        if normalise is False or normalise is None:
            return None
        raise ConfigError(f"normalise must be true, false or a Normaliser, got {normalise!r}")

    def _make_traffic(self, check: TrafficCheck | float | None) -> TrafficCheck | None:
        if check is None or check is False:
            return None
        if isinstance(check, TrafficCheck):
            out = check
        elif isinstance(check, (int, float)) and not isinstance(check, bool):
            if check == 0:
                return None
            out = TrafficCheck(rate=float(check))
        else:
            raise ConfigError(f"traffic_check must be a TrafficCheck, a share of hits to check in (0, 1], or None; "
                              f"got {check!r}")
        if self.verifier is None:
            raise ConfigError("traffic_check needs a verifier (and an embedder): it moves the verifier's operating "
                              "point")
        return out

    def _make_verifier(self, verifier: Any) -> CacheVerifier | None:
        """The verifier; one that fails to load leaves the exact tier only (logged, counted)."""
        try:
            return make_verifier(verifier, self.max_error)
        except ConfigError:
            raise
        except Exception as exc:
            self._failed("verifier", exc, retry=False)
            return None

    def bind(self, chain: Chain) -> None:
        self._chain = chain
        bind = getattr(self.verifier, "bind", None)
        if callable(bind):
            bind(chain)

    # -- the chain hooks -----------------------------------------------------------------
    async def handle(self, request: Request, call_next: CallNext) -> Response:
        plan = self._plan(request)
        if plan is None:
            return await call_next(request)
        hit = await self._lookup(request, plan)
        if hit is not None:
            return hit
        return await self._fetch(request, plan, call_next)

    async def _fetch(self, request: Request, plan: _Plan, call_next: CallNext) -> Response:
        async def fetch() -> Response:
            response = await call_next(request)
            self._observe(request, response)
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
            if chunk.response is not None and plan is not None:
                whole = _whole(chunk.response, pieces)
                self._observe(request, whole)
                if plan.store:
                    await self._save(request, plan, whole)
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
        if plan is not None:
            self._observe(request, response)
            if plan.store:
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
        controls = read_controls(request.options)
        if controls.no_cache:
            self._note(request, False, "no_cache")
            return None
        if not self.cache_sampled and not is_deterministic(request.params):
            self.stats["skipped"] += 1
            self._note(request, False, "sampled")
            return None
        scope = scope_of(request.options, per_user=self.scope == "user", shared_namespaces=self.shared_namespaces)
        space = "exact-only" if self.embedder is None else f"{self.embedder.name}"
        ttl = self.ttl if controls.ttl is None else controls.ttl
        return _Plan(request_key(request, scope, space), not controls.no_store and ttl != 0.0, ttl)

    # -- lookups ---------------------------------------------------------------------------
    def _semantic(self, plan: _Plan) -> bool:
        """Whether this request may be served by meaning (else the exact tier only)."""
        return (bool(plan.key.semantic) and self.embedder is not None and len(plan.key.text) <= self.max_text_chars
                and self._up("embedder") and self._up("verifier"))

    async def _lookup(self, request: Request, plan: _Plan) -> Response | None:
        """Exact key, then (on a miss) read, embed and search in one worker-thread hop, then the
        verifier's batched judgement of the candidates, then the choice."""
        self.stats["lookups"] += 1
        if not self._up("store"):
            return self._miss(request, "store_unavailable")
        semantic = self._semantic(plan)
        now = time.time()
        outcome = _Outcome(pending=True)
        if not self.storage.blocking or self.storage.inline_reads:
            outcome = self._probe(request, plan, semantic, now, exact=True, may_block=False)
        if outcome.pending:
            outcome = await asyncio.to_thread(self._probe, request, plan, semantic, now,
                                              not (not self.storage.blocking or self.storage.inline_reads), True)
        if outcome.failed is not None:
            part, exc = outcome.failed
            self._failed(part, exc)
            return self._miss(request, f"{part}_error")
        if outcome.exact is not None:
            return self._serve(request, outcome.exact, "exact", 1.0)
        if not outcome.found:
            return self._miss(request, "miss")
        choice = await self._choose(request, plan, outcome)
        if choice.entry is None:
            if choice.reason == "ambiguous":
                self.stats["ambiguous"] += 1
            elif choice.reason.startswith("verifier"):
                self.stats["rejected"] += 1
            return self._miss(request, choice.reason, choice.similarity)
        return self._serve(request, choice.entry, choice.tier, choice.similarity)

    def _read(self, text: str) -> str:
        """``text`` as it is embedded and verified (a blocking call: the normaliser may load)."""
        return text if self.normaliser is None else self.normaliser(text)

    @property
    def derived_version(self) -> str:
        """The version of what an entry stores besides its answer (its normalised text, and the
        vector made from it): entries stored under another version are read again."""
        return "raw" if self.normaliser is None else self.normaliser.version

    def _probe(self, request: Request, plan: _Plan, semantic: bool, now: float, exact: bool,
               may_block: bool) -> _Outcome:
        """The synchronous part of a lookup. ``may_block``: reading, embedding and searching may
        run here (a worker thread); otherwise the outcome says they are pending."""
        if exact:
            try:
                entry = self.storage.get(plan.key.exact, now)
            except Exception as exc:
                return _Outcome(failed=("store", exc))
            if entry is not None:
                return _Outcome(exact=entry)
        if not semantic:
            return _Outcome()
        if not may_block:
            return _Outcome(pending=True)
        assert self.embedder is not None
        try:
            query = self._read(plan.key.text)
            key = ("embedding", self.embedder.name, query)
            vector = request.context.recall(key)
            if vector is None:
                vector = self.embedder.embed([query])[0]
                request.context.remember(key, vector)
        except Exception as exc:
            return _Outcome(failed=("embedder", exc))
        try:
            found = self.storage.search(plan.key.group, vector, self.candidates, now)
        except Exception as exc:
            return _Outcome(failed=("store", exc))
        reach = self.threshold - self.margin - 1e-6
        texts = {e.text: self._cached_reading(e) for e, sim in found if sim >= reach}
        return _Outcome(found=found, query=query, texts=texts)

    def _cached_reading(self, entry: Entry) -> str:
        """The normalised text stored with ``entry``, or read again (and the entry re-stored with
        a new vector, in the background) when it was stored under another version."""
        data = entry.derived_data()
        if data is not None and data.get("version") == self.derived_version and isinstance(data.get("text"), str):
            return str(data["text"])
        text = self._read(entry.text)
        self.stats["reread"] += 1
        if self.embedder is not None:  # it was found by its vector, so it has one: make it anew
            try:
                fresh = Entry(key=entry.key, group=entry.group, scope=entry.scope, text=entry.text,
                              response=entry.response, vector=self.embedder.embed([text])[0], created=entry.created,
                              expires=entry.expires, hits=entry.hits,
                              derived={"version": self.derived_version, "text": text})
                self.storage.put(fresh)
            except Exception as exc:
                self._failed("store", exc)
        return text

    async def _choose(self, request: Request, plan: _Plan, outcome: _Outcome) -> Choice:
        """Judge the candidates near enough to matter in one batched verifier call, then pick."""
        assert outcome.found is not None and outcome.texts is not None
        verdicts: dict[str, CacheVerdict] = {}
        if self.verifier is not None:
            same = _plain(outcome.query)
            ask = [t for t in outcome.texts if _plain(outcome.texts[t]) != same]
            made: list[tuple[Any, Response]] = []
            token = JUDGE_CALLS.set(made)
            try:
                judged = await self.verifier.acheck_many(outcome.query, [outcome.texts[t] for t in ask])
            except Exception as exc:
                self._failed("verifier", exc)
                return Choice(None, reason="verifier_error")
            finally:
                JUDGE_CALLS.reset(token)
                self._record_calls(request, made)
            verdicts = dict(zip(ask, judged))
            if self.traffic is not None:
                self._on_traffic(verdicts, request.options.tenant or "")
            if self.template_check is not None:
                await self._check_templates(plan.key.text, verdicts)
        verify = None if self.verifier is None else _lookup_verdict(verdicts)
        choice = select(plan.key.text, plan.key.exact, outcome.found, threshold=self.threshold, margin=self.margin,
                        verify=verify)
        if self.traffic is not None:
            choice = self._to_check(request, choice, outcome.found, verdicts)
        return choice

    # -- learning from traffic ---------------------------------------------------------------
    def _on_traffic(self, verdicts: dict[str, CacheVerdict], tenant: str) -> None:
        """Decide the model's verdicts at the threshold the tenant's traffic supports."""
        assert self.traffic is not None
        try:
            shipped = getattr(self.verifier, "threshold", None)
        except Exception:  # a model that cannot load its calibration has no operating point to move
            shipped = None
        if not isinstance(shipped, (int, float)):
            self._failed("traffic_check", ConfigError(f"{type(self.verifier).__name__} has no calibrated threshold "
                                                      "to move"), retry=False)
            self.traffic = None
            return
        limit = self.traffic.threshold(float(shipped), self.max_error, tenant)
        if limit == shipped:
            return
        for text, verdict in verdicts.items():
            if verdict.reason == "model":
                verdicts[text] = CacheVerdict(verdict.probability >= limit, verdict.probability, "model",
                                              f"p={verdict.probability:.3f} traffic threshold={limit:.3f}")

    def _to_check(self, request: Request, choice: Choice, found: Sequence[tuple[Entry, float]],
                  verdicts: dict[str, CacheVerdict]) -> Choice:
        """Remember the candidates the model judged, closest first, to compare the model's answer
        with theirs: on a miss, and on a semantic hit now and then (which is then not served)."""
        assert self.traffic is not None
        judged = [(entry.response, verdicts[entry.text].probability)
                  for entry, sim in sorted(found, key=lambda pair: -pair[1])
                  if sim >= self.threshold - 1e-6 and entry.text in verdicts and verdicts[entry.text].reason == "model"]
        if not judged:
            return choice
        if choice.entry is None:
            request.context.remember(_TRAFFIC, (judged, False))
            return choice
        if choice.tier != "semantic" or not self.traffic.should_check():
            return choice
        request.context.remember(_TRAFFIC, (judged, True))
        self.stats["checked"] += 1
        return Choice(None, choice.similarity, reason="checked")

    def _observe(self, request: Request, response: Response) -> None:
        """Compare the model's answer with the remembered candidates' answers, in the background."""
        seen = request.context.recall(_TRAFFIC) if self.traffic is not None else None
        if seen is None:
            return
        request.context.remember(_TRAFFIC, None)
        judged, checked_hit = seen
        tenant = request.options.tenant or ""
        if response.tool_calls or not response.text or response.finish_reason in _NOT_STORED:
            return
        judged = [(stored, p) for stored, p in judged if stored.get("text") and not stored.get("tool_calls")]
        traffic, embed = self.traffic, None if self.embedder is None else self.embedder.embed
        assert traffic is not None

        def compare() -> None:
            traffic.observe([(p, traffic.agree(str(stored["text"]), response.text, embed)) for stored, p in judged],
                            checked_hit=checked_hit, tenant=tenant)
            shipped = getattr(self.verifier, "threshold", None)
            if isinstance(shipped, (int, float)):
                traffic.threshold(float(shipped), self.max_error, tenant)  # worked out here, not on the loop

        task = asyncio.get_running_loop().create_task(self._quietly(compare))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _quietly(self, fn: Callable[[], None]) -> None:
        try:
            await asyncio.to_thread(fn)
        except Exception as exc:
            self._failed("traffic_check", exc)

    def _record_calls(self, request: Request, made: list[tuple[Any, Response]]) -> None:
        """Report the calls a verifier made (an LLM judge): the chain prices them and charges them
        to this plugin, on a hit and on a miss alike."""
        for target, response in made:
            request.context.facts.call(target, response.usage, by=self.plugin_name, model=response.model)

    async def _check_templates(self, query: str, verdicts: dict[str, CacheVerdict]) -> None:
        """Refuse passing candidates built from the same template as ``query`` with another slot."""
        check = self.template_check
        assert check is not None
        for text, verdict in list(verdicts.items()):
            if verdict.ok and template_slots(query, text) is not None and \
                    not await asyncio.to_thread(check, query, text):
                verdicts[text] = CacheVerdict(False, 0.0, "template", "the variable part of a templated prompt differs")

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
        request.context.facts.call_avoided(self.plugin_name, f"{how} hit")
        note = {"hit": True, "tier": how, "similarity": round(similarity, 4)}
        request.context.info["cache"] = note
        response.info["cache"] = note
        return response

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
        vector, derived = None, None
        if self._semantic(plan):
            try:
                vector, derived = await asyncio.to_thread(self._embed_reading, request, plan.key.text)
            except Exception as exc:
                self._failed("embedder", exc)
        now = time.time()
        entry = Entry(key=plan.key.exact, group=plan.key.group, text=plan.key.text,
                      scope=hashlib.sha256(plan.key.scope.encode()).hexdigest()[:16],
                      response=response_to_dict(response), vector=vector, created=now,
                      expires=None if plan.ttl is None else now + plan.ttl, derived=derived)
        screened = (await asyncio.to_thread(screen, request, entry, self.secrets) if long_text(request.messages)
                    else screen(request, entry, self.secrets))  # secrets are never stored as they are
        if screened is None:
            self.stats["secrets_skipped"] = self.stats.get("secrets_skipped", 0) + 1
            return
        if await self._call_quietly(self.storage.put, screened):
            self.stats["stored"] += 1

    def _embed_reading(self, request: Request, text: str) -> tuple[Any, dict[str, Any]]:
        """The vector of ``text`` as the cache reads it, and that reading with its version."""
        assert self.embedder is not None
        reading = self._read(text)
        key = ("embedding", self.embedder.name, reading)
        vector = request.context.recall(key)
        if vector is None:
            vector = self.embedder.embed([reading])[0]
            request.context.remember(key, vector)
        return vector, {"version": self.derived_version, "text": reading}

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

    def _failed(self, part: str, exc: Exception, retry: bool = True) -> None:
        """Count a failure, log it once per kind, and leave ``part`` alone for ``retry_after`` s
        (for good when not ``retry``: a verifier that cannot load leaves the exact tier only)."""
        self.stats["errors"] += 1
        self._down_until[part] = time.monotonic() + self.retry_after if retry else float("inf")
        kind = (part, type(exc).__name__)
        if kind not in self._logged:
            self._logged.add(kind)
            then = f"retrying in {self.retry_after:.0f} s" if retry else "serving exact repeats only"
            log.warning("costmw semantic cache: the %s failed (%s: %s); calls go on without it, %s",
                        part, type(exc).__name__, exc, then)

    def __repr__(self) -> str:
        embedder = None if self.embedder is None else self.embedder.name
        return (f"SemanticCache(store={self.storage!r}, embedder={embedder!r}, threshold={self.threshold}, "
                f"scope={self.scope!r}, ttl={self.ttl})")


def _plain(text: str) -> str:
    """A reading's words: letter case, spacing and the punctuation that ends it set aside."""
    return " ".join(text.casefold().split()).rstrip("?!. ")


def _lookup_verdict(verdicts: dict[str, CacheVerdict]) -> Callable[[str, str], CacheVerdict]:
    """``select``'s verify function over verdicts already made (texts not judged pass: they read
    the same as the query but for letter case, which ``select`` tells apart when it matters)."""
    passed = CacheVerdict(True, 1.0, "same")

    def verify(query: str, cached: str) -> CacheVerdict:
        return verdicts.get(cached, passed)

    return verify


def _whole(response: Response, pieces: list[Chunk]) -> Response:
    """The final response of a stream, its text assembled from the chunks when it has none."""
    if response.text or response.tool_calls:
        return response
    text, calls = join_chunks(pieces)
    return response.copy(text=text, tool_calls=calls)
