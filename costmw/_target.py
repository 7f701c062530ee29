"""The target protocol: what the last link of a chain calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from ._deadline import DEFAULT_TIMEOUT_S, check_timeout
from ._errors import InvalidRequestError
from ._pricing import Price, lookup_price
from ._prompt_cache import PromptCaching
from ._tokens import LONG_TEXT, count_message_tokens, count_tokens, long_text, tokenizer_loaded
from ._types import Chunk, Request, Response, Usage, join_chunks

__all__ = ["Capabilities", "Target", "collect_stream", "estimate_usage", "requested_target"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target can do; the router never sends a request to a target that lacks what it needs."""

    tools: bool = True
    json_mode: bool = True
    streaming: bool = True
    context_window: int | None = None
    batching: bool = False


class Target:
    """Base class of targets. Subclasses implement :meth:`acomplete`; the rest has defaults.

    ``price`` is USD per 1M input/output tokens. When it is not given, LiteLLM's price map is
    consulted for ``model``; a target with no known price costs nothing in the ledger.
    ``timeout_s`` is the deadline of one call to this target (a call's own ``timeout_s`` option
    overrides it; None: no deadline); past it the call raises :class:`TargetTimeout`.
    """

    kind: str = "target"
    #: How this target's provider caches prompt prefixes (None: it does not, or costmw cannot tell).
    prompt_caching: PromptCaching | None = None

    def __init__(
        self,
        name: str,
        *,
        model: str | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        capabilities: Capabilities | None = None,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a target needs a non-empty name")
        self.timeout_s = check_timeout(timeout_s)
        self.name = name
        self.model = model or name
        self._price = Price.coerce(price)
        self._price_looked_up = self._price is not None
        self.capabilities = capabilities or Capabilities()

    @property
    def price(self) -> Price | None:
        if not self._price_looked_up:
            self._price = lookup_price(self.model)
            self._price_looked_up = True
        return self._price

    @price.setter
    def price(self, value: Price | tuple[float, float] | dict[str, float] | None) -> None:
        self._price = Price.coerce(value)
        self._price_looked_up = True

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
             cache_write_tokens: int = 0) -> float:
        price = self.price
        return price.cost(prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens) if price else 0.0

    async def acomplete(self, request: Request) -> Response:
        raise NotImplementedError

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        """Stream an answer. The default makes one call and yields it as a single chunk."""
        response = await self.acomplete(request)
        yield Chunk(text=response.text, tool_calls=response.tool_calls,
                    finish_reason=response.finish_reason)
        yield Chunk(response=response)

    async def abatch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        """Serve several requests; each gets its own response or its own exception."""
        results = await asyncio.gather(*(self.acomplete(r) for r in requests), return_exceptions=True)
        return list(results)

    async def aclose(self) -> None:
        return None

    async def _afinish(self, request: Request, response: Response) -> Response:
        """:meth:`_finish` for code on the event loop: usage the model did not report is counted in a
        worker thread when the text is long or the tokenizer is not loaded yet, so a huge prompt
        never stalls the loop."""
        if not response.usage.prompt_tokens and not response.usage.completion_tokens and (
                long_text(request.messages) or len(response.text) > LONG_TEXT or not tokenizer_loaded()):
            response.usage = await asyncio.to_thread(estimate_usage, request, response, self.model)
        return self._finish(request, response)

    def _finish(self, request: Request, response: Response) -> Response:
        """Fill in the model and cost of a response made by this target. Usage the model did not
        report is counted with costmw's counter (the one the baseline uses) and marked estimated."""
        if not response.model:
            response.model = self.model
        if not response.usage.prompt_tokens and not response.usage.completion_tokens:
            response.usage = estimate_usage(request, response, self.model)
        u = response.usage
        response.cost_usd = self.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens)
        response.served_by = f"target:{self.name}"
        response.request_id = request.id
        return response

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"


def requested_target(targets: Iterable[Target], request: Request) -> Target | None:
    """The target ``request`` asks for among ``targets``: the one named by ``options.target``,
    else one whose name or model is the request's model; None when the model matches none.

    The one place a request's wanted target is resolved (the chain and the router both use it).
    A ``target`` option naming none of ``targets`` raises InvalidRequestError listing them.
    """
    pool = list(targets)
    name = request.options.target
    if name is not None:
        found = next((t for t in pool if t.name == name), None)
        if found is None:
            known = ", ".join(repr(t.name) for t in pool) or "none"
            raise InvalidRequestError(f"options.target names {name!r}, which is not a target here "
                                      f"(known targets: {known})")
        return found
    model = request.model
    return next((t for t in pool if t.name == model), None) or next((t for t in pool if t.model == model), None)


def estimate_usage(request: Request, response: Response, model: str) -> Usage:
    """The usage of a call counted by costmw (for models that report none), marked estimated."""
    answer = response.text + (str(response.tool_calls) if response.tool_calls else "")
    return Usage(count_message_tokens(request.messages, model, request.params.get("tools")),
                 count_tokens(answer, model), estimated=True)


async def collect_stream(chunks: AsyncIterator[Chunk]) -> Response:
    """Drain a stream and return its final response (assembling one when the stream has none)."""
    seen: list[Chunk] = []
    final: Response | None = None
    async for c in chunks:
        if c.response is not None:
            final = c.response
        else:
            seen.append(c)
    if final is None:
        text, calls = join_chunks(seen)
        final = Response(text=text, tool_calls=calls,
                         finish_reason=next((c.finish_reason for c in reversed(seen) if c.finish_reason), "stop"))
    return final


