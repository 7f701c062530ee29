"""Cache keys: what must be equal for a cached answer to serve a request.

The exact key covers the scope (tenant, user, namespace), the model, the target, route and LoRA
adapter the caller asked for, every message, the tools, the response format and every parameter
that can change an answer (sampling: temperature, top_p, seed, n, stop, max_tokens, ...). The semantic group key covers
the same things except the text of the last user turn, which is compared by meaning instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from costmw.plugin_api import Message, Options, Request, message_text

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
    """The per-request cache controls, taken from the request's (already validated) options."""

    no_cache: bool = False
    no_store: bool = False
    ttl: float | None = None
    namespace: str | None = None


def read_controls(options: Options) -> Controls:
    """``no_cache``, ``no_store``, ``ttl`` and ``namespace`` of a request's options."""
    return Controls(options.no_cache, options.no_store, options.ttl, options.namespace)


def scope_of(options: Options, *, per_user: bool, shared_namespaces: Collection[str]) -> str:
    """Who may see an entry: a declared shared namespace, else the request's tenant and namespace,
    and with ``per_user`` (or when the request names a user but no tenant) its user too.

    Tenant and user sit in named slots, so a user id never aliases a tenant of the same name:
    ``user="42"`` is the user 42 of no tenant, never tenant 42.
    """
    namespace = options.namespace
    if namespace is not None and namespace in shared_namespaces:
        return canonical_json(["shared", namespace])
    user = options.user if per_user or options.tenant is None else None
    return canonical_json(["private", {"tenant": options.tenant, "user": user}, namespace])


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
    wanted = {"target": request.options.target, "route": request.options.route, "adapter": request.options.adapter}
    context = canonical_json({"model": request.model, "params": params, "messages": messages, **wanted})
    return CacheKey(scope=scope, exact=_digest("exact", scope, context, text),
                    group=_digest("group", scope, context, space), text=text, semantic=semantic)
