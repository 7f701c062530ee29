"""A fast OpenAI-compatible upstream for load tests: answers every chat completion after a fixed
delay with a fixed-size answer. Run: ``python -m benchmarks._fast_upstream --port 9100 --delay 0.05``.

It is an asyncio server (uvicorn), so thousands of requests can wait on their delay at once,
unlike the threaded fake server that the unit tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any


def make_app(delay_s: float) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        await asyncio.sleep(delay_s)
        last = body["messages"][-1].get("content") or ""
        text = f"answer to: {str(last)[:40]}"
        payload = {
            "id": "chatcmpl-fast", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fast"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": max(1, len(str(last)) // 4), "completion_tokens": max(1, len(text) // 4),
                      "total_tokens": max(1, len(str(last)) // 4) + max(1, len(text) // 4)},
        }
        return Response(json.dumps(payload), media_type="application/json")

    async def models(request: Request) -> Response:
        return Response(json.dumps({"object": "list", "data": [{"id": "fast", "object": "model"}]}),
                        media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(make_app(args.delay), host="127.0.0.1", port=args.port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
