"""Cache keys: what must be equal for a cached answer to serve a request.

The exact key covers the scope (tenant, user, namespace), the model, every message, the tools,
the response format and every parameter that can change an answer. The semantic group key covers
the same things except the text of the last user turn, which is compared by meaning instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from costmw.plugin_api import InvalidRequestError, Message, Request, message_text

__all__ = ["CacheKey", "Controls", "canonical_json", "is_deterministic", "read_controls", "request_key", "scope_of"]

# Parameters that change how a call is sent, never what the model answers; and secrets.
TRANSPORT_PARAMS = frozenset({
    "stream", "stream_options", "user", "timeout", "request_timeout", "api_key", "api_base", "base_url",
    "api_version", "organization", "extra_headers", "headers", "num_retries", "max_retries", "metadata",
    "caching", "cache", "mock_response", "drop_params", "fallbacks", "logger_fn", "custom_llm_provider",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "vertex_credentials",
})
_MESSAGE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id", "function_call")


def _plain(value: Any) -> Any:
    """JSON-able form of the odd values params may hold (pydantic classes and models, sets)."""
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema):
        return {"json_schema": schema(), "name": value.__name__}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def canonical_json(value: Any) -> str:
    """One spelling for equal values: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def is_deterministic(params: Mapping[str, Any]) -> bool:
    """Temperature 0 or unset and at most one choice: the same request gets the same answer."""
    temperature = params.get("temperature")
    n = params.get("n")
    try:
        cold = temperature is None or float(temperature) == 0.0
        single = n is None or int(n) <= 1
    except (TypeError, ValueError):
        return False
    return cold and single


@dataclass(frozen=True, slots=True)
class Controls:
    """The per-request cache controls read from ``request.metadata``."""

    no_cache: bool = False
    no_store: bool = False
    ttl: float | None = None
    namespace: str | None = None


def _flag(metadata: Mapping[str, Any], name: str) -> bool:
    value = metadata.get(name, False)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise InvalidRequestError(f"metadata[{name!r}] must be true or false, got {value!r}")


def read_controls(metadata: Mapping[str, Any]) -> Controls:
    """Validate and read ``no_cache``, ``no_store``, ``ttl`` and ``namespace``; bad values fail fast."""
    ttl = metadata.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise InvalidRequestError(f"metadata['ttl'] must be a number of seconds >= 0, got {ttl!r}")
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise InvalidRequestError(f"metadata['namespace'] must be a non-empty string, got {namespace!r}")
    return Controls(_flag(metadata, "no_cache"), _flag(metadata, "no_store"),
                    None if ttl is None else float(ttl), namespace)


def scope_of(metadata: Mapping[str, Any], namespace: str | None, *, per_user: bool,
             shared_namespaces: Collection[str]) -> str:
    """Who may see an entry: a declared shared namespace, else the tenant (and user) of the request."""
    if namespace is not None and namespace in shared_namespaces:
        return canonical_json(["shared", namespace])
    tenant = metadata.get("tenant")
    user = metadata.get("user")
    if tenant is None:
        tenant, user = user, None
    owner = [None if tenant is None else str(tenant)]
    if per_user:
        owner.append(None if user is None else str(user))
    return canonical_json(["private", owner, namespace])


@dataclass(frozen=True, slots=True)
class CacheKey:
    """``exact`` and ``group`` are digests; ``text`` is the last user turn compared by meaning."""

    scope: str
    exact: str
    group: str
    text: str
    semantic: bool


def _message(m: Message) -> dict[str, Any]:
    out = {k: m[k] for k in _MESSAGE_FIELDS if m.get(k) is not None}
    if isinstance(out.get("content"), str):
        out["content"] = out["content"].strip()
    return out


def _last_user(messages: tuple[Message, ...]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


def request_key(request: Request, scope: str, space: str) -> CacheKey:
    """The keys of ``request`` in ``scope``; ``space`` names the embedding space of the group."""
    params = {k: v for k, v in request.params.items() if k not in TRANSPORT_PARAMS and v is not None}
    messages = [_message(m) for m in request.messages]
    i = _last_user(request.messages)
    text = message_text(request.messages[i]).strip() if i >= 0 else ""
    semantic = bool(text)
    if i >= 0:
        content = request.messages[i].get("content")
        rest: Any = "" if isinstance(content, str) else [
            p for p in content or [] if not (isinstance(p, Mapping) and p.get("type") == "text")]
        messages[i] = {**messages[i], "content": {"last_user_turn": rest}}
    context = canonical_json({"model": request.model, "params": params, "messages": messages})
    return CacheKey(scope=scope, exact=_digest("exact", scope, context, text),
                    group=_digest("group", scope, context, space), text=text, semantic=semantic)
