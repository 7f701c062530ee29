"""``costmw.completion``: a drop-in for ``litellm.completion`` through a default chain."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._chain import Chain
from ._types import Chunk, Response

__all__ = ["acompletion", "completion", "default_chain", "set_default_chain", "to_model_response",
           "to_stream_chunk"]

_lock = threading.Lock()
_default: Chain | None = None


def default_chain() -> Chain:
    """The process-wide default chain: from ``$COSTMW_CONFIG`` when set, else the built-in plugins.

    Its targets are created on demand: any model name becomes a LiteLLMTarget.
    """
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                path = os.environ.get("COSTMW_CONFIG")
                if path:
                    chain = Chain.from_config(path)
                    chain.auto_targets = True
                else:
                    from .plugins import default_plugins

                    chain = Chain(plugins=default_plugins(), auto_targets=True)
                _default = chain
    return _default


def set_default_chain(chain: Chain | None) -> None:
    """Replace the default chain (None resets it to be built again on next use)."""
    global _default
    with _lock:
        _default = chain


def to_model_response(response: Response) -> Any:
    """A LiteLLM ``ModelResponse`` for a costmw response, with costmw's numbers attached."""
    from ._seam import litellm_module

    litellm = litellm_module()
    message: dict[str, Any] = {"role": "assistant", "content": response.text}
    if response.tool_calls:
        message["tool_calls"] = response.tool_calls
    out = litellm.ModelResponse(
        id=response.request_id,
        model=response.model,
        choices=[{"index": 0, "message": message, "finish_reason": response.finish_reason or "stop"}],
        usage={"prompt_tokens": response.usage.prompt_tokens,
               "completion_tokens": response.usage.completion_tokens,
               "total_tokens": response.usage.total_tokens},
    )
    out._hidden_params["costmw"] = _costmw_numbers(response)
    return out


def _costmw_numbers(response: Response) -> dict[str, Any]:
    return {"cost_usd": response.cost_usd, "baseline_cost_usd": response.baseline_cost_usd,
            "served_by": response.served_by,
            "savings": [{"plugin": s.plugin, "usd": s.usd, "detail": s.detail} for s in response.savings]}




def to_stream_chunk(chunk: Chunk, *, request_id: str, model: str) -> Any:
    """A LiteLLM ``ModelResponseStream`` for one costmw chunk (``chunk.choices[0].delta.content``).

    The last chunk carries the finish reason, the usage and costmw's numbers, as LiteLLM's last
    chunk carries usage when ``stream_options={"include_usage": True}``."""
    from ._seam import litellm_module

    litellm = litellm_module()
    final = chunk.response
    if final is None:
        delta: dict[str, Any] = {"role": "assistant", "content": chunk.text or None}
        if chunk.tool_calls:
            delta["tool_calls"] = chunk.tool_calls
        return litellm.ModelResponseStream(id=request_id, model=model, choices=[
            {"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}])
    out = litellm.ModelResponseStream(
        id=request_id, model=final.model or model,
        choices=[{"index": 0, "delta": {}, "finish_reason": final.finish_reason or "stop"}],
        usage={"prompt_tokens": final.usage.prompt_tokens, "completion_tokens": final.usage.completion_tokens,
               "total_tokens": final.usage.total_tokens})
    out._hidden_params["costmw"] = _costmw_numbers(final)
    return out


def _stream(chunks: Iterator[Chunk], model: str) -> Iterator[Any]:
    request_id = ""
    for chunk in chunks:
        if chunk.response is not None:
            request_id = chunk.response.request_id
        yield to_stream_chunk(chunk, request_id=request_id, model=model)


async def _astream(chunks: AsyncIterator[Chunk], model: str) -> AsyncIterator[Any]:
    async for chunk in chunks:
        rid = chunk.response.request_id if chunk.response is not None else ""
        yield to_stream_chunk(chunk, request_id=rid, model=model)


def completion(*, model: str, messages: list[dict[str, Any]], chain: Chain | None = None, **kwargs: Any) -> Any:
    """Same arguments and return type as ``litellm.completion``, with the chain's plugins around it.

    ``options=`` (:class:`costmw.Options` or a dict) carries costmw's controls for the call;
    ``metadata=`` its free-form ledger labels; every other keyword goes to the model. With
    ``stream=True`` it yields LiteLLM stream chunks (``chunk.choices[0].delta.content``).
    """
    the_chain = chain or default_chain()
    if kwargs.pop("stream", False):
        kwargs.pop("stream_options", None)
        return _stream(the_chain.stream(messages, model, **kwargs), model)
    return to_model_response(the_chain.complete(messages, model, **kwargs))


async def acompletion(*, model: str, messages: list[dict[str, Any]], chain: Chain | None = None,
                      **kwargs: Any) -> Any:
    """Async twin of :func:`completion`."""
    the_chain = chain or default_chain()
    if kwargs.pop("stream", False):
        kwargs.pop("stream_options", None)
        return _astream(the_chain.astream(messages, model, **kwargs), model)
    return to_model_response(await the_chain.acomplete(messages, model, **kwargs))
