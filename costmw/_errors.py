"""The exception tree of costmw.

::

    CostmwError
    ├── ConfigError            a mistake in how costmw was set up (bad option, unknown plugin)
    │                          (also a ValueError, so callers that catch ValueError still do)
    ├── InvalidRequestError    a request that cannot be sent (malformed messages, no model)
    │                          (also a ValueError)
    ├── MissingDependencyError an optional extra is not installed (also an ImportError)
    ├── BatchNotReadyError     a Batch API job's results were asked for before it ended
    └── RequestError           a runtime failure that carries the request that caused it
        ├── PluginError        a plugin raised while handling a request
        ├── TargetError        a target (model, API, function) failed
        │   ├── AuthenticationError   (401, a missing or wrong API key; never retried)
        │   ├── PermissionDeniedError (403; never retried)
        │   ├── RateLimitError
        │   ├── TargetTimeout
        │   ├── ServerError    (5xx)
        │   └── ContextWindowError
        ├── NoTargetError      no target can serve the request
        ├── BudgetExceeded     a tenant's spend limit was reached
        ├── BudgetUnavailable  a budget could not be checked (the ledger's file is unavailable)
        ├── QueueFullError     the batcher's queue is full (and it refuses rather than waits)
        └── BatcherClosedError the batcher closed before serving the request
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._redact import redact_secrets

if TYPE_CHECKING:
    from ._types import Request

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchNotReadyError",
    "BatcherClosedError",
    "BudgetExceeded",
    "BudgetUnavailable",
    "ConfigError",
    "ContextWindowError",
    "CostmwError",
    "InvalidRequestError",
    "MissingDependencyError",
    "NoTargetError",
    "PermissionDeniedError",
    "PluginError",
    "QueueFullError",
    "RateLimitError",
    "RequestError",
    "ServerError",
    "StoreUnavailable",
    "TargetError",
    "TargetTimeout",
    "UpstreamStatusError",
    "missing_extra",
]


class CostmwError(Exception):
    """Base class of every error costmw raises on purpose."""


class ConfigError(CostmwError, ValueError):
    """costmw was configured wrongly; raised before any call is made."""


class InvalidRequestError(CostmwError, ValueError):
    """The request itself is malformed; raised before any network call."""


class MissingDependencyError(CostmwError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class RequestError(CostmwError):
    """A runtime failure while serving ``request``."""

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        super().__init__(redact_secrets(message))  # provider errors may echo a key back
        self.request = request


class PluginError(RequestError):
    """A plugin raised; ``plugin`` names it and ``__cause__`` holds the original error."""

    def __init__(self, message: str, *, plugin: str, request: Request | None = None) -> None:
        super().__init__(message, request=request)
        self.plugin = plugin


class TargetError(RequestError):
    """A target failed. ``retryable`` says whether another try (or target) may succeed."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        target: str = "",
        request: Request | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.target = target
        self.status_code = status_code


class AuthenticationError(TargetError):
    """The target has no credentials or rejected them (401, a missing API key). Another try
    cannot succeed, so it is never retried: fix the key."""


class PermissionDeniedError(TargetError):
    """The credentials are valid but may not use this model or resource (403); never retried."""


class RateLimitError(TargetError):
    retryable = True


class TargetTimeout(TargetError):
    retryable = True


class ServerError(TargetError):
    retryable = True


class ContextWindowError(TargetError):
    """The prompt does not fit the target's context window; another target may take it."""

    retryable = True


class NoTargetError(RequestError):
    """No configured target can serve the request."""


class BudgetExceeded(RequestError):
    """The tenant's spend limit for the current period is reached."""

    def __init__(self, message: str, *, tenant: str, limit_usd: float, spent_usd: float,
                 request: Request | None = None) -> None:
        super().__init__(message, request=request)
        self.tenant = tenant
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd


class BudgetUnavailable(RequestError):
    """A call against a budget was refused because the ledger could not hold it (its file is
    locked or unavailable) and the ledger is set to refuse then (``Ledger(on_unavailable=...)``)."""


class QueueFullError(RequestError):
    """The batcher's queue is full and it was configured to refuse rather than wait."""


class BatcherClosedError(RequestError):
    """The batcher was closed before this request could be served."""


class BatchNotReadyError(CostmwError):
    """Results of a Batch API job were asked for before the provider batch ended."""


class StoreUnavailable(RuntimeError):
    """A cache store's file cannot be used now (the cache steps aside and tries again later)."""


class UpstreamStatusError(Exception):
    """An HTTP error answer from an upstream server; :func:`map_provider_error` turns it into the
    matching :class:`TargetError` by its status."""

    def __init__(self, status_code: int, message: str, code: str | None = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.code = code


class ApiError(Exception):
    """An error the gateway answers with: HTTP status plus OpenAI's error body."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def missing_extra(package: str, extra: str, error: BaseException | None = None) -> MissingDependencyError:
    """Build the error for a missing optional dependency, naming the extra that brings it."""
    msg = f"{package} is required for this feature: pip install \"costmw[{extra}]\""
    if error is not None:
        msg += f" ({error})"
    return MissingDependencyError(msg)


