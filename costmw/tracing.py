"""Optional OpenTelemetry traces: a span per call, per plugin and per target call.

>>> import costmw.tracing
>>> costmw.tracing.enable()        # doctest: +SKIP  (uses the global tracer provider)

Chains built after ``enable()`` trace every call: a CLIENT span named ``chat {model}`` with the
GenAI semantic conventions' attributes (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
``gen_ai.response.finish_reasons``, the sampling parameters), and inside it one span per plugin
(``costmw.plugin {name}``) and one for the target call (``costmw.target {name}``), with costmw's
own numbers as ``costmw.*`` attributes. Prompts and answers are never put on spans.
Needs ``opentelemetry-api`` (the ``otel`` extra); without ``enable()`` nothing is imported.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._errors import missing_extra
from ._types import Chunk, Request, Response

__all__ = ["disable", "enable", "enabled"]

_lock = threading.Lock()
_tracer: Any = None


def enable(tracer_provider: Any = None) -> None:
    """Trace the calls of every chain built from now on (``tracer_provider``: the global one by default)."""
    global _tracer
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise missing_extra("opentelemetry-api", "otel", exc) from exc
    with _lock:
        _tracer = trace.get_tracer("costmw", tracer_provider=tracer_provider)


def disable() -> None:
    """Stop tracing chains built from now on."""
    global _tracer
    with _lock:
        _tracer = None


def enabled() -> bool:
    return _tracer is not None


def active_tracer() -> Any:
    return _tracer


_PARAMS = {"temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
           "top_p": "gen_ai.request.top_p", "seed": "gen_ai.request.seed",
           "presence_penalty": "gen_ai.request.presence_penalty",
           "frequency_penalty": "gen_ai.request.frequency_penalty"}


def _request_attributes(request: Request) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": request.model,
                             "costmw.request_id": request.id}
    for key, name in _PARAMS.items():
        value = request.params.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[name] = value
    return attrs


def _response_attributes(span: Any, response: Response) -> None:
    span.set_attribute("gen_ai.response.model", response.model or "")
    span.set_attribute("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", response.usage.completion_tokens)
    if response.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
    span.set_attribute("costmw.served_by", response.served_by or "")


def _failed(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def wrap_call(tracer: Any, kind: str, name: str,
              call: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """``call`` inside a span: ``kind`` is "chat" (the whole call), "plugin" or "target"."""
    from opentelemetry.trace import SpanKind

    async def traced(request: Request) -> Response:
        span_name = f"chat {request.model}" if kind == "chat" else f"costmw.{kind} {name}"
        span_kind = SpanKind.CLIENT if kind == "chat" else SpanKind.INTERNAL
        attrs = _request_attributes(request) if kind == "chat" else {f"costmw.{kind}": name}
        with tracer.start_as_current_span(span_name, kind=span_kind, attributes=attrs,
                                          record_exception=False, set_status_on_exception=False) as span:
            try:
                response = await call(request)
            except BaseException as exc:
                _failed(span, exc)
                raise
            _response_attributes(span, response)
            return response

    return traced


def wrap_stream(tracer: Any, kind: str, name: str,
                call: Callable[[Request], AsyncIterator[Chunk]]) -> Callable[[Request], AsyncIterator[Chunk]]:
    """The streaming twin of :func:`wrap_call`; the span ends with the stream."""
    from opentelemetry.trace import SpanKind

    async def traced(request: Request) -> AsyncIterator[Chunk]:
        span_name = f"chat {request.model}" if kind == "chat" else f"costmw.{kind} {name}"
        span_kind = SpanKind.CLIENT if kind == "chat" else SpanKind.INTERNAL
        attrs: dict[str, Any] = _request_attributes(request) if kind == "chat" else {f"costmw.{kind}": name}
        attrs["costmw.stream"] = True
        with tracer.start_as_current_span(span_name, kind=span_kind, attributes=attrs,
                                          record_exception=False, set_status_on_exception=False) as span:
            try:
                async for chunk in call(request):
                    if chunk.response is not None:
                        _response_attributes(span, chunk.response)
                    yield chunk
            except BaseException as exc:
                _failed(span, exc)
                raise

    return traced
