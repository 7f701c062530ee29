"""costmw: a chain of cost-cutting plugins around any LLM call.

>>> import costmw
>>> from costmw.adapters import MockTarget
>>> chain = costmw.Chain(targets=[MockTarget(lambda r: "hello")])
>>> chain.complete([{"role": "user", "content": "hi"}], model="mock").text
'hello'
"""

from __future__ import annotations

from ._batch_api import BatchJob, BatchOutcome
from ._chain import Chain
from ._completion import acompletion, completion, default_chain, set_default_chain
from ._decorator import optimize
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
    TargetError,
    TargetTimeout,
)
from ._ledger import Ledger, LedgerRow
from ._options import Options
from ._plugin import CallNext, Plugin, StreamNext, register_plugin, registered_plugins
from ._pricing import Price
from ._types import Chunk, Request, RequestContext, Response, Saving, Usage

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BatchJob",
    "BatchNotReadyError",
    "BatchOutcome",
    "BatcherClosedError",
    "BudgetExceeded",
    "BudgetUnavailable",
    "CallNext",
    "Chain",
    "Chunk",
    "ConfigError",
    "ContextWindowError",
    "CostmwError",
    "InvalidRequestError",
    "Ledger",
    "LedgerRow",
    "MissingDependencyError",
    "NoTargetError",
    "Options",
    "PermissionDeniedError",
    "Plugin",
    "PluginError",
    "Price",
    "QueueFullError",
    "RateLimitError",
    "Request",
    "RequestContext",
    "RequestError",
    "Response",
    "Saving",
    "ServerError",
    "StreamNext",
    "TargetError",
    "TargetTimeout",
    "Usage",
    "__version__",
    "acompletion",
    "completion",
    "default_chain",
    "optimize",
    "register_plugin",
    "registered_plugins",
    "set_default_chain",
]
