"""``costmw serve``: an OpenAI-compatible gateway in front of a chain.

Apps in any language point their OpenAI client's ``base_url`` at the gateway and send their
virtual key; every call goes through the chain (cache, minifier, router, batcher), lands in the
ledger under the key's tenant, and counts against the key's budgets and rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from costmw import Chain, CostmwError, Request, Response
from costmw._json import dumps_bytes, loads
from costmw.plugin_api import count_message_tokens

from ._keys import KeyStore, VirtualKey
from ._limits import RateLimiter
from ._openai import ApiError, ChatBody, chunk_body, completion_body, costmw_body, error_for, parse_chat_body

__all__ = ["Gateway", "GatewaySettings", "create_app"]

log = logging.getLogger("costmw.server")


@dataclass
class GatewaySettings:
    """The ``server:`` section of a gateway config (everything else builds the chain).

    ``keys``: a SQLite path or ``postgresql://`` URL of the virtual-key store; without one, the
    gateway serves anyone who can reach it (``allow_anonymous`` must then be true, and calls go to
    tenant ``anonymous``). ``redis_url``: where rate-limit counters are shared between workers and
    hosts. ``max_body_bytes``: larger request bodies get 413. ``reserve_max_tokens``: the
    completion length a budget reservation assumes when a request sets no ``max_tokens``.
    ``embeddings``: model name -> embedder spec (see ``costmw.embeddings.resolve_embedder``) for
    ``POST /v1/embeddings``. ``aliases``: extra model names listed by ``GET /v1/models``.
    ``tracing``: OpenTelemetry spans for every call (see ``costmw.tracing``).
    """

    keys: str | None = None
    allow_anonymous: bool = False
    redis_url: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_n: int = 8
    reserve_max_tokens: int = 1024
    embeddings: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    metrics: bool = True
    tracing: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> GatewaySettings:
        from costmw import ConfigError

        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"server: unknown setting(s) {unknown}; known: {sorted(known)}")
        settings = cls(**data)
        if settings.keys is None and not settings.allow_anonymous:
            raise ConfigError("server: set `keys` (a key store path or postgresql:// URL) or "
                              "`allow_anonymous: true` to serve without keys")
        if not isinstance(settings.max_body_bytes, int) or settings.max_body_bytes < 1024:
            raise ConfigError("server.max_body_bytes must be an integer of at least 1024")
        return settings


def _start_of(window: str) -> float:
    now = datetime.now(timezone.utc)
    if window == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if window == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return 0.0


class Gateway:
    """The gateway's state: the chain, keys, limits and metrics. :func:`create_app` serves it."""

    def __init__(self, chain: Chain, settings: GatewaySettings | None = None, *,
                 keys: KeyStore | None = None, metrics: Any = None) -> None:
        self.chain = chain
        self.settings = settings or GatewaySettings(allow_anonymous=True)
        self.keys = keys if keys is not None else (KeyStore(self.settings.keys) if self.settings.keys else None)
        self.limiter = RateLimiter(self.settings.redis_url)
        self.metrics = metrics
        if self.metrics is None and self.settings.metrics:
            from costmw.metrics import Metrics

            try:
                import prometheus_client

                self.metrics = Metrics(prometheus_client.CollectorRegistry(auto_describe=True))
                self.metrics.watch_ledger(chain.ledger)
            except ImportError:
                self.metrics = None
        self._embedders: dict[str, Any] = {}

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> VirtualKey:
        if self.keys is None:
            return VirtualKey(id="anonymous", tenant="anonymous")
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <your costmw key>'",
                           type="invalid_request_error", code="invalid_api_key")
        key = self.keys.lookup(authorization[7:].strip())
        if key is None:
            raise ApiError(401, "invalid or revoked API key", type="invalid_request_error", code="invalid_api_key")
        return key

    def models(self) -> list[str]:
        names: list[str] = []
        for name, target in self.chain.targets.items():
            for n in (name, target.model):
                if n and n not in names:
                    names.append(n)
        for n in self.settings.aliases:
            if n not in names:
                names.append(n)
        return names

    def _check_model(self, key: VirtualKey, model: str) -> None:
        if not key.allows(model):
            raise ApiError(403, f"this key may not use model {model!r}", type="permission_error",
                           code="model_not_allowed", param="model")
        if self.chain.auto_targets or model in self.models():
            return
        raise ApiError(404, f"the model {model!r} does not exist on this gateway; "
                       f"GET /v1/models lists the ones it serves", code="model_not_found", param="model")

    # -- one call --------------------------------------------------------------------------------
    def _request(self, key: VirtualKey, body: ChatBody) -> Request:
        options: dict[str, Any] = {"tenant": key.tenant}
        if body.user:
            options["user"] = body.user
        try:
            request = Request.create(body.messages, body.model, params=body.params, options=options,
                                     stream=body.stream)
        except CostmwError as exc:
            raise ApiError(400, str(exc)) from exc
        request.context.chain = self.chain
        return request

    def _estimate(self, request: Request) -> tuple[int, float]:
        """Prompt tokens plus the completion allowance, and their price at the requested model."""
        try:
            prompt = count_message_tokens(request.messages, request.model, request.params.get("tools"))
        except Exception:
            prompt = sum(len(json.dumps(m, default=str)) for m in request.messages) // 4
        completion = int(request.params.get("max_tokens") or self.settings.reserve_max_tokens)
        price = self.chain.price_of(request.model)
        usd = price.cost(prompt, completion) if price is not None else 0.0
        return prompt + completion, usd

    async def admit(self, key: VirtualKey, request: Request) -> int:
        """Rate limits, then budgets (a hold on the ledger, released when the call is recorded).

        The request's tokens and price are estimated only for a key with a token limit or a
        budget; a key without them costs no token count."""
        budgets = (key.budget_total_usd, key.budget_month_usd, key.budget_day_usd)
        if key.tpm is None and budgets == (None, None, None):
            if key.rpm is not None:
                await self._rate(key, 0)
            return 0
        tokens, usd = self._estimate(request)
        await self._rate(key, tokens)
        for window, limit in (("total", key.budget_total_usd), ("month", key.budget_month_usd),
                              ("day", key.budget_day_usd)):
            if limit is None:
                continue
            over = await asyncio.to_thread(self.chain.ledger.reserve, request.id, request.tenant, usd, limit,
                                           _start_of(window), must_fit=True)
            if over is not None:
                await self.limiter.settle(key.id, key.tpm, tokens, 0)
                raise ApiError(429, f"the {window} budget of this key (${limit:g}) is used up "
                               f"(${over:.4f} spent or held)", type="insufficient_quota", code="budget_exceeded")
        return tokens

    async def _rate(self, key: VirtualKey, tokens: int) -> None:
        wait = await self.limiter.admit(key.id, key.rpm, key.tpm, tokens)
        if wait is not None:
            raise ApiError(429, "rate limit reached for this key; retry after the Retry-After header",
                           type="rate_limit_error", code="rate_limit_exceeded",
                           headers={"retry-after": str(max(1, math.ceil(wait)))})

    async def complete(self, key: VirtualKey, body: ChatBody) -> tuple[list[Response], dict[str, str]]:
        self._check_model(key, body.model)
        requests = [self._request(key, body) for _ in range(body.n)]
        estimates = [await self.admit(key, r) for r in requests]
        started = time.perf_counter()
        try:
            if len(requests) == 1:
                responses = [await self.chain.asend(requests[0])]
            else:
                responses = list(await asyncio.gather(*(self.chain.asend(r) for r in requests)))
        except BaseException as exc:
            if self.metrics is not None and isinstance(exc, Exception):
                self.metrics.observe_error(exc, requested_model=body.model)
            raise
        for est, r in zip(estimates, responses):
            await self.limiter.settle(key.id, key.tpm, est, r.usage.total_tokens)
            if self.metrics is not None:
                self.metrics.observe_response(r, requested_model=body.model,
                                              latency_s=time.perf_counter() - started)
        first = responses[0]
        headers = {
            "x-costmw-request-id": first.request_id,
            "x-costmw-served-by": first.served_by,
            "x-costmw-cost-usd": f"{sum(r.cost_usd for r in responses):.10f}",
            "x-costmw-baseline-usd": f"{sum(r.baseline_cost_usd for r in responses):.10f}",
            "x-costmw-saved-usd": f"{sum(r.saved_usd for r in responses):.10f}",
        }
        return responses, headers

    async def stream(self, key: VirtualKey, body: ChatBody) -> tuple[Request, AsyncIterator[bytes]]:
        if body.n != 1:
            raise ApiError(400, "streaming supports n=1 only", param="n")
        self._check_model(key, body.model)
        request = self._request(key, body)
        estimate = await self.admit(key, request)
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model = body.model

        def frame(obj: dict[str, Any]) -> bytes:
            return b"data: " + dumps_bytes(obj) + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            started = time.perf_counter()
            first_token: float | None = None
            yield frame(chunk_body(completion_id, model, created, {"role": "assistant", "content": ""}))
            try:
                async for chunk in self.chain.asend_stream(request):
                    if chunk.response is not None:
                        response = chunk.response
                        finish = response.finish_reason or ("tool_calls" if response.tool_calls else "stop")
                        yield frame(chunk_body(completion_id, response.model or model, created, {}, finish))
                        usage = None
                        if body.include_usage:
                            usage = {"prompt_tokens": response.usage.prompt_tokens,
                                     "completion_tokens": response.usage.completion_tokens,
                                     "total_tokens": response.usage.total_tokens}
                            yield frame(chunk_body(completion_id, response.model or model, created, {},
                                                   usage=usage, with_choice=False,
                                                   extra={"costmw": costmw_body(response)}))
                        await self.limiter.settle(key.id, key.tpm, estimate, response.usage.total_tokens)
                        if self.metrics is not None:
                            self.metrics.observe_response(response, requested_model=model, stream=True,
                                                          latency_s=time.perf_counter() - started,
                                                          ttft_s=None if first_token is None
                                                          else first_token - started)
                        continue
                    delta: dict[str, Any] = {}
                    if chunk.text:
                        delta["content"] = chunk.text
                    if chunk.tool_calls:
                        delta["tool_calls"] = chunk.tool_calls
                    if delta:
                        if first_token is None:
                            first_token = time.perf_counter()
                        yield frame(chunk_body(completion_id, model, created, delta))
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                if self.metrics is not None:
                    self.metrics.observe_error(exc, requested_model=model)
                err = error_for(exc)
                log.warning("costmw gateway: stream %s failed: %s", request.id, err.message)
                yield frame(err.body())
            yield b"data: [DONE]\n\n"

        return request, events()

    async def embeddings(self, key: VirtualKey, raw: bytes) -> dict[str, Any]:
        try:
            body = loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        model, inputs = body.get("model"), body.get("input")
        if not isinstance(model, str) or model not in self.settings.embeddings:
            raise ApiError(404, f"no embedding model {model!r} on this gateway; configured: "
                           f"{sorted(self.settings.embeddings)}", code="model_not_found", param="model")
        if not key.allows(model):
            raise ApiError(403, f"this key may not use model {model!r}", type="permission_error", param="model")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) for s in inputs):
            raise ApiError(400, "'input' must be a string or a non-empty array of strings", param="input")
        embedder = self._embedders.get(model)
        if embedder is None:
            from costmw.embeddings import resolve_embedder

            embedder = self._embedders[model] = resolve_embedder(self.settings.embeddings[model])
        vectors = await asyncio.to_thread(embedder.embed, inputs)
        tokens = sum(max(1, len(s) // 4) for s in inputs)
        return {"object": "list", "model": model,
                "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def warm(self) -> None:
        """Load what the first call would otherwise wait for (the token counters of the served
        models), before the gateway takes traffic."""
        for model in self.models():
            # a model no counter knows is counted another way on its first call
            with contextlib.suppress(Exception):
                count_message_tokens([{"role": "user", "content": "warm up"}], model)

    async def aclose(self) -> None:
        await self.limiter.aclose()
        await self.chain.aclose()
        if self.keys is not None:
            self.keys.close()


def create_app(gateway: Gateway) -> Any:
    """A Starlette app serving ``gateway``: ``POST /v1/chat/completions``, ``GET /v1/models``,
    ``POST /v1/embeddings``, ``GET /health``, ``GET /metrics``."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import ClientDisconnect
        from starlette.requests import Request as HttpRequest
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.responses import Response as HttpResponse
        from starlette.routing import Route
    except ImportError as exc:
        from costmw.plugin_api import missing_extra

        raise missing_extra("starlette", "server", exc) from exc

    def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> HttpResponse:
        return HttpResponse(dumps_bytes(body), status_code=status, headers=headers, media_type="application/json")

    def error_response(err: ApiError) -> HttpResponse:
        return json_response(err.body(), err.status, err.headers)

    async def read_body(http: HttpRequest) -> bytes:
        limit = gateway.settings.max_body_bytes
        declared = http.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes", code="request_too_large")
        out = bytearray()
        async for part in http.stream():
            out += part
            if len(out) > limit:
                raise ApiError(413, f"the request body is larger than {limit} bytes", code="request_too_large")
        return bytes(out)

    async def chat(http: HttpRequest) -> HttpResponse:
        try:
            key = gateway.authenticate(http.headers.get("authorization"))
            body = parse_chat_body(await read_body(http), max_n=gateway.settings.max_n)
            if body.stream:
                request, events = await gateway.stream(key, body)
                return StreamingResponse(events, media_type="text/event-stream",
                                         headers={"x-costmw-request-id": request.id, "cache-control": "no-cache"})
            responses, headers = await gateway.complete(key, body)
            return json_response(completion_body(responses, body.model, "chatcmpl-" + uuid.uuid4().hex),
                                 headers=headers)
        except ClientDisconnect:
            return HttpResponse(status_code=499)
        except Exception as exc:
            answer = error_for(exc)
            if answer.status >= 500:
                log.warning("costmw gateway: %s: %s", type(exc).__name__, answer.message)
            return error_response(answer)

    async def models(http: HttpRequest) -> HttpResponse:
        try:
            key = gateway.authenticate(http.headers.get("authorization"))
        except ApiError as err:
            return error_response(err)
        names = [m for m in gateway.models() + sorted(gateway.settings.embeddings) if key.allows(m)]
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "costmw"} for m in names]})

    async def embeddings(http: HttpRequest) -> HttpResponse:
        try:
            key = gateway.authenticate(http.headers.get("authorization"))
            return JSONResponse(await gateway.embeddings(key, await read_body(http)))
        except ApiError as err:
            return error_response(err)
        except Exception as exc:
            return error_response(error_for(exc))

    async def health(http: HttpRequest) -> HttpResponse:
        return JSONResponse({"status": "ok", "targets": list(gateway.chain.targets),
                             "plugins": [p.plugin_name for p in gateway.chain.plugins]})

    async def metrics(http: HttpRequest) -> HttpResponse:
        if gateway.metrics is None:
            return error_response(ApiError(404, "metrics are off (install costmw[server])", code="not_found"))
        data, content_type = gateway.metrics.render()
        return HttpResponse(data, media_type=content_type)

    async def not_found(http: HttpRequest, exc: Exception) -> HttpResponse:
        status = getattr(exc, "status_code", 404)
        return error_response(ApiError(status, f"{http.method} {http.url.path} is not an endpoint of this gateway",
                                       code="not_found" if status == 404 else "method_not_allowed"))

    async def server_error(http: HttpRequest, exc: Exception) -> HttpResponse:
        log.warning("costmw gateway: unexpected %s", type(exc).__name__)
        return error_response(ApiError(500, "the gateway failed to serve this request", type="api_error"))

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await asyncio.to_thread(gateway.warm)
        yield
        await gateway.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found, 500: server_error},
        lifespan=lifespan,
    )
    app.state.gateway = gateway

    async def chat_route(scope: Any, receive: Any, send: Any) -> None:
        """POST /v1/chat/completions without the router and middleware stack (the hot path): the
        handler answers every error itself; anything that still escapes gets the same 500 body
        the stack would send."""
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            started = True
            await send(message)

        http = HttpRequest(scope, receive)
        try:
            response = await chat(http)
            await response(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            await (await server_error(http, exc))(scope, receive, send)

    return _Routed(app, {"/v1/chat/completions": chat_route, "/chat/completions": chat_route})


class _Routed:
    """An ASGI app: POST requests to ``fast`` paths go straight to their handler, everything else
    (other paths and methods, lifespan) to the Starlette ``app``, whose ``state`` and routes stay
    reachable as attributes of this one."""

    def __init__(self, app: Any, fast: dict[str, Any]) -> None:
        self.app = app
        self.fast = fast

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            handler = self.fast.get(path)
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def load_gateway(config: str | Path | Mapping[str, Any]) -> Gateway:
    """A gateway from a config: the ``server:`` section for the gateway, the rest for the chain."""
    from costmw._config import load_config_file

    data = dict(config) if isinstance(config, Mapping) else load_config_file(config)
    settings = GatewaySettings.from_mapping(data.pop("server", None))
    if settings.tracing:
        import costmw.tracing

        costmw.tracing.enable()
    chain = Chain.from_config(data)
    return Gateway(chain, settings)
