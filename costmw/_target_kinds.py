"""The target kinds a config names (``targets: [{kind: hf, ...}]``): built-ins, ``register_target_kind``,
and the ``costmw.targets`` entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._registry import Registry, callable_factory
from ._seam import BUILTIN_TARGET_KINDS

__all__ = ["TARGET_KINDS", "register_target_kind"]


TARGET_KINDS: Registry[Callable[..., Any]] = Registry("target kind", "costmw.targets", BUILTIN_TARGET_KINDS,
                                                    callable_factory("target kind"))


def register_target_kind(kind: str, factory: str | Callable[..., Any]) -> None:
    """Make ``kind`` usable in ``targets:`` of a config, built by ``factory`` (a callable, or its
    ``"module:attr"`` path, imported when a config first uses the kind). Built-in kinds cannot be taken."""
    TARGET_KINDS.register(kind, factory)
