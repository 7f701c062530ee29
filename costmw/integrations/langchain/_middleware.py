"""CostmwMiddleware: every model call a LangChain v1 agent makes goes through a costmw chain.

Each call becomes a costmw request (system message, conversation, tools, tool choice, model
settings and response format). The chain's plugins run as usual; at its end the call is served
by handing it back to the agent, with the model the router chose swapped into the
``ModelRequest``. When the chain answers without the agent's model (a cache hit, or a target
that is not a LangChain model) the answer is replayed through the agent's own model call, so
tool routing and structured output work the same either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from ..._chain import Chain
from ..._errors import ConfigError, CostmwError, InvalidRequestError
from ..._options import Options
from ..._types import Request, Response
from ._callbacks import EVENT
from ._chat_model import _tool_choice
from ._messages import to_openai_messages
from ._responses import costmw_metadata, message_from_response
from ._target import HANDOFF, AgentHandoff, AgentTarget, model_name_of

__all__ = ["CostmwMiddleware", "ReplayChatModel"]

AsyncCall = Callable[[ModelRequest], Awaitable[ModelResponse]]


class ReplayChatModel(BaseChatModel):
    """A chat model that answers with one given message: how a chain's answer re-enters an agent."""

    message: AIMessage
    model_name: str = ""

    @property
    def _llm_type(self) -> str:
        return "costmw-replay"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.message)])

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Runnable[Any, AIMessage]:
        return self.bind()


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        is_builtin = isinstance(t, Mapping) and "function" not in t and "name" not in t
        out.append(dict(t) if is_builtin else convert_to_openai_tool(t))
    return out


def _format_params(response_format: Any) -> dict[str, Any]:
    """The agent's response format as request parameters (so cache keys and other targets see it)."""
    from langchain.agents.structured_output import ProviderStrategy, ToolStrategy

    if response_format is None:
        return {}
    if isinstance(response_format, ToolStrategy):
        tools = [{"type": "function", "function": {"name": s.name, "description": s.description,
                                                   "parameters": s.json_schema}}
                 for s in response_format.schema_specs]
        return {"tools": tools, "tool_choice": "required"}
    schema = getattr(response_format, "schema", response_format)
    strategy = response_format if isinstance(response_format, ProviderStrategy) else ProviderStrategy(schema)
    return dict(strategy.to_model_kwargs())


class CostmwMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """LangChain v1 agent middleware that sends every model call through ``chain``.

    ``options`` are costmw's controls for every call (:class:`costmw.Options` or a dict: tenant,
    tags, cache controls, ...); ``metadata`` holds free-form labels for the ledger.
    The agent's own model is added to the chain as a target named after it, unless the chain
    already has a target for that model name.
    """

    def __init__(self, chain: Chain, *, metadata: Mapping[str, Any] | None = None,
                 options: Options | Mapping[str, Any] | None = None) -> None:
        if not isinstance(chain, Chain):
            raise ConfigError(f"CostmwMiddleware needs a costmw.Chain, got {type(chain).__name__}")
        self.chain = chain
        self.request_metadata = dict(metadata or {})
        try:
            self.request_options = Options.coerce(options)
        except InvalidRequestError as exc:
            raise ConfigError(f"CostmwMiddleware: {exc}") from None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "CostmwMiddleware"

    def _model_for(self, chat_model: BaseChatModel) -> str:
        name = model_name_of(chat_model)
        with self._lock:
            targets = self.chain.targets
            if name not in targets and not any(t.model == name for t in targets.values()):
                self.chain.add_target(AgentTarget(chat_model, name=name))
        return name

    def _request(self, model_request: ModelRequest, call: AsyncCall) -> tuple[Request, AgentHandoff]:
        system = [model_request.system_message] if model_request.system_message is not None else []
        messages = to_openai_messages([*system, *model_request.messages])
        params: dict[str, Any] = dict(model_request.model_settings)
        extra = _format_params(model_request.response_format)
        tools = [*_tools(list(model_request.tools)), *extra.pop("tools", [])]
        if tools:
            params["tools"] = tools
            names = [t["function"]["name"] for t in tools if "function" in t]
            choice = _tool_choice(model_request.tool_choice, names)
            if choice is not None:
                params["tool_choice"] = choice
        params.update(extra)
        request = Request.create(messages, self._model_for(model_request.model), params=params,
                                 metadata=self.request_metadata, options=self.request_options)
        handoff = AgentHandoff(model_request, call, request.messages)
        request.context.remember(HANDOFF, handoff)
        return request, handoff

    async def _run(self, model_request: ModelRequest, call: AsyncCall) -> tuple[ModelResponse, Response]:
        request, handoff = self._request(model_request, call)
        try:
            response = await self.chain.asend(request)
        except CostmwError:
            if handoff.error is not None:
                raise handoff.error from None
            raise
        if handoff.result is None:  # answered without the agent's model: replay the answer through it
            message = message_from_response(response, request.model)
            replay = ReplayChatModel(message=message, model_name=request.model, profile=model_request.model.profile,
                                     cache=False)
            handoff.result = await call(model_request.override(model=replay))
        return _with_costmw(handoff.result, response), response

    async def awrap_model_call(self, request: ModelRequest,
                               handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> ModelResponse:
        result, response = await self._run(request, handler)
        with contextlib.suppress(RuntimeError):  # no parent run to report to
            await adispatch_custom_event(EVENT, costmw_metadata(response))
        return result

    def wrap_model_call(self, request: ModelRequest,
                        handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        context = contextvars.copy_context()

        async def call(model_request: ModelRequest) -> ModelResponse:
            return await asyncio.to_thread(context.run, handler, model_request)

        result, response = self.chain.run_sync(self._run(request, call))
        with contextlib.suppress(RuntimeError):
            dispatch_custom_event(EVENT, costmw_metadata(response))
        return result  # type: ignore[no-any-return]


def _with_costmw(result: ModelResponse, response: Response) -> ModelResponse:
    """The agent's model response with costmw's numbers added to its AI message."""
    meta = costmw_metadata(response)
    messages = [m.model_copy(update={"response_metadata": {**m.response_metadata, EVENT: meta}})
                if isinstance(m, AIMessage) else m for m in result.result]
    return ModelResponse(result=messages, structured_response=result.structured_response)
