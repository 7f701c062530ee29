"""A small OpenAI-compatible HTTP server for offline tests (real HTTP, real client code paths).

It answers ``/v1/chat/completions`` (plain and streamed, with tool calls), ``/v1/embeddings``
and ``/v1/models``; faults (429, 5xx, slow answers) can be queued to test retries and fallbacks.
Other endpoints can be added with :meth:`FakeOpenAIServer.route`.

Prompt caching is emulated as providers do it: chat completions cache prefixes by OpenAI's
rules (``usage.prompt_tokens_details.cached_tokens``), and ``/v1/messages`` (the Anthropic API,
reached through LiteLLM's ``anthropic/`` models) caches at ``cache_control`` breakpoints and
reports ``cache_read_input_tokens`` and ``cache_creation_input_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._emulated_cache import AnthropicPromptCache, OpenAIPromptCache, anthropic_blocks
from ._fake_anthropic import as_chat_body, messages_reply

__all__ = ["FakeOpenAIServer", "Reply"]


@dataclass
class Reply:
    """What the fake model answers: text, or tool calls (name, arguments dict)."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish_reason: str | None = None


Responder = Callable[[dict[str, Any]], "Reply | str"]


def default_responder(body: dict[str, Any]) -> Reply:
    """Echo the last user message; call the first tool when tools are offered and none was called yet."""
    messages = body.get("messages") or []
    last_user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last_user.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    tools = body.get("tools") or []
    if tools and not any(m.get("role") == "tool" for m in messages) and body.get("tool_choice") != "none":
        fn = tools[0]["function"]
        args = {k: 1 for k in (fn.get("parameters") or {}).get("properties", {})}
        return Reply(tool_calls=[(fn["name"], args)])
    if messages and messages[-1].get("role") == "tool":
        return Reply(text=f"The tool said: {messages[-1].get('content')}")
    return Reply(text=f"echo: {content}")


class _Server(ThreadingHTTPServer):
    """A threading HTTP server whose listen queue holds a burst of concurrent clients (the
    standard library's default holds 5, so a burst of 100 calls saw connection timeouts)."""

    request_queue_size = 1024
    daemon_threads = True


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


class FakeOpenAIServer:
    """Run with ``with FakeOpenAIServer() as server:``; point clients at ``server.url``."""

    def __init__(self, responder: Responder | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 stream_piece: int = 8, prompt_cache: bool = True, anthropic_min_tokens: int = 1024) -> None:
        self.responder = responder or default_responder
        self.prompt_cache = prompt_cache
        self.openai_cache = OpenAIPromptCache()
        self.anthropic_cache = AnthropicPromptCache(anthropic_min_tokens)
        self.requests: list[dict[str, Any]] = []
        self.stream_piece = stream_piece
        self._faults: deque[tuple[int, float, dict[str, str]]] = deque()
        self._routes: dict[tuple[str, str], Callable[[FakeOpenAIServer, dict[str, Any], bytes], Any]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                server._dispatch(self, "GET")

            def do_POST(self) -> None:
                server._dispatch(self, "POST")

            def do_DELETE(self) -> None:
                server._dispatch(self, "DELETE")

        self._httpd = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, times: int = 1, *, delay: float = 0.0,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` chat calls with HTTP ``status`` (after ``delay`` seconds)."""
        with self._lock:
            for _ in range(times):
                self._faults.append((status, delay, dict(headers or {})))

    def route(self, method: str, path: str,
              fn: Callable[[FakeOpenAIServer, dict[str, Any], bytes], Any]) -> None:
        """Serve ``method path`` (prefix match) with ``fn(server, json_body, raw_body)`` -> JSON or bytes."""
        self._routes[(method, path)] = fn

    @property
    def request_path(self) -> str:
        """The path of the request being served on this thread (for handlers added with :meth:`route`)."""
        return str(getattr(self._local, "path", ""))

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("_path", "").endswith("/chat/completions")]

    @property
    def messages_requests(self) -> list[dict[str, Any]]:
        """The requests made to the Anthropic-shaped ``/v1/messages`` endpoint."""
        return [r for r in self.requests if r.get("_path", "").endswith("/messages")]

    # -- serving --------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        ctype = h.headers.get("Content-Type", "")
        try:
            body = json.loads(raw) if raw and "json" in ctype else {}
        except json.JSONDecodeError:
            body = {}
        path = h.path.split("?")[0]
        with self._lock:
            self.requests.append({**body, "_path": path, "_method": method} if isinstance(body, dict) else {})
        self._local.path = path
        for (m, prefix), fn in self._routes.items():
            if m == method and path.startswith(prefix):
                self._send_result(h, fn(self, body if isinstance(body, dict) else {}, raw))
                return
        if method == "POST" and path.endswith("/chat/completions"):
            self._chat(h, body)
        elif method == "POST" and path.endswith("/messages"):
            self._messages(h, body)
        elif method == "POST" and path.endswith("/embeddings"):
            self._embeddings(h, body)
        elif method == "GET" and path.endswith("/models"):
            self._json(h, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._json(h, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})

    def _send_result(self, h: BaseHTTPRequestHandler, result: Any) -> None:
        if isinstance(result, tuple):
            status, payload = result
        else:
            status, payload = 200, result
        if isinstance(payload, bytes):
            h.send_response(status)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        else:
            self._json(h, status, payload)

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _fault(self, h: BaseHTTPRequestHandler) -> bool:
        """Answer with the next queued fault, if any (after the server's delay)."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if self.delay:
            time.sleep(self.delay)
        if fault is not None:
            status, delay, headers = fault
            if delay:
                time.sleep(delay)
            kinds = {429: "rate_limit_error", 400: "invalid_request_error"}
            msg = "This model's maximum context length is exceeded" if status == 400 else f"fake fault {status}"
            code = "context_length_exceeded" if status == 400 else None
            self._json(h, status, {"error": {"message": msg, "type": kinds.get(status, "server_error"),
                                             "code": code}}, headers)
            return True
        return False

    def _reply(self, body: dict[str, Any]) -> Reply:
        reply = self.responder(body)
        return Reply(text=reply) if isinstance(reply, str) else reply

    def _messages(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        """Anthropic's messages API (not streamed), with its prompt-cache usage fields."""
        if self._fault(h):
            return
        if body.get("stream"):
            self._json(h, 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "the fake server does not stream /v1/messages"}})
            return
        reply = self._reply(as_chat_body(body))
        model = str(body.get("model", "fake-model"))
        blocks = anthropic_blocks(body)
        total, read, written = (self.anthropic_cache.lookup(model, blocks) if self.prompt_cache
                                else (_tokens("".join(b for b, _ in blocks)), 0, 0))
        usage = {"input_tokens": total - read - written,
                 "output_tokens": _tokens(reply.text) + 8 * len(reply.tool_calls),
                 "cache_creation_input_tokens": written, "cache_read_input_tokens": read}
        self._json(h, 200, messages_reply(model, reply.text, reply.tool_calls, reply.finish_reason, usage))

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if self._fault(h):
            return
        reply = self._reply(body)
        model = body.get("model", "fake-model")
        prompt_text = OpenAIPromptCache.prompt_text(body)
        calls: list[dict[str, Any]] = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                  "function": {"name": n, "arguments": json.dumps(a)}} for n, a in reply.tool_calls]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        usage: dict[str, Any] = {"prompt_tokens": _tokens(prompt_text),
                                 "completion_tokens": _tokens(reply.text) + 8 * len(calls)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if self.prompt_cache:
            usage["prompt_tokens_details"] = {"cached_tokens": self.openai_cache.lookup(str(model), prompt_text)}
        cid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = calls
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
            if body.get("logprobs"):  # every word-piece at probability 0.8
                choice["logprobs"] = {"content": [
                    {"token": t, "logprob": math.log(0.8), "bytes": list(t.encode("utf-8")), "top_logprobs": []}
                    for t in re.findall(r"\s*\S+", reply.text)]}
            self._json(h, 200, {"id": cid, "object": "chat.completion", "created": int(time.time()),
                                "model": model, "choices": [choice], "usage": usage})
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()

        def event(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}
            h.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            h.wfile.flush()

        event({"role": "assistant", "content": ""})
        text = reply.text
        for i in range(0, len(text), self.stream_piece):
            event({"content": text[i:i + self.stream_piece]})
        for i, c in enumerate(calls):
            event({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                   "function": {"name": c["function"]["name"], "arguments": ""}}]})
            event({"tool_calls": [{"index": i, "function": {"arguments": c["function"]["arguments"]}}]})
        event({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [], "usage": usage}
            h.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()
        h.close_connection = True

    def _embeddings(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for i, text in enumerate(items):
            digest = hashlib.sha256(str(text).encode()).digest()
            vec = [((b / 255.0) - 0.5) for b in digest[:16]]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        self._json(h, 200, {"object": "list", "data": data, "model": body.get("model", "fake-embed"),
                            "usage": {"prompt_tokens": sum(_tokens(str(t)) for t in items), "total_tokens": 0}})
