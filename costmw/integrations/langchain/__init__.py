"""costmw for LangChain apps: a chat model, a wrapper, agent middleware, a cache and usage callbacks.

Three ways in, each one line:

- ``CostmwChatModel(chain=chain, model="gpt-4o")``: a LangChain chat model backed by a chain.
- ``wrap(ChatOpenAI(...))``: an existing chat model, now behind a chain, used unchanged.
- ``create_agent(..., middleware=[CostmwMiddleware(chain)])``: every model call of an agent.

``CostmwCache`` plugs costmw's semantic cache into ``set_llm_cache``, and ``costmw_usage()``
collects what a block of LangChain calls cost and saved. Needs ``pip install "costmw[langchain]"``.
"""

from __future__ import annotations

from ..._errors import missing_extra

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("langchain-core", "langchain", exc) from exc

from ._callbacks import CostmwCallbackHandler, CostmwUsage, costmw_usage
from ._chat_model import CostmwChatModel, wrap
from ._messages import from_openai_messages, to_openai_messages
from ._middleware import CostmwMiddleware
from ._target import LangChainTarget

__all__ = [
    "CostmwCache",
    "CostmwCallbackHandler",
    "CostmwChatModel",
    "CostmwMiddleware",
    "CostmwUsage",
    "LangChainTarget",
    "costmw_usage",
    "from_openai_messages",
    "to_openai_messages",
    "wrap",
]


def __getattr__(name: str) -> object:
    if name == "CostmwCache":  # needs costmw.plugins.SemanticCache, imported on first use
        from ._cache import CostmwCache

        globals()[name] = CostmwCache
        return CostmwCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
