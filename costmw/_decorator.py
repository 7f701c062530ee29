"""``@optimize``: the user's own LLM function becomes a target, with the chain's plugins around it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from ._chain import Chain
from ._options import Options
from ._types import Request

__all__ = ["optimize"]

F = TypeVar("F", bound=Callable[..., Any])


def _wrap(fn: F, chain: Chain | None, model: str | None, price: Any, metadata: dict[str, Any] | None,
          options: Options | Mapping[str, Any] | None) -> F:
    from ._seam import callable_target

    the_chain = chain if chain is not None else _default()
    target_name = f"fn:{fn.__module__}.{fn.__qualname__}"
    target = the_chain.targets.get(target_name) or the_chain.add_target(
        callable_target(fn, name=target_name, model=model, price=price))
    meta = dict(metadata or {})
    base = Options(target=target.name).merge(Options.coerce(options, where="optimize(options=...)"))

    def build(messages: Any, kwargs: dict[str, Any]) -> Request:
        call_options = base.merge(Options.coerce(kwargs.pop("costmw_options", None), where="costmw_options"))
        call_meta = {**meta, **(kwargs.pop("costmw_metadata", None) or {})}
        request = Request.create(messages, model or target.model, params=kwargs, metadata=call_meta,
                                 options=call_options)
        request.context.chain = the_chain
        request.context.target = target  # the function serves its own calls; a router keeps it
        return request

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(messages: Any, **kwargs: Any) -> Any:
            response = await the_chain.asend(build(messages, kwargs))
            return response.text

        async_wrapper.costmw_chain = the_chain  # type: ignore[attr-defined]
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(messages: Any, **kwargs: Any) -> Any:
        return the_chain.run_sync(the_chain.asend(build(messages, kwargs))).text

    wrapper.costmw_chain = the_chain  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _default() -> Chain:
    from ._completion import default_chain

    return default_chain()


@overload
def optimize(fn: F, /) -> F: ...


@overload
def optimize(
    chain: Chain | None = None, /, *, model: str | None = None, price: Any = None,
    metadata: dict[str, Any] | None = None, options: Options | Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...


def optimize(
    chain_or_fn: Any = None, /, *, model: str | None = None, price: Any = None,
    metadata: dict[str, Any] | None = None, options: Options | Mapping[str, Any] | None = None,
) -> Any:
    """Decorate ``fn(messages, **params) -> str`` so every call goes through a chain.

    Works bare (``@optimize``, the default chain) and called (``@optimize(chain, model=...)``).
    ``model`` names the model the function calls, so the ledger can price it; ``price`` sets
    it directly (USD per 1M input/output tokens). The decorated function keeps its signature
    and returns text, as before. ``options`` (:class:`costmw.Options` or a dict) apply to every
    call; pass ``costmw_options={...}`` to one call for its own controls, and ``costmw_metadata``
    for its ledger labels.
    """
    if callable(chain_or_fn) and not isinstance(chain_or_fn, Chain):
        return _wrap(chain_or_fn, None, model, price, metadata, options)
    if chain_or_fn is not None and not isinstance(chain_or_fn, Chain):
        raise TypeError(f"optimize takes a costmw.Chain, got {type(chain_or_fn).__name__}")

    def decorate(fn: F) -> F:
        return _wrap(fn, chain_or_fn, model, price, metadata, options)

    return decorate
