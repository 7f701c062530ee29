"""The one place core reaches into ``costmw.adapters``, always lazily.

Core defines what a target is (``costmw._target``); the targets themselves live in ``adapters/``.
Core needs a few of them at run time only: a LiteLLM target built on demand for a model the
chain was not given, a callable target for ``@optimize``, the LiteLLM module for
``completion``'s return types and remote embeddings, and the target kinds a config names. Each is
imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._target import Target

__all__ = [
    "BUILTIN_TARGET_KINDS",
    "callable_target",
    "check_paid_call",
    "is_litellm_target",
    "litellm_module",
    "litellm_target",
    "map_litellm_error",
]

# the target kinds a config may name (``targets: [{kind: ...}]``), imported when first used
BUILTIN_TARGET_KINDS: dict[str, str] = {
    "litellm": "costmw.adapters:LiteLLMTarget",
    "openai": "costmw.adapters:OpenAICompatibleTarget",
    "callable": "costmw.adapters:CallableTarget",
    "mock": "costmw.adapters:MockTarget",
    "hf": "costmw.adapters:HFTarget",
    "llamacpp": "costmw.adapters:LlamaCppTarget",
    "classifier": "costmw.adapters:ClassifierTarget",
    "dir": "costmw.adapters:load",
}


def litellm_target(model: str, **kwargs: Any) -> Target:
    """A ``LiteLLMTarget`` for ``model``."""
    from costmw.adapters import LiteLLMTarget

    return LiteLLMTarget(model, **kwargs)


def callable_target(fn: Callable[..., Any], **kwargs: Any) -> Target:
    """A ``CallableTarget`` around a user function."""
    from costmw.adapters import CallableTarget

    return CallableTarget(fn, **kwargs)


def is_litellm_target(target: Target) -> bool:
    """Whether ``target`` is a ``LiteLLMTarget`` (the Batch API needs one)."""
    from costmw.adapters import LiteLLMTarget

    return isinstance(target, LiteLLMTarget)


def check_paid_call(model: str, api_base: str | None) -> None:
    """Refuse a paid provider call where ``forbid_paid_calls`` is in force."""
    from costmw.adapters._guard import check_paid_call as check

    check(model, api_base)


def map_litellm_error(exc: BaseException, target: str) -> Exception:
    """The costmw error for an exception LiteLLM raised while ``target`` was being called."""
    from costmw.adapters._litellm import map_litellm_error as mapped

    return mapped(exc, target, None)


def litellm_module() -> Any:
    """The ``litellm`` module (raises ``MissingDependencyError`` naming the extra when absent)."""
    from costmw.adapters._litellm import _litellm

    return _litellm()
