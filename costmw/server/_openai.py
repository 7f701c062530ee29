"""OpenAI's wire format for the gateway: request bodies in, response bodies, stream chunks and
error bodies out.

Only the shapes live here; what a request does is the chain's business. Every error the gateway
returns has OpenAI's body (``{"error": {"message", "type", "param", "code"}}``) and status, so
OpenAI client libraries raise their usual exception types.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from costmw import (
    BudgetExceeded,
    ContextWindowError,
    CostmwError,
    InvalidRequestError,
    NoTargetError,
    RateLimitError,
    Response,
    ServerError,
    TargetError,
    TargetTimeout,
)
from costmw._errors import ApiError
from costmw._json import loads

__all__ = [
    "ApiError",
    "ChatBody",
    "chunk_body",
    "completion_body",
    "error_for",
    "parse_chat_body",
    "usage_body",
]

# parameters passed on to the chain (and from there to the model) as they are
_PASSED = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "tools", "tool_choice",
    "response_format", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "parallel_tool_calls", "user", "n",
)
# accepted and ignored: they change nothing about the answer
_IGNORED = ("stream", "stream_options", "metadata", "store", "service_tier")


@dataclass(frozen=True)
class ChatBody:
    """A validated ``POST /v1/chat/completions`` body."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    n: int = 1


def _check_number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ApiError(400, f"'{name}' must be a number between {low} and {high}, got {value!r}", param=name)


def _check_int(body: Mapping[str, Any], name: str, low: int, high: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"'{name}' must be an integer between {low} and {high}, got {value!r}", param=name)


def parse_chat_body(raw: bytes, *, max_n: int = 8) -> ChatBody:
    """Parse and check a chat completion body; raises :class:`ApiError` (400) naming the field."""
    try:
        body = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required and must be a non-empty string", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty array of messages", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"messages[{i}] must be an object", param=f"messages[{i}]")
    _check_number(body, "temperature", 0.0, 2.0)
    _check_number(body, "top_p", 0.0, 1.0)
    _check_number(body, "presence_penalty", -2.0, 2.0)
    _check_number(body, "frequency_penalty", -2.0, 2.0)
    _check_int(body, "max_tokens", 1, 1_000_000)
    _check_int(body, "max_completion_tokens", 1, 1_000_000)
    _check_int(body, "n", 1, max_n)
    _check_int(body, "seed", -(2**63), 2**63 - 1)
    _check_int(body, "top_logprobs", 0, 20)
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str)
                                 or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise ApiError(400, "'stop' must be a string or an array of strings", param="stop")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise ApiError(400, "'tools' must be an array of tool objects", param="tools")
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and isinstance(fmt.get("type"), str)):
        raise ApiError(400, "'response_format' must be an object with a 'type'", param="response_format")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", param="stream_options")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ApiError(400, "'user' must be a string", param="user")
    unknown = sorted(set(body) - {"model", "messages", *_PASSED, *_IGNORED})
    if unknown:
        raise ApiError(400, f"unrecognized request argument(s): {', '.join(unknown)}", param=unknown[0])
    params = {k: body[k] for k in _PASSED if body.get(k) is not None and k not in ("user", "n")}
    if "max_completion_tokens" in params and "max_tokens" not in params:
        params["max_tokens"] = params.pop("max_completion_tokens")
    return ChatBody(model=model, messages=messages, params=params, stream=stream,
                    include_usage=bool(options.get("include_usage")), user=user, n=int(body.get("n") or 1))


def error_for(exc: BaseException) -> ApiError:
    """The HTTP answer for an exception raised while serving a call (never a traceback)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BudgetExceeded):
        return ApiError(429, str(exc), type="insufficient_quota", code="budget_exceeded")
    if isinstance(exc, ContextWindowError):
        return ApiError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, InvalidRequestError):
        return ApiError(400, str(exc))
    if isinstance(exc, NoTargetError):
        return ApiError(404, str(exc), code="model_not_found")
    if isinstance(exc, RateLimitError):
        return ApiError(429, str(exc), type="rate_limit_error", code="rate_limit_exceeded")
    if isinstance(exc, TargetTimeout):
        return ApiError(504, str(exc), type="timeout_error", code="upstream_timeout")
    if isinstance(exc, (ServerError, TargetError)):
        return ApiError(502, str(exc), type="api_error", code="upstream_error")
    if isinstance(exc, CostmwError):
        return ApiError(500, f"{type(exc).__name__}: {exc}", type="api_error")
    return ApiError(500, "the gateway failed to serve this request", type="api_error")


def usage_body(response: Response) -> dict[str, int]:
    u = response.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def costmw_body(response: Response) -> dict[str, Any]:
    """costmw's own numbers, in a field OpenAI clients ignore."""
    return {
        "request_id": response.request_id,
        "served_by": response.served_by,
        "cost_usd": response.cost_usd,
        "baseline_cost_usd": response.baseline_cost_usd,
        "saved_usd": response.saved_usd,
        "savings": {s.plugin: s.usd for s in response.savings},
    }


def _message(response: Response) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text if not response.tool_calls
                               or response.text else None}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.get("id") or f"call_{i}", "type": c.get("type", "function"), "function": c.get("function", {})}
            for i, c in enumerate(response.tool_calls)
        ]
    return message


def completion_body(responses: list[Response], model: str, completion_id: str) -> dict[str, Any]:
    """A ``chat.completion`` object for one or more answers (``n``)."""
    first = responses[0]
    choices = [
        {"index": i, "message": _message(r), "logprobs": None,
         "finish_reason": r.finish_reason or ("tool_calls" if r.tool_calls else "stop")}
        for i, r in enumerate(responses)
    ]
    usage = {"prompt_tokens": first.usage.prompt_tokens,
             "completion_tokens": sum(r.usage.completion_tokens for r in responses)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": first.model or model,
        "choices": choices,
        "usage": usage,
        "system_fingerprint": None,
        "costmw": costmw_body(first) if len(responses) == 1 else [costmw_body(r) for r in responses],
    }


def chunk_body(completion_id: str, model: str, created: int, delta: dict[str, Any],
               finish_reason: str | None = None, *, usage: dict[str, int] | None = None,
               with_choice: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` object, as OpenAI frames it in a stream."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if with_choice else [],
    }
    if usage is not None or not with_choice:
        body["usage"] = usage
    if extra:
        body.update(extra)
    return body
