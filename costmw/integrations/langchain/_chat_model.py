"""CostmwChatModel: a LangChain chat model backed by a costmw chain, and ``wrap`` for existing models."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from ..._chain import Chain
from ..._errors import ConfigError
from ..._plugin import Plugin
from ..._types import Request
from ._messages import to_openai_messages
from ._responses import message_chunk, message_from_response
from ._target import LangChainTarget

__all__ = ["CostmwChatModel", "wrap"]

_METHODS = ("function_calling", "json_schema", "json_mode")


def _tool_choice(choice: Any, names: Sequence[str]) -> Any:
    """A LangChain ``tool_choice`` in OpenAI form ('any' -> 'required', a tool name -> that function)."""
    if choice is None or choice is False:
        return None
    if choice is True or choice == "any":
        return {"type": "function", "function": {"name": names[0]}} if choice is True and len(names) == 1 \
            else "required"
    if choice in ("auto", "none", "required") or isinstance(choice, Mapping):
        return choice
    if isinstance(choice, str):
        if choice not in names:
            raise ConfigError(f"tool_choice {choice!r} names no bound tool; tools are {list(names)}")
        return {"type": "function", "function": {"name": choice}}
    raise ConfigError(f"tool_choice must be a tool name, 'auto', 'any', 'none', True or a dict, got {choice!r}")


class CostmwChatModel(BaseChatModel):
    """A LangChain chat model whose every call goes through a costmw chain.

    ``model`` is the model the app asks for (the chain routes, caches and prices against it).
    Without ``chain``, a chain with costmw's default plugins around a LiteLLM target for
    ``model`` is built on first use (``api_key``, ``base_url``, ``timeout`` and ``max_retries``
    apply to that target only). ``response_metadata["costmw"]`` of every answer holds its cost,
    baseline cost, ``served_by``, savings and routing decision. Streams go through the chain too,
    so cache hits stream. ``request_options`` are costmw's controls for every call (the fields of
    :class:`costmw.Options`), ``request_metadata`` free-form ledger labels; both can also be given
    per call (``invoke(..., request_options={...})``).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    chain: Any = Field(default=None, exclude=True)
    model_name: str = Field(default="", alias="model")
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    timeout: float | None = None
    max_retries: int | None = None
    streaming: bool = False
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    request_metadata: dict[str, Any] = Field(default_factory=dict)
    request_options: dict[str, Any] = Field(default_factory=dict)
    api_key: SecretStr | None = Field(default=None, exclude=True)
    base_url: str | None = None

    _built: Chain | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check()

    def _check(self) -> None:
        """Fail fast, with costmw's own error, on a configuration that cannot work."""
        if self.chain is not None and not isinstance(self.chain, Chain):
            raise ConfigError(f"chain must be a costmw.Chain, got {type(self.chain).__name__}")
        if not self.model_name and self.chain is not None:
            targets = list(self.chain.targets.values())
            self.model_name = self.chain.default_model or (targets[0].name if len(targets) == 1 else "")
        if not self.model_name:
            raise ConfigError("CostmwChatModel needs model='<name of the model the app asks for>'")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def _llm_type(self) -> str:
        return "costmw"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "stop": self.stop, **self.model_kwargs}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="costmw", ls_model_type="chat",
                                 ls_model_name=str(kwargs.get("model") or self.model_name))
        temperature = kwargs.get("temperature", self.temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        stop = stop or self.stop
        if temperature is not None:
            params["ls_temperature"] = temperature
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop:
            params["ls_stop"] = stop
        return params

    # -- the chain -------------------------------------------------------------------------
    def get_chain(self) -> Chain:
        """The chain behind this model (built on first use when none was given)."""
        if self.chain is not None:
            return self.chain  # type: ignore[no-any-return]
        with self._lock:
            if self._built is None:
                from costmw.adapters import LiteLLMTarget
                from costmw.plugins import default_plugins

                key = self.api_key.get_secret_value() if self.api_key else None
                target = LiteLLMTarget(self.model_name, api_key=key, api_base=self.base_url,
                                       timeout=self.timeout or 60.0, retries=self.max_retries or 2)
                self._built = Chain(plugins=default_plugins(), targets=[target])
            return self._built

    def _call(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
        """The pieces of a costmw request: messages, model, and the keywords of ``Chain.complete``
        (metadata, options and the model's params)."""
        kwargs = dict(kwargs)
        model = str(kwargs.pop("model", None) or self.model_name)
        metadata = {**self.request_metadata, **(kwargs.pop("request_metadata", None) or {})}
        options = {**self.request_options, **(kwargs.pop("request_options", None) or {})}
        kwargs.pop("stream", None)
        params: dict[str, Any] = {**self.model_kwargs}
        for name in ("temperature", "max_tokens", "timeout"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        stop = stop if stop is not None else self.stop
        if stop:
            params["stop"] = list(stop)
        params.update(kwargs)
        return to_openai_messages(messages), model, {"metadata": metadata, "options": options, **params}

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> Request:
        msgs, model, call = self._call(messages, stop, kwargs)
        return Request.create(msgs, model, metadata=call.pop("metadata"), options=call.pop("options"), params=call)

    # -- LangChain's hooks -------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        chain = self.get_chain()
        response = chain.run_sync(chain.asend(request))
        return ChatResult(generations=[ChatGeneration(message=message_from_response(response, request.model))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        response = await self.get_chain().asend(request)
        return ChatResult(generations=[ChatGeneration(message=message_from_response(response, request.model))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msgs, model, call = self._call(messages, stop, kwargs)
        for chunk in self.get_chain().stream(msgs, model, **call):
            if chunk.text or chunk.tool_calls or chunk.response is not None:
                yield ChatGenerationChunk(message=message_chunk(chunk, model))

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        msgs, model, call = self._call(messages, stop, kwargs)
        async for chunk in self.get_chain().astream(msgs, model, **call):
            if chunk.text or chunk.tool_calls or chunk.response is not None:
                yield ChatGenerationChunk(message=message_chunk(chunk, model))

    # -- tools and structured output ---------------------------------------------------------
    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: str | bool | dict[str, Any] | None = None, strict: bool | None = None,
                   parallel_tool_calls: bool | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form LangChain accepts) as OpenAI-format tools on every call."""
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [t["function"]["name"] for t in formatted if "function" in t]
        choice = _tool_choice(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(self, schema: dict[str, Any] | type, *, include_raw: bool = False,
                               method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
                               strict: bool | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Answers parsed into ``schema`` (pydantic class, TypedDict or JSON schema), by tool call or JSON."""
        if kwargs:
            raise ConfigError(f"with_structured_output got unsupported arguments {sorted(kwargs)}")
        if method not in _METHODS:
            raise ConfigError(f"method must be one of {_METHODS}, got {method!r}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            llm = self.bind_tools([schema], tool_choice=name, strict=strict, ls_structured_output_format=trace)
            parser = (PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic  # type: ignore[list-item]
                      else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
        else:
            fmt: dict[str, Any] = {"type": "json_object"}
            if method == "json_schema":
                spec = {"name": name, "schema": tool["function"].get("parameters", {})}
                fmt = {"type": "json_schema", "json_schema": {**spec, **({"strict": strict} if strict else {})}}
            llm = self.bind(response_format=fmt, ls_structured_output_format=trace)
            parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type,type-var]
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


def wrap(model: BaseChatModel, chain: Chain | None = None, *, plugins: Sequence[Plugin] | None = None,
         name: str | None = None, price: Any = None) -> CostmwChatModel:
    """Put a costmw chain around an existing LangChain chat model; use the result exactly like ``model``.

    ``model`` becomes a target of ``chain`` (or of a new chain of ``plugins``, default: costmw's
    default plugins). ``name`` and ``price`` (USD per 1M input/output tokens) override what is
    read from the model.
    """
    if isinstance(model, CostmwChatModel):
        raise ConfigError("this model already goes through costmw; wrap the model it was built around")
    if not isinstance(model, BaseChatModel):
        raise ConfigError(f"wrap() takes a LangChain chat model (BaseChatModel), got {type(model).__name__}")
    if chain is not None and plugins is not None:
        raise ConfigError("pass either chain= or plugins=, not both")
    target = LangChainTarget(model, name=name, price=price)
    if chain is None:
        from ...plugins import default_plugins

        chain = Chain(plugins=list(default_plugins() if plugins is None else plugins), targets=[target])
    else:
        if not isinstance(chain, Chain):
            raise ConfigError(f"chain must be a costmw.Chain, got {type(chain).__name__}")
        chain.add_target(target)
    return CostmwChatModel(chain=chain, model=target.name, profile=model.profile,
                           disable_streaming=model.disable_streaming)
