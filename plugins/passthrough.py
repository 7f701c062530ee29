"""PassThrough: a plugin that changes nothing (a template, and the overhead benchmark's unit)."""

from __future__ import annotations

from .._plugin import CallNext, Plugin, register_plugin
from .._types import Request, Response

__all__ = ["PassThrough"]


@register_plugin("passthrough")
class PassThrough(Plugin):
    """Passes every request on unchanged."""

    async def handle(self, request: Request, call_next: CallNext) -> Response:
        return await call_next(request)
