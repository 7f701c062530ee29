"""Targets that call LangChain chat models: a wrapped model, or an agent's own model call.

Inside :class:`CostmwMiddleware` a call carries an :class:`AgentHandoff` in its context: the
agent's model call (``handler``) and its ``ModelRequest``. A LangChain target then serves the
call by handing it back to the agent with its own model swapped in, so the agent's tool binding,
structured output and inner middleware still run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, SystemMessage, message_chunk_to_message
from langchain_core.runnables import Runnable

from ..._errors import ConfigError, InvalidRequestError
from ..._pricing import Price
from ..._target import Capabilities, Target
from ..._types import Chunk, Message, Request, Response
from ._messages import from_openai_messages
from ._responses import response_from_message

__all__ = ["HANDOFF", "AgentHandoff", "AgentTarget", "LangChainTarget", "model_name_of"]

HANDOFF = "langchain.agent_handoff"


def model_name_of(chat_model: BaseChatModel) -> str:
    """The model name a LangChain chat model reports (its tracing name, else a model attribute)."""
    try:
        name = chat_model._get_ls_params().get("ls_model_name")
    except Exception:
        name = None
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        if name:
            break
        value = getattr(chat_model, attr, None)
        name = value if isinstance(value, str) else None
    return str(name or type(chat_model).__name__)


def _langchain_tool_choice(choice: Any) -> Any:
    """An OpenAI ``tool_choice`` in the form LangChain's ``bind_tools`` accepts everywhere."""
    if choice == "required":
        return "any"
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return choice["function"].get("name")
    return choice


def bound_model(chat_model: BaseChatModel, params: Mapping[str, Any]) -> Runnable[Any, Any]:
    """``chat_model`` with a request's tools bound and its other parameters passed through."""
    rest = dict(params)
    tools, choice = rest.pop("tools", None), rest.pop("tool_choice", None)
    runnable: Runnable[Any, Any] = chat_model
    if tools:
        kwargs = {} if choice is None else {"tool_choice": _langchain_tool_choice(choice)}
        runnable = chat_model.bind_tools(tools, **kwargs)
    return runnable.bind(**rest) if rest else runnable


@dataclass
class AgentHandoff:
    """One agent model call in flight: the agent's ``ModelRequest`` and how to run it."""

    model_request: Any
    call: Callable[[Any], Awaitable[Any]]
    messages: tuple[Message, ...]
    result: Any = None
    error: BaseException | None = None
    served: list[str] = field(default_factory=list)

    def _messages_for(self, request: Request) -> dict[str, Any]:
        if request.messages == self.messages:
            return {}
        converted = from_openai_messages(request.messages)
        if self.model_request.system_message is not None and converted and isinstance(converted[0], SystemMessage):
            return {"system_message": converted[0], "messages": converted[1:]}
        return {"system_message": None, "messages": converted}

    async def serve(self, request: Request, target: Target, chat_model: BaseChatModel) -> Response:
        """Run the agent's own model call (with ``chat_model`` and the chain's messages) for ``target``."""
        overrides = self._messages_for(request)
        if chat_model is not self.model_request.model:
            overrides["model"] = chat_model
        try:
            self.result = await self.call(self.model_request.override(**overrides) if overrides else self.model_request)
        except Exception as exc:  # kept so the agent sees its own exception, not a costmw wrapper
            self.error = exc
            raise
        self.served.append(target.name)
        message = next((m for m in self.result.result if isinstance(m, AIMessage)), None)
        if message is None:
            raise InvalidRequestError("the agent's model call returned no AI message")
        return target._finish(request, response_from_message(message))


class LangChainTarget(Target):
    """A LangChain chat model (ChatOpenAI, ChatAnthropic, any ``BaseChatModel``) as a costmw target.

    Its price comes from LiteLLM's price map by the model's name unless ``price`` is given.
    """

    kind = "langchain"

    def __init__(self, chat_model: BaseChatModel, *, name: str | None = None,
                 price: Price | tuple[float, float] | dict[str, float] | None = None,
                 capabilities: Capabilities | None = None) -> None:
        if not isinstance(chat_model, BaseChatModel):
            raise ConfigError(f"LangChainTarget needs a LangChain chat model, got {type(chat_model).__name__}")
        model = model_name_of(chat_model)
        cls = type(chat_model)
        caps = capabilities or Capabilities(tools=cls.bind_tools is not BaseChatModel.bind_tools,
                                            streaming=cls._stream is not BaseChatModel._stream)
        super().__init__(name or model, model=model, price=price, capabilities=caps)
        self.chat_model = chat_model

    async def acomplete(self, request: Request) -> Response:
        handoff: AgentHandoff | None = request.context.recall(HANDOFF)
        if handoff is not None:
            return await handoff.serve(request, self, self.chat_model)
        runnable = bound_model(self.chat_model, request.params)
        message = await runnable.ainvoke(from_openai_messages(request.messages))
        return self._finish(request, response_from_message(message))

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        if request.context.recall(HANDOFF) is not None:
            async for chunk in super().astream(request):
                yield chunk
            return
        runnable = bound_model(self.chat_model, request.params)
        full: AIMessageChunk | None = None
        async for part in runnable.astream(from_openai_messages(request.messages)):
            if not isinstance(part, AIMessageChunk):
                continue
            full = part if full is None else full + part
            deltas = [{"index": c.get("index") if c.get("index") is not None else i, "id": c.get("id"),
                       "type": "function", "function": {"name": c.get("name") or "", "arguments": c.get("args") or ""}}
                      for i, c in enumerate(part.tool_call_chunks)]
            if part.text or deltas:
                yield Chunk(text=part.text, tool_calls=deltas or None)
        message = message_chunk_to_message(full) if full is not None else AIMessage(content="")
        assert isinstance(message, AIMessage)
        yield Chunk(response=self._finish(request, response_from_message(message)))


class AgentTarget(LangChainTarget):
    """The model of an agent, added to the chain by :class:`CostmwMiddleware`.

    Inside the middleware it serves a call with whatever model the agent's ``ModelRequest``
    holds (another middleware may have swapped it); elsewhere it calls the model it was added with.
    """

    kind = "langchain-agent"

    async def acomplete(self, request: Request) -> Response:
        handoff: AgentHandoff | None = request.context.recall(HANDOFF)
        if handoff is None:
            return await super().acomplete(request)
        return await handoff.serve(request, self, handoff.model_request.model)
