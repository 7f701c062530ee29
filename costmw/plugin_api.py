"""The names plugin and target authors build on, in one documented module.

``costmw`` itself exports what an application needs (``Chain``, ``Request``, the errors, ...).
This module adds the pieces a plugin or target needs beyond that: token counting, prices and
model metadata, the helpers for streams and lazy exports, and the background loop. The built-in
plugins (``costmw.plugins``) and targets (``costmw.adapters``) use core only through ``costmw``
and this module, so third-party code can do everything they do.
"""

from __future__ import annotations

from ._batch_api import BATCH_DISCOUNTS
from ._deadline import DEFAULT_TIMEOUT_S, deadline_for, iterate_with_deadline, with_deadline
from ._errors import (
    AuthenticationError,
    BatcherClosedError,
    BatchNotReadyError,
    BudgetExceeded,
    BudgetUnavailable,
    ConfigError,
    ContextWindowError,
    CostmwError,
    InvalidRequestError,
    MissingDependencyError,
    NoTargetError,
    PermissionDeniedError,
    PluginError,
    QueueFullError,
    RateLimitError,
    RequestError,
    ServerError,
    StoreUnavailable,
    TargetError,
    TargetTimeout,
    UpstreamStatusError,
    missing_extra,
)
from ._facts import CallMade, Facts, TokensRemoved
from ._lazy import lazy_exports
from ._ledger import Ledger
from ._loop import LoopThread
from ._lru import LRUCache
from ._options import CAPABILITY_NAMES, Options, identity
from ._paths import announce_path, cache_root, semantic_cache_path
from ._plugin import CallNext, Plugin, StreamNext, register_plugin, response_chunks
from ._pricing import Price, model_info
from ._prompt_cache import PromptCaching, SentPrefixes, common_prefix, conversation_key, prompt_caching
from ._provider_errors import map_provider_error
from ._quiet import ProgressBar, third_party_quiet
from ._redact import contains_secret, get_logger, redact_secrets
from ._registry import Registry, callable_factory, import_path
from ._target import Capabilities, Target, collect_stream, estimate_usage, requested_target
from ._target_kinds import register_target_kind
from ._tokens import acount_message_tokens, count_message_tokens, count_tokens, long_text
from ._types import Chunk, Message, Request, Response, Saving, Usage, join_chunks, message_text

__all__ = [
    "BATCH_DISCOUNTS",
    "CAPABILITY_NAMES",
    "DEFAULT_TIMEOUT_S",
    "AuthenticationError",
    "BatchNotReadyError",
    "BatcherClosedError",
    "BudgetExceeded",
    "BudgetUnavailable",
    "CallMade",
    "CallNext",
    "Capabilities",
    "Chunk",
    "ConfigError",
    "ContextWindowError",
    "CostmwError",
    "Facts",
    "InvalidRequestError",
    "LRUCache",
    "Ledger",
    "LoopThread",
    "Message",
    "MissingDependencyError",
    "NoTargetError",
    "Options",
    "PermissionDeniedError",
    "Plugin",
    "PluginError",
    "Price",
    "ProgressBar",
    "PromptCaching",
    "QueueFullError",
    "RateLimitError",
    "Registry",
    "Request",
    "RequestError",
    "Response",
    "Saving",
    "SentPrefixes",
    "ServerError",
    "StoreUnavailable",
    "StreamNext",
    "Target",
    "TargetError",
    "TargetTimeout",
    "TokensRemoved",
    "UpstreamStatusError",
    "Usage",
    "acount_message_tokens",
    "announce_path",
    "cache_root",
    "callable_factory",
    "collect_stream",
    "common_prefix",
    "contains_secret",
    "conversation_key",
    "count_message_tokens",
    "count_tokens",
    "deadline_for",
    "estimate_usage",
    "get_logger",
    "identity",
    "import_path",
    "iterate_with_deadline",
    "join_chunks",
    "lazy_exports",
    "long_text",
    "map_provider_error",
    "message_text",
    "missing_extra",
    "model_info",
    "prompt_caching",
    "redact_secrets",
    "register_plugin",
    "register_target_kind",
    "requested_target",
    "response_chunks",
    "semantic_cache_path",
    "third_party_quiet",
    "with_deadline",
]
