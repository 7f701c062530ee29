"""A target that speaks OpenAI's chat completions protocol over HTTP, with nothing in between.

For any server with an OpenAI-compatible API (OpenAI itself, vLLM, TGI, llama.cpp's server,
Ollama, another costmw gateway) this is the lightest path: one pooled ``aiohttp`` session with
keep-alive connections per event loop, the request body sent as the caller wrote it, and the answer
read back. LiteLLMTarget speaks to more providers; this one adds less time and CPU to each call,
which matters in a gateway (aiohttp's client costs about a tenth of the CPU per call of httpx's
under concurrent load, see docs/gateway.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from costmw._json import dumps_bytes, loads
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
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._url = self.api_base + "/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAICompatibleTarget(name={self.name!r}, model={self.model!r}, api_base={self.api_base!r})"

    def _client(self) -> Any:
        """This event loop's session (made on first use; a session serves one loop only)."""
        loop = asyncio.get_running_loop()
        held = self._clients.get(id(loop))
        if held is not None and held[0] is loop and not held[1].closed:
            return held[1]
        try:
            import aiohttp
        except ImportError as exc:
            raise missing_extra("aiohttp", "server", exc) from exc
        headers = {"content-type": "application/json", **self.headers}
        if self.__api_key:
            headers["authorization"] = f"Bearer {self.__api_key}"
        # like httpx's timeout: a limit on connecting and on each wait for bytes, not on the whole
        # call (the chain's deadline bounds that), so a long stream is not cut off
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout_s, sock_read=self.timeout_s)
        session = aiohttp.ClientSession(
            headers=headers, timeout=timeout,
            connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30.0),
            skip_auto_headers=("User-Agent",), auto_decompress=True)
        self._clients[id(loop)] = (loop, session)
        return session

    def _body(self, request: Request, stream: bool) -> bytes:
        body: dict[str, Any] = {k: v for k, v in request.params.items() if k not in _OWN}
        body["model"] = self.model
        body["messages"] = list(request.messages)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return dumps_bytes(body)

    @staticmethod
    def _raise_for(status: int, payload: bytes) -> None:
        try:
            err = loads(payload).get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        message = str(err.get("message") or payload[:200].decode("utf-8", "replace"))
        code = err.get("code")
        if status == 400 and (code == "context_length_exceeded" or "context length" in message):
            raise ContextWindowError(message)
        raise UpstreamStatusError(status, message, code)

    async def _post(self, request: Request) -> Any:
        client = self._client()
        body = self._body(request, False)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                async with client.post(self._url, data=body) as r:
                    payload = await r.read()
                    if r.status >= 400:
                        self._raise_for(r.status, payload)
                return loads(payload)
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
            async with client.post(self._url, data=self._body(request, True)) as r:
                if r.status >= 400:
                    self._raise_for(r.status, await r.read())
                async for line in _lines(r.content):
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    event = loads(data)
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
        held, self._clients = list(self._clients.values()), {}
        running = asyncio.get_running_loop()
        for loop, session in held:
            if loop is running:
                await session.close()
            elif loop.is_running():  # a session of another live loop closes on that loop
                asyncio.run_coroutine_threadsafe(session.close(), loop)
            # a session of a closed loop has nothing left to close: its sockets went with the loop


async def _lines(content: Any) -> AsyncIterator[bytes]:
    """The lines of a response body as they arrive (any length; ``\r\n`` or ``\n``), in time
    linear in the body's size however it is cut into pieces."""
    pending: list[bytes] = []
    async for part in content.iter_any():
        if b"\n" not in part:
            pending.append(part)
            continue
        pending.append(part)
        *lines, rest = b"".join(pending).split(b"\n")
        pending = [rest] if rest else []
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield b"".join(pending).rstrip(b"\r")
