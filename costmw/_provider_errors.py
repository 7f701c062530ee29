"""One mapping from the exceptions provider SDKs raise to costmw's error tree.

Every target kind (LiteLLM, a user's function, a local model) and the chain's own last link turn
a raised exception into a costmw error here, so a rate limit, a timeout or a 5xx is retryable
(and the router falls back) whatever raised it. Provider libraries are recognised by the names of
their exception classes and by ``status_code`` / ``response.status_code``, never imported:
``openai.RateLimitError``, ``httpx.ReadTimeout``, ``anthropic.APIConnectionError``, a plain
``TimeoutError``, ``requests.ConnectionError`` and an error carrying status 503 all map.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthenticationError,
    ContextWindowError,
    CostmwError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TargetError,
    TargetTimeout,
)

if TYPE_CHECKING:
    from ._types import Request

__all__ = ["map_provider_error", "status_of"]

# Class names (anywhere in the exception's class hierarchy, most specific first) per costmw error.
_BY_NAME: dict[str, type[TargetError]] = {}
for _cls, _names in (
    (AuthenticationError, ("AuthenticationError", "UnauthorizedError", "Unauthenticated")),
    (PermissionDeniedError, ("PermissionDeniedError", "PermissionDenied", "ForbiddenError")),
    (ContextWindowError, ("ContextWindowExceededError", "ContextLengthExceededError")),
    (RateLimitError, ("RateLimitError", "TooManyRequests", "TooManyRequestsError", "ThrottlingException",
                      "ResourceExhausted")),
    (TargetTimeout, ("Timeout", "TimeoutError", "APITimeoutError", "TimeoutException", "ReadTimeout",
                     "ConnectTimeout", "WriteTimeout", "PoolTimeout", "DeadlineExceeded", "ReadTimeoutError",
                     "ServerTimeoutError")),
    (ServerError, ("InternalServerError", "ServiceUnavailableError", "ServiceUnavailable", "APIConnectionError",
                   "BadGatewayError", "ConnectError", "ConnectionError", "RemoteProtocolError",
                   "ServerDisconnectedError", "ClientConnectionError", "OverloadedError", "InternalServerException")),
):
    for _name in _names:
        _BY_NAME[_name] = _cls


# What provider SDKs say when no API key was given. LiteLLM reports it as a 500 InternalServerError,
# which would be retried; it is an authentication failure no retry can mend.
_MISSING_KEY = re.compile(r"missing credentials|api_key client option must be set|no api key|api key (is )?"
                          r"(missing|not (set|found|provided))|(pass|provide|set) an? `?api_key", re.IGNORECASE)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (``status_code``, ``status`` or ``response.status_code``)."""
    for holder in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status"):
            value: Any = getattr(holder, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _kind(exc: BaseException, status: int | None) -> type[TargetError]:
    if status == 401 or _MISSING_KEY.search(str(exc)):
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    for klass in type(exc).__mro__:
        found = _BY_NAME.get(klass.__name__)
        if found is not None:
            return found
    if status == 429:
        return RateLimitError
    if status == 408:
        return TargetTimeout
    if status is not None and status >= 500:
        return ServerError
    return TargetError


def map_provider_error(exc: BaseException, target: str, request: Request | None = None) -> CostmwError:
    """``exc`` as costmw's error: a costmw error is returned as it is; anything else becomes the
    matching :class:`TargetError` subclass (its text redacted), with ``exc`` as its cause."""
    if isinstance(exc, CostmwError):
        return exc
    status = status_of(exc)
    cls = _kind(exc, status)
    error = cls(f"target {target!r} failed: {type(exc).__name__}: {exc}", target=target, request=request,
                status_code=status)
    error.__cause__ = exc
    return error
