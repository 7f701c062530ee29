"""Core value types: Request, Response, Chunk, Usage, Saving and the per-request context."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import InvalidRequestError
from ._facts import Facts
from ._options import Options, split_metadata
from ._validate import check_content, check_params

if TYPE_CHECKING:
    from ._target import Target

__all__ = [
    "Chunk",
    "Message",
    "Request",
    "RequestContext",
    "Response",
    "Saving",
    "Usage",
    "validate_messages",
]

Message = dict[str, Any]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

def _new_id() -> str:
    """A request id unique across threads, processes and forked workers: the process id read at
    call time (never at import), the time, and 64 random bits from the OS."""
    return f"req-{os.getpid():x}-{int(time.time() * 1000):x}-{os.urandom(8).hex()}"


def validate_messages(messages: Any) -> tuple[Message, ...]:
    """Check that ``messages`` is a non-empty list of OpenAI-format chat messages.

    Raises InvalidRequestError naming the first bad message and what is wrong with it.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise InvalidRequestError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    out = tuple(messages)
    if not out:
        raise InvalidRequestError("messages is empty: send at least one message")
    for i, m in enumerate(out):
        if not isinstance(m, Mapping):
            raise InvalidRequestError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise InvalidRequestError(
                f"messages[{i}] has unknown role {role!r}; expected one of {sorted(ROLES)}"
            )
        content = m.get("content")
        if content is None and not m.get("tool_calls") and role != "assistant":
            raise InvalidRequestError(f"messages[{i}] ({role}) has no content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequestError(
                f"messages[{i}].content must be a string or a list of content parts, "
                f"got {type(content).__name__}"
            )
        check_content(f"messages[{i}].content", role, content)
        if role == "tool" and not m.get("tool_call_id"):
            raise InvalidRequestError(f"messages[{i}] is a tool message without tool_call_id")
    return out


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message, joining the text parts of multimodal content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return ""


class RequestContext:
    """Scratch space shared by every copy of one request as it moves through the chain.

    Work that several plugins need (the embedding of the last user turn, the token count)
    is done once and kept here, and plugins leave notes here for the ledger (routing decision,
    batch metrics) and report what they did in ``facts`` (calls made, tokens removed, calls
    avoided), which the chain prices once when the call ends. It is not part of the request's identity.
    """

    __slots__ = ("_memo", "attempts", "chain", "facts", "info", "target")

    def __init__(self) -> None:
        self.target: Target | None = None
        self.facts = Facts()
        self.info: dict[str, Any] = {}
        self._memo: dict[Any, Any] = {}
        self.chain: Any = None
        self.attempts: list[Response] = []

    def memo(self, key: Any, compute: Any) -> Any:
        """Return the value cached under ``key``, computing it with ``compute()`` the first time."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def remember(self, key: Any, value: Any) -> None:
        self._memo[key] = value

    def recall(self, key: Any, default: Any = None) -> Any:
        return self._memo.get(key, default)


@dataclass(frozen=True, slots=True)
class Request:
    """One LLM call. Immutable: plugins derive changed copies with :meth:`replace`.

    ``params`` holds the model parameters (temperature, max_tokens, tools, response_format, ...);
    ``options`` holds costmw's own controls (tenant, user, tags, target, cache controls, ...;
    see :class:`costmw.Options`), never sent to a model; ``metadata`` holds the caller's
    free-form labels, which go to the ledger.
    """

    messages: tuple[Message, ...]
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = False
    id: str = field(default_factory=_new_id)
    context: RequestContext = field(default_factory=RequestContext, compare=False, repr=False)
    options: Options = field(default_factory=Options)

    @classmethod
    def create(
        cls,
        messages: Any,
        model: str | None,
        *,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        options: Options | Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> Request:
        """Validate user input and build a request; raises InvalidRequestError naming the bad field.

        Controls found in ``metadata`` under an option's name (the older spelling) are moved
        into the options with a DeprecationWarning; ``options`` wins where both set a field.
        """
        if not model or not isinstance(model, str):
            raise InvalidRequestError("model is required: pass model='<name of the model you would call>'")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidRequestError(f"metadata must be a dict, got {type(metadata).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidRequestError(f"params must be a dict, got {type(params).__name__}")
        check_params(params or {})
        labels, moved = split_metadata(metadata or {})
        opts = Options.coerce(options)
        if moved:
            opts = Options.coerce(moved, where="metadata").merge(opts)
        return cls(
            messages=validate_messages(messages),
            model=model,
            params=dict(params or {}),
            metadata=labels,
            stream=stream,
            options=opts,
        )

    def replace(self, **changes: Any) -> Request:
        """A copy with ``changes`` applied; the id and context are kept."""
        if "messages" in changes:
            changes["messages"] = tuple(changes["messages"])
        return dataclasses.replace(self, **changes)

    @property
    def tenant(self) -> str | None:
        """The tenant the call is for (``options.tenant``); a user id never stands in for it."""
        return self.options.tenant

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return message_text(m)
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "messages": list(self.messages),
            "params": dict(self.params),
            "metadata": dict(self.metadata),
            "options": self.options.to_dict(),
            "stream": self.stream,
        }


@dataclass(slots=True)
class Usage:
    """Tokens of one call. ``prompt_tokens`` counts every input token, including the
    ``cached_tokens`` the provider read from its prompt cache and the ``cache_write_tokens`` it
    wrote to it (both are priced apart, see :meth:`costmw.Price.cost`). ``estimated``: counted by
    costmw because the model did not report them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Saving:
    """Money one plugin saved on one call, with a short note of how."""

    plugin: str
    usd: float
    detail: str = ""
    tokens: int = 0


@dataclass(slots=True)
class Response:
    """The answer to a request, with what it cost and who served it.

    ``cost_usd`` is every call made for the request; ``baseline_cost_usd`` the request as sent,
    priced at the requested model; ``savings`` explain the difference line by line.
    """

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = "stop"
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    served_by: str = ""
    latency_s: float = 0.0
    savings: list[Saving] = field(default_factory=list)
    request_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    #: token log-probabilities when the request asked for them (``logprobs=True``), in OpenAI's
    #: format: one ``{"token", "logprob", "bytes", "top_logprobs": [...]}`` per answer token
    logprobs: list[dict[str, Any]] | None = field(default=None, repr=False)
    raw: Any = field(default=None, repr=False)

    @property
    def saved_usd(self) -> float:
        """Baseline less cost: the sum of ``savings`` (negative when costmw cost more)."""
        return self.baseline_cost_usd - self.cost_usd

    def copy(self, **changes: Any) -> Response:
        return dataclasses.replace(self, **changes)

    def message(self) -> Message:
        """The answer as an assistant message, ready to append to a conversation."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


@dataclass(slots=True)
class Chunk:
    """One streamed piece of an answer. The last chunk of a stream carries the full ``response``."""

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    response: Response | None = None

    @property
    def done(self) -> bool:
        return self.response is not None


def join_chunks(chunks: Sequence[Chunk]) -> tuple[str, list[dict[str, Any]] | None]:
    """Assemble streamed text and tool-call deltas (OpenAI delta format) into whole values."""
    text = "".join(c.text for c in chunks)
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        for d in c.tool_calls or ():
            idx = int(d.get("index", len(calls)))
            cur = calls.setdefault(idx, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if d.get("id"):
                cur["id"] = d["id"]
            fn = d.get("function") or {}
            if fn.get("name"):
                cur["function"]["name"] += fn["name"]
            if fn.get("arguments"):
                cur["function"]["arguments"] += fn["arguments"]
    return text, ([calls[i] for i in sorted(calls)] or None)
