"""CostmwCache: LangChain's ``set_llm_cache`` backed by costmw's SemanticCache.

LangChain keys its cache on ``(prompt, llm_string)``: the serialised prompt messages and a string
that describes the model and its call parameters. Each pair becomes a costmw request whose
messages are the prompt's messages and whose model is a digest of ``llm_string``, so answers are
only shared between identical model configurations, while the last user turn is matched by
meaning. The answer is kept in LangChain's own JSON serialisation of the generations (never
pickle), in the cache namespace ``namespace`` so chain entries and LangChain entries never mix.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from langchain_core._api import suppress_langchain_beta_warning
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps
from langchain_core.load import loads as _beta_loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

from ..._errors import ConfigError, CostmwError
from ..._types import Request, Response
from ._messages import to_openai_messages

__all__ = ["CostmwCache"]

log = logging.getLogger("costmw.langchain")

_ANSWER_TYPES: list[Any] = [Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk, AIMessage,
                            AIMessageChunk, HumanMessage, SystemMessage, ToolMessage, ChatMessage, FunctionMessage]


def _loads(text: str, **kwargs: Any) -> Any:
    """LangChain's ``loads`` without its "is in beta" warning, which costmw's callers cannot act on."""
    with suppress_langchain_beta_warning():
        return _beta_loads(text, **kwargs)


def _prompt_messages(prompt: str) -> list[dict[str, Any]]:
    """The prompt as OpenAI-format messages: a chat model's serialised messages, or an LLM's text."""
    if prompt.lstrip().startswith("["):
        try:
            parsed = _loads(prompt, allowed_objects="messages")
        except Exception:
            parsed = None
        if isinstance(parsed, list) and parsed and all(isinstance(m, BaseMessage) for m in parsed):
            try:
                return to_openai_messages(parsed)
            except CostmwError:
                pass
    return [{"role": "user", "content": prompt}]


class CostmwCache(BaseCache):
    """A LangChain cache (``set_llm_cache(CostmwCache(...))``) that also answers reworded prompts.

    Pass a :class:`costmw.plugins.SemanticCache`, or the options to build one (``store``,
    ``embedder``, ``threshold``, ...). ``clear()`` empties the whole store of that cache.
    Store or embedder failures never fail a call: a failed lookup is a miss.
    """

    def __init__(self, semantic_cache: Any = None, *, namespace: str = "langchain", **options: Any) -> None:
        from ...plugins import SemanticCache

        if semantic_cache is not None and options:
            raise ConfigError("pass either a SemanticCache or the options to build one, not both")
        if semantic_cache is None:
            semantic_cache = SemanticCache(**options)
        if not isinstance(semantic_cache, SemanticCache):
            raise ConfigError(f"CostmwCache needs a costmw SemanticCache, got {type(semantic_cache).__name__}")
        if not namespace or not isinstance(namespace, str):
            raise ConfigError(f"namespace must be a non-empty string, got {namespace!r}")
        self.semantic_cache = semantic_cache
        self.namespace = namespace

    def _request(self, prompt: str, llm_string: str) -> Request:
        digest = hashlib.sha256(llm_string.encode("utf-8")).hexdigest()[:24]
        return Request.create(_prompt_messages(prompt), f"langchain:{digest}",
                              options={"namespace": self.namespace})

    def _answer(self, response: Response | None) -> list[Generation] | None:
        if response is None:
            return None
        try:
            generations = _loads(response.text, allowed_objects=_ANSWER_TYPES)
        except Exception as exc:
            log.warning("costmw LangChain cache: an entry could not be read back (%s); treated as a miss", exc)
            return None
        if not isinstance(generations, list) or not all(isinstance(g, Generation) for g in generations):
            return None
        return generations

    @staticmethod
    def _response(return_val: RETURN_VAL_TYPE) -> Response:
        return Response(text=dumps(list(return_val)), finish_reason="stop", model="langchain")

    # -- BaseCache ---------------------------------------------------------------------------
    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self._answer(self.semantic_cache.lookup(self._request(prompt, llm_string)))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self.semantic_cache.store(self._request(prompt, llm_string), self._response(return_val))

    def clear(self, **kwargs: Any) -> None:
        self.semantic_cache.clear()

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self._answer(await self.semantic_cache.alookup(self._request(prompt, llm_string)))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        await self.semantic_cache.astore(self._request(prompt, llm_string), self._response(return_val))

    async def aclear(self, **kwargs: Any) -> None:
        await self.semantic_cache.aclear()

    def __repr__(self) -> str:
        return f"CostmwCache({self.semantic_cache!r}, namespace={self.namespace!r})"
