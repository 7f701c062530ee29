"""PassThrough: a plugin that changes nothing (a template, and the overhead benchmark's unit)."""

from __future__ import annotations

from costmw.plugin_api import CallNext, Plugin, Request, Response, register_plugin

__all__ = ["PassThrough"]


@register_plugin("passthrough")
class PassThrough(Plugin):
    """Passes every request on unchanged."""

    async def handle(self, request: Request, call_next: CallNext) -> Response:
        return await call_next(request)
