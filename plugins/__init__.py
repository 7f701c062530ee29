"""Built-in plugins: SemanticCache, PromptMinifier, ModelRouter, Batcher.

Each is imported only when first used, so ``import costmw`` stays fast.
"""

from __future__ import annotations

from costmw.plugin_api import Plugin
from costmw.plugin_api import lazy_exports as _lazy_exports

from .passthrough import PassThrough

# every public name, the lazy ones (loaded on first use, from the modules in _LAZY) included
__all__ = [
    "BatchJob",
    "BatchNotReadyError",
    "BatchOutcome",
    "Batcher",
    "BatcherClosedError",
    "Budget",
    "Cascade",
    "CostAware",
    "GPTCacheStore",
    "Learned",
    "MemoryStore",
    "ModelRouter",
    "PassThrough",
    "Plugin",
    "PromptMinifier",
    "QualityModel",
    "QueueFullError",
    "RedisStore",
    "Rule",
    "Rules",
    "SQLiteStore",
    "SemanticCache",
    "default_plugins",
]

# public name -> module (relative to this package)
_LAZY: dict[str, str] = {
    # semantic cache (plugins/cache/)
    "SemanticCache": ".cache",
    "MemoryStore": ".cache",
    "SQLiteStore": ".cache",
    "RedisStore": ".cache",
    "GPTCacheStore": ".cache",
    # prompt minifier (plugins/minifier/)
    "PromptMinifier": ".minifier",
    # model router (plugins/router/)
    "ModelRouter": ".router",
    "Rules": ".router",
    "Rule": ".router",
    "Learned": ".router",
    "CostAware": ".router",
    "Cascade": ".router",
    "Budget": ".router",
    "QualityModel": ".router",
    # batcher (plugins/batcher.py); Batch API jobs, which are the chain's own (costmw.BatchJob, ...)
    "Batcher": ".batcher",
    "QueueFullError": ".batcher",
    "BatcherClosedError": ".batcher",
    "BatchJob": ".batch_api",
    "BatchOutcome": ".batch_api",
    "BatchNotReadyError": ".batch_api",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals(), __all__)


def default_plugins(cache_store: str | None = None) -> list[Plugin]:
    """The plugins of the embedded default chain, outermost first: SemanticCache (SQLite on disk
    unless ``cache_store`` says otherwise), PromptMinifier (safe rewrites) and Batcher.

    A ModelRouter needs to know your targets, so it joins only when you configure one.
    """
    from .batcher import Batcher
    from .cache import SemanticCache
    from .minifier import PromptMinifier

    return [SemanticCache(store=cache_store), PromptMinifier(), Batcher()]
