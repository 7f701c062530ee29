"""A target that speaks OpenAI's chat completions protocol over HTTP, with nothing in between.

For any server with an OpenAI-compatible API (OpenAI itself, vLLM, TGI, llama.cpp's server,
Ollama, another costmw gateway) this is the lightest path: one pooled ``httpx`` client per event
loop, the request body sent as the caller wrote it, and the answer read back. LiteLLMTarget speaks
to more providers; this one adds less time and CPU to each call, which matters in a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from costmw.plugin_api import (
    Capabilities,
    Chunk,
    ContextWindowError,
    CostmwError,
    Price,
    Request,
    Response,
    Target,
    TargetError,
    UpstreamStatusError,
    Usage,
    join_chunks,
    map_provider_error,
    missing_extra,
)

__all__ = ["OpenAICompatibleTarget"]

# parameters costmw keeps for itself and never sends
_OWN = frozenset({"timeout_s"})


class OpenAICompatibleTarget(Target):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``api_base`` is the URL up to and including ``/v1``. ``api_key`` is sent as a bearer token and
    never appears in reprs, the ledger or logs. ``retries`` retries rate limits, timeouts and 5xx
    answers with exponential backoff starting at ``backoff`` seconds.
    """

    kind = "openai"

    def __init__(self, model: str, *, api_base: str, api_key: str | None = None, name: str | None = None,
                 price: Price | tuple[float, float] | dict[str, float] | None = None,
                 capabilities: Capabilities | None = None, timeout_s: float | None = 120.0,
                 retries: int = 2, backoff: float = 0.5, headers: Mapping[str, str] | None = None,
                 max_connections: int = 512) -> None:
        super().__init__(name or model, model=model, price=price, capabilities=capabilities, timeout_s=timeout_s)
        if not isinstance(api_base, str) or not api_base.startswith(("http://", "https://")):
            raise ValueError(f"api_base must be an http(s) URL, got {api_base!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        self.api_base = api_base.rstrip("/")
        self.__api_key = api_key
        self.retries = retries
        self.backoff = backoff
        self.headers = dict(headers or {})
        self.max_connections = max_connections
        self._clients: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"OpenAICompatibleTarget(name={self.name!r}, model={self.model!r}, api_base={self.api_base!r})"

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            try:
                import httpx
            except ImportError as exc:
                raise missing_extra("httpx", "server", exc) from exc
            headers = {"content-type": "application/json", **self.headers}
            if self.__api_key:
                headers["authorization"] = f"Bearer {self.__api_key}"
            client = httpx.AsyncClient(
                base_url=self.api_base, headers=headers, timeout=httpx.Timeout(self.timeout_s or None),
                limits=httpx.Limits(max_connections=self.max_connections,
                                    max_keepalive_connections=self.max_connections))
            self._clients[id(loop)] = client
        return client

    def _body(self, request: Request, stream: bool) -> bytes:
        body: dict[str, Any] = {k: v for k, v in request.params.items() if k not in _OWN}
        body["model"] = self.model
        body["messages"] = list(request.messages)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def _raise_for(status: int, payload: bytes) -> None:
        try:
            err = json.loads(payload).get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        message = str(err.get("message") or payload[:200].decode("utf-8", "replace"))
        code = err.get("code")
        if status == 400 and (code == "context_length_exceeded" or "context length" in message):
            raise ContextWindowError(message)
        raise UpstreamStatusError(status, message, code)

    async def _post(self, request: Request) -> Any:
        client = self._client()
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                r = await client.post("/chat/completions", content=self._body(request, False))
                if r.status_code >= 400:
                    self._raise_for(r.status_code, r.content)
                return r.json()
            except CostmwError:
                raise
            except Exception as exc:
                error = map_provider_error(exc, self.name, request)
                if attempt >= self.retries or not (isinstance(error, TargetError) and error.retryable):
                    raise error from exc
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def acomplete(self, request: Request) -> Response:
        raw = await self._post(request)
        try:
            choice = raw["choices"][0]
            message = choice.get("message") or {}
            usage = raw.get("usage") or {}
            response = Response(
                text=message.get("content") or "",
                tool_calls=message.get("tool_calls") or None,
                finish_reason=choice.get("finish_reason"),
                model=raw.get("model") or self.model,
                usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
                raw=raw,
            )
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TargetError(f"target {self.name!r} answered with a body that is not a chat completion",
                              target=self.name, request=request) from exc
        return self._finish(request, response)

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        client = self._client()
        pieces: list[Chunk] = []
        usage = Usage()
        model = self.model
        finish: str | None = None
        try:
            async with client.stream("POST", "/chat/completions", content=self._body(request, True)) as r:
                if r.status_code >= 400:
                    self._raise_for(r.status_code, await r.aread())
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("usage"):
                        usage = Usage(int(event["usage"].get("prompt_tokens") or 0),
                                      int(event["usage"].get("completion_tokens") or 0))
                    model = event.get("model") or model
                    for choice in event.get("choices") or ():
                        delta = choice.get("delta") or {}
                        finish = choice.get("finish_reason") or finish
                        chunk = Chunk(text=delta.get("content") or "", tool_calls=delta.get("tool_calls"),
                                      finish_reason=choice.get("finish_reason"))
                        if chunk.text or chunk.tool_calls:
                            pieces.append(chunk)
                            yield chunk
        except CostmwError:
            raise
        except Exception as exc:
            raise map_provider_error(exc, self.name, request) from exc
        text, calls = join_chunks(pieces)
        yield Chunk(response=self._finish(request, Response(text=text, tool_calls=calls, finish_reason=finish or "stop",
                                                            model=model, usage=usage)))

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # a client of a loop that is already closed
                await client.aclose()
