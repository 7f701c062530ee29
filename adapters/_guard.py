"""A switch that forbids paid (non-local) model calls, for test suites."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlparse

from costmw.plugin_api import TargetError

__all__ = ["check_paid_call", "forbid_paid_calls"]

_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
_forbidden = 0


@contextlib.contextmanager
def forbid_paid_calls() -> Iterator[None]:
    """Inside this block, a remote target that would reach a paid API raises instead."""
    global _forbidden
    _forbidden += 1
    try:
        yield
    finally:
        _forbidden -= 1


def _is_local(api_base: str | None) -> bool:
    if not api_base:
        return False
    host = urlparse(api_base).hostname or ""
    return host in _LOCAL or host.startswith("127.")


def check_paid_call(model: str, api_base: str | None) -> None:
    if (_forbidden or os.environ.get("COSTMW_FORBID_PAID_CALLS") == "1") and not _is_local(api_base):
        raise TargetError(
            f"a paid call to {model!r} was blocked: paid calls are forbidden here "
            "(costmw.testing.forbid_paid_calls or COSTMW_FORBID_PAID_CALLS=1)",
            target=model,
        )
