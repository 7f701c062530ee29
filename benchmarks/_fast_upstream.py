"""A fast OpenAI-compatible upstream for load tests: answers every chat completion after a fixed
delay with a fixed-size answer. Run: ``python -m benchmarks._fast_upstream --port 9100 --delay 0.05``.

It is a bare ASGI app served by uvicorn (uvloop and httptools when installed), so thousands of
requests can wait on their delay at once and each costs the shared CPU little, unlike the threaded
fake server that the unit tests use. ``POST /v1/chat/completions`` answers; ``GET /v1/models``
lists one model; anything else is a 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_MODELS = json.dumps({"object": "list", "data": [{"id": "fast", "object": "model"}]}).encode()


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def make_app(delay_s: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if scope["method"] == "POST" and path.endswith("/chat/completions"):
            body = json.loads(await _body(receive))
            await asyncio.sleep(delay_s)
            last = str(body["messages"][-1].get("content") or "")
            text = f"answer to: {last[:40]}"
            prompt, completion = max(1, len(last) // 4), max(1, len(text) // 4)
            payload = {
                "id": "chatcmpl-fast", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fast"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion},
            }
            await _answer(send, 200, json.dumps(payload).encode())
        elif scope["method"] == "GET" and path.endswith("/models"):
            await _answer(send, 200, _MODELS)
        else:
            await _answer(send, 404, b'{"error": {"message": "not found"}}')

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(make_app(args.delay), host="127.0.0.1", port=args.port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
