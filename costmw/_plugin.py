"""Plugin base class and the plugin names (built-ins, ``register_plugin``, the ``costmw.plugins`` entry points)."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import ConfigError
from ._registry import Registry
from ._types import Chunk, Request, Response

if TYPE_CHECKING:
    from ._chain import Chain

__all__ = [
    "BUILTIN_PLUGINS",
    "PLUGINS",
    "CallNext",
    "Plugin",
    "StreamNext",
    "get_plugin_class",
    "register_plugin",
    "registered_plugins",
]

CallNext = Callable[[Request], Awaitable[Response]]
StreamNext = Callable[[Request], AsyncIterator[Chunk]]
P = TypeVar("P", bound=type["Plugin"])

ENTRY_POINT_GROUP = "costmw.plugins"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class Plugin:
    """A link of the chain.

    Override :meth:`handle` for full control (answer, change, or pass a request on), or the
    simple hooks :meth:`before` and :meth:`after`. ``before`` may return a changed request, or a
    :class:`Response` to answer without calling the rest of the chain. Streams pass through
    :meth:`astream`, which by default applies the same hooks around the stream.
    """

    name: str = ""

    def bind(self, chain: Chain) -> None:
        """Called once when the chain is built; plugins that need the chain keep it here."""

    async def before(self, request: Request) -> Request | Response:
        return request

    async def after(self, request: Request, response: Response) -> Response:
        return response

    async def handle(self, request: Request, call_next: CallNext) -> Response:
        changed = await self.before(request)
        if isinstance(changed, Response):
            return changed
        response = await call_next(changed)
        return await self.after(changed, response)

    async def astream(self, request: Request, call_next: StreamNext) -> AsyncIterator[Chunk]:
        changed = await self.before(request)
        if isinstance(changed, Response):
            for chunk in response_chunks(changed):
                yield chunk
            return
        async for chunk in call_next(changed):
            if chunk.response is not None:
                chunk = Chunk(response=await self.after(changed, chunk.response))
            yield chunk

    async def aclose(self) -> None:
        """Release what the plugin holds (connections, workers)."""

    @property
    def plugin_name(self) -> str:
        return self.name or type(self).__name__


def response_chunks(response: Response, piece: int = 0) -> list[Chunk]:
    """A whole response as stream chunks (text in pieces of ``piece`` characters, 0 = one piece)."""
    text = response.text
    parts = [text[i:i + piece] for i in range(0, len(text), piece)] if piece and text else [text]
    chunks = [Chunk(text=p) for p in parts]
    if response.tool_calls:
        chunks.append(Chunk(tool_calls=[dict(c, index=i) for i, c in enumerate(response.tool_calls)]))
    chunks[-1].finish_reason = response.finish_reason
    chunks.append(Chunk(response=response))
    return chunks


def _check_plugin_class(name: str, cls: Any) -> None:
    if not isinstance(cls, type):
        raise ConfigError(f"plugin {name!r}: register_plugin decorates a class, got {type(cls).__name__}")
    if not issubclass(cls, Plugin):
        raise ConfigError(f"plugin {name!r}: {cls.__qualname__} must subclass costmw.Plugin")
    for hook in ("handle", "before", "after"):
        fn = getattr(cls, hook)
        if not inspect.iscoroutinefunction(fn):
            raise ConfigError(f"plugin {name!r}: hook {hook!r} must be 'async def'")
    if not inspect.isasyncgenfunction(cls.astream):
        raise ConfigError(f"plugin {name!r}: hook 'astream' must be an async generator (async def ... yield)")
    params = list(inspect.signature(cls.handle).parameters)
    if params[:3] != ["self", "request", "call_next"] and len(params) != 3:
        raise ConfigError(
            f"plugin {name!r}: hook 'handle' must take (self, request, call_next), got ({', '.join(params)})"
        )


# built-in plugin names: known (and so never taken by another class) before any plugin is imported
BUILTIN_PLUGINS: dict[str, str] = {
    "passthrough": "costmw.plugins.passthrough:PassThrough",
    "semantic_cache": "costmw.plugins.cache:SemanticCache",
    "prompt_minifier": "costmw.plugins.minifier:PromptMinifier",
    "model_router": "costmw.plugins.router:ModelRouter",
    "batcher": "costmw.plugins.batcher:Batcher",
}

PLUGINS: Registry[type[Plugin]] = Registry("plugin", ENTRY_POINT_GROUP, BUILTIN_PLUGINS, _check_plugin_class)


def register_plugin(name: str) -> Callable[[P], P]:
    """Class decorator: make a plugin usable by ``name`` in configuration files.

    The class is checked here (a ``Plugin`` subclass with ``async`` hooks); a name that is built in
    or already taken by another class raises ``ConfigError``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"plugin name must be a simple identifier, got {name!r}")

    def decorate(cls: P) -> P:
        PLUGINS.register(name, cls)
        if not cls.name:
            cls.name = name
        return cls

    return decorate


def get_plugin_class(name: str) -> type[Plugin]:
    """The plugin class registered under ``name`` (built-ins, decorators, then entry points)."""
    return PLUGINS.get(name)


def registered_plugins() -> dict[str, type[Plugin]]:
    """Every plugin name and its class (built-ins whose optional dependency is missing are left out)."""
    return dict(PLUGINS.items())
