"""LiteLLMTarget: any provider LiteLLM speaks, including self-hosted vLLM/TGI/Ollama endpoints."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from costmw.plugin_api import (
    Capabilities,
    Chunk,
    ContextWindowError,
    CostmwError,
    Price,
    PromptCaching,
    Request,
    Response,
    Target,
    TargetError,
    Usage,
    join_chunks,
    map_provider_error,
    missing_extra,
    model_info,
)
from costmw.plugin_api import prompt_caching as caching_of

from ._breakpoints import with_breakpoints
from ._guard import check_paid_call

__all__ = ["LiteLLMTarget"]


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map
    try:
        import litellm
    except ImportError as exc:
        raise missing_extra("litellm", "litellm", exc) from exc
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


_imported = False
_FIRST_USE_S = 60.0  # slack in the deadline for LiteLLM's first import (seconds on a busy machine)


async def _alitellm() -> Any:
    """LiteLLM, imported in a worker thread the first time (its import takes seconds: never on the loop)."""
    global _imported
    if not _imported:
        import asyncio

        await asyncio.to_thread(_litellm)
        _imported = True
    return _litellm()


def map_litellm_error(exc: BaseException, target: str, request: Request | None) -> CostmwError:
    """Turn a LiteLLM/OpenAI exception into costmw's error tree (the mapping every target uses)."""
    return map_provider_error(exc, target, request)


def _field(obj: Any, name: str) -> int:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return int(value) if isinstance(value, (int, float)) else 0


def usage_of(usage: Any) -> Usage:
    """costmw's Usage from a LiteLLM usage object: prompt and completion tokens, and the tokens the
    provider read from (OpenAI's ``prompt_tokens_details.cached_tokens``, Anthropic's
    ``cache_read_input_tokens``) or wrote to (``cache_creation_input_tokens``) its prompt cache."""
    if usage is None:
        return Usage()
    prompt = _field(usage, "prompt_tokens")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else getattr(
        usage, "prompt_tokens_details", None)
    cached = max(_field(usage, "cache_read_input_tokens"), _field(details, "cached_tokens") if details else 0)
    written = _field(usage, "cache_creation_input_tokens")
    cached = min(cached, prompt)
    return Usage(prompt, _field(usage, "completion_tokens"), cached_tokens=cached,
                 cache_write_tokens=min(written, prompt - cached))


def _plain(value: Any) -> Any:
    """A provider's pydantic-like object as plain dicts and lists."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _logprobs(choice: Any) -> list[dict[str, Any]] | None:
    """The answer tokens' log-probabilities (``choices[0].logprobs.content``) when the provider sent them."""
    lp = choice.get("logprobs") if isinstance(choice, dict) else getattr(choice, "logprobs", None)
    content = lp.get("content") if isinstance(lp, dict) else getattr(lp, "content", None)
    if not content:
        return None
    return [dict(_plain(t)) for t in content]


def _tool_calls(message: Any) -> list[dict[str, Any]] | None:
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    out = []
    for c in calls:
        data = c.model_dump() if hasattr(c, "model_dump") else dict(c)
        out.append({"id": data.get("id"), "type": data.get("type") or "function",
                    "function": {"name": data["function"]["name"],
                                 "arguments": data["function"].get("arguments") or ""}})
    return out


class LiteLLMTarget(Target):
    """A remote model called through LiteLLM.

    Rate limits, timeouts, connection errors and 5xx answers are retried with exponential
    backoff (``retries`` times); then each target in ``fallbacks`` is tried in turn. The API key
    is held privately and never appears in reprs, the ledger or logs. ``timeout`` bounds one
    attempt; ``timeout_s``, the deadline of the whole call, defaults to what every attempt,
    backoff and fallback may take together, plus a minute for LiteLLM's first import.

    ``prompt_caching`` says how the provider caches prompt prefixes (by default read from
    LiteLLM's price map; False: not at all). For a provider that caches at breakpoints
    (Anthropic), ``cache_breakpoints`` places them: at the end of the system prompt and of the
    latest turn, where the prefix is long enough to be cached.
    """

    kind = "litellm"

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        fallbacks: Sequence[LiteLLMTarget | str] = (),
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        timeout: float = 60.0,
        capabilities: Capabilities | None = None,
        extra: dict[str, Any] | None = None,
        timeout_s: float | str | None = "auto",
        prompt_caching: PromptCaching | bool = True,
        cache_breakpoints: bool = True,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ValueError("LiteLLMTarget needs a model name, e.g. LiteLLMTarget('gpt-4o-mini')")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        info = model_info(model) or {}
        caps = capabilities or Capabilities(
            tools=bool(info.get("supports_function_calling", True)),
            json_mode=bool(info.get("supports_response_schema", True)),
            streaming=True,
            context_window=info.get("max_input_tokens") or info.get("max_tokens"),
        )
        super().__init__(name or model, model=model, price=price, capabilities=caps,
                         timeout_s=None if timeout_s == "auto" else timeout_s)  # type: ignore[arg-type]
        self.api_base = api_base
        self.__api_key = api_key
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.extra = dict(extra or {})
        if prompt_caching is True:
            self.prompt_caching = caching_of(model)
        elif isinstance(prompt_caching, PromptCaching):
            self.prompt_caching = prompt_caching
        self.cache_breakpoints = cache_breakpoints
        self.fallbacks: list[LiteLLMTarget] = [
            f if isinstance(f, LiteLLMTarget) else LiteLLMTarget(f, api_base=api_base, api_key=api_key,
                                                                 retries=retries, backoff=backoff, timeout=timeout)
            for f in fallbacks
        ]
        if timeout_s == "auto":  # LiteLLM bounds each attempt itself; the deadline catches what it misses
            self.timeout_s = self.whole_call_s() + _FIRST_USE_S

    def whole_call_s(self) -> float:
        """Seconds every attempt, backoff and fallback of one call may take together."""
        own = self.timeout * (self.retries + 1) + self.max_backoff * self.retries
        return own + sum(f.whole_call_s() for f in self.fallbacks)

    def __repr__(self) -> str:
        return f"LiteLLMTarget(name={self.name!r}, model={self.model!r}, api_base={self.api_base!r})"

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {**self.extra, **dict(request.params)}
        kwargs["model"] = self.model
        kwargs["messages"] = [dict(m) for m in request.messages]
        caching = self.prompt_caching
        if caching is not None and caching.breakpoints and self.cache_breakpoints:
            kwargs["messages"] = with_breakpoints(kwargs["messages"], kwargs.get("tools"), caching, self.model)
        kwargs["timeout"] = kwargs.get("timeout", self.timeout)
        kwargs["num_retries"] = 0
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.__api_key:
            kwargs["api_key"] = self.__api_key
        return kwargs

    def _retrying(self) -> Any:
        import tenacity

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, TargetError) and exc.retryable and not isinstance(exc, ContextWindowError)

        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=self.backoff, max=self.max_backoff),
            retry=tenacity.retry_if_exception(retryable),
            reraise=True,
        )

    async def _once(self, request: Request) -> Response:
        check_paid_call(self.model, self.api_base)
        litellm = await _alitellm()
        try:
            raw = await litellm.acompletion(**self._kwargs(request))
        except CostmwError:
            raise
        except Exception as exc:
            raise map_litellm_error(exc, self.name, request) from exc
        choice = raw.choices[0]
        usage = getattr(raw, "usage", None)
        response = Response(
            text=choice.message.content or "",
            tool_calls=_tool_calls(choice.message),
            finish_reason=choice.finish_reason,
            model=raw.model or self.model,
            usage=usage_of(usage),
            logprobs=_logprobs(choice),
            raw=raw,
        )
        return await self._afinish(request, response)

    async def _with_retries(self, request: Request) -> Response:
        async for attempt in self._retrying():
            with attempt:
                return await self._once(request)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acomplete(self, request: Request) -> Response:
        try:
            return await self._with_retries(request)
        except TargetError as first:
            if not first.retryable or not self.fallbacks:
                raise
            last: TargetError = first
            for fb in self.fallbacks:
                try:
                    response = await fb.acomplete(request)
                    response.info.setdefault("fallback_from", self.name)
                    return response
                except TargetError as exc:
                    last = exc
                    if not exc.retryable:
                        raise
            raise last from first

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        check_paid_call(self.model, self.api_base)
        litellm = await _alitellm()
        kwargs = self._kwargs(request)
        kwargs["stream"] = True
        kwargs.setdefault("stream_options", {"include_usage": True})
        stream = None
        async for attempt in self._retrying():
            with attempt:
                try:
                    stream = await litellm.acompletion(**kwargs)
                except CostmwError:
                    raise
                except Exception as exc:
                    raise map_litellm_error(exc, self.name, request) from exc
        assert stream is not None
        seen: list[Chunk] = []
        usage = Usage()
        finish: str | None = None
        model = self.model
        try:
            async for part in stream:
                if getattr(part, "usage", None):
                    usage = usage_of(part.usage)
                model = getattr(part, "model", None) or model
                if not part.choices:
                    continue
                delta = part.choices[0].delta
                calls = None
                if getattr(delta, "tool_calls", None):
                    calls = [c.model_dump() if hasattr(c, "model_dump") else dict(c) for c in delta.tool_calls]
                finish = part.choices[0].finish_reason or finish
                chunk = Chunk(text=getattr(delta, "content", None) or "", tool_calls=calls,
                              finish_reason=part.choices[0].finish_reason)
                if chunk.text or chunk.tool_calls or chunk.finish_reason:
                    seen.append(chunk)
                    yield chunk
        except CostmwError:
            raise
        except Exception as exc:
            raise map_litellm_error(exc, self.name, request) from exc
        text, calls = join_chunks(seen)
        if not usage.prompt_tokens:
            usage = Usage()  # counted by _afinish, off the loop when the text is long
        yield Chunk(response=await self._afinish(request, Response(
            text=text, tool_calls=calls, finish_reason=finish or "stop", model=model, usage=usage)))
