"""Conversions between costmw responses/chunks and LangChain AI messages.

Every AI message made from a costmw response carries ``usage_metadata`` and, in
``response_metadata["costmw"]``, what the call cost, what the requested model would have
cost, who served it, the savings per plugin and the routing decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._types import Chunk, Response, Usage
from ._messages import tool_calls_from_openai, tool_calls_to_openai

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage, AIMessageChunk

__all__ = ["costmw_metadata", "message_chunk", "message_from_response", "response_from_message"]


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def costmw_metadata(response: Response) -> dict[str, Any]:
    """The numbers costmw adds to ``response_metadata["costmw"]`` (JSON-serialisable)."""
    info = response.info or {}
    return {
        "request_id": response.request_id,
        "served_by": response.served_by,
        "model": response.model,
        "cost_usd": _finite(response.cost_usd),
        "baseline_cost_usd": _finite(response.baseline_cost_usd),
        "saved_usd": _finite(response.saved_usd),
        "savings": [{"plugin": s.plugin, "usd": s.usd, "detail": s.detail, "tokens": s.tokens}
                    for s in response.savings],
        "route": info.get("route"),
        "prompt_tokens": response.usage.prompt_tokens,
        "completion_tokens": response.usage.completion_tokens,
        "latency_s": response.latency_s,
    }


def _usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def _response_metadata(response: Response, requested_model: str) -> dict[str, Any]:
    return {"model_name": response.model or requested_model, "finish_reason": response.finish_reason,
            "costmw": costmw_metadata(response)}


def message_from_response(response: Response, requested_model: str = "") -> AIMessage:
    """An AIMessage for a costmw response, keeping a LangChain target's own message content when it can."""
    from langchain_core.messages import AIMessage, BaseMessage

    valid, invalid = tool_calls_from_openai(response.tool_calls)
    raw = response.raw
    content: Any = response.text
    extra: dict[str, Any] = {}
    if isinstance(raw, BaseMessage) and raw.text == response.text:
        content, extra = raw.content, dict(raw.additional_kwargs)
    return AIMessage(content=content, tool_calls=valid, invalid_tool_calls=invalid, additional_kwargs=extra,
                     usage_metadata=_usage(response.usage),  # type: ignore[arg-type]
                     response_metadata=_response_metadata(response, requested_model))


def message_chunk(chunk: Chunk, requested_model: str = "") -> AIMessageChunk:
    """A streamed costmw chunk as an AIMessageChunk; the final chunk carries usage and costmw's numbers."""
    from langchain_core.messages import AIMessageChunk
    from langchain_core.messages.tool import tool_call_chunk

    if chunk.response is not None:
        return AIMessageChunk(content="", usage_metadata=_usage(chunk.response.usage),  # type: ignore[arg-type]
                              response_metadata=_response_metadata(chunk.response, requested_model),
                              chunk_position="last")
    calls = []
    for i, delta in enumerate(chunk.tool_calls or ()):
        fn = delta.get("function") or {}
        calls.append(tool_call_chunk(name=fn.get("name") or None, args=fn.get("arguments") or None,
                                     id=delta.get("id") or None, index=int(delta.get("index", i))))
    return AIMessageChunk(content=chunk.text, tool_call_chunks=calls)


def response_from_message(message: AIMessage) -> Response:
    """A costmw Response for an AIMessage produced by a LangChain chat model (``raw`` keeps the message)."""
    usage: Mapping[str, Any] = message.usage_metadata or {}
    meta = message.response_metadata or {}
    calls = tool_calls_to_openai(message) or None
    finish = meta.get("finish_reason") or meta.get("stop_reason") or ("tool_calls" if calls else "stop")
    model = meta.get("model_name") or meta.get("model") or ""
    return Response(text=message.text, tool_calls=calls, finish_reason=str(finish), model=str(model),
                    usage=Usage(int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)),
                    raw=message)
