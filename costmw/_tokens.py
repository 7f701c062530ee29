"""Token counting shared by the minifier, the router and the ledger.

Uses tiktoken with the encodings LiteLLM ships inside its package (o200k for current OpenAI
models, cl100k otherwise), so counting never downloads anything. Without tiktoken it falls back
to an estimate of one token per four characters.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from ._types import message_text

__all__ = ["acount_message_tokens", "count_message_tokens", "count_tokens", "get_encoding", "load_tokenizer",
           "long_text"]

#: Characters past which counting tokens takes long enough (milliseconds and up) to leave the loop.
LONG_TEXT = 50_000

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_lock = threading.Lock()


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: Any = ...) -> list[int]: ...


def _bundled_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "litellm_core_utils" / "tokenizers"
        if path.is_dir():
            return path
    return None


@lru_cache(maxsize=4)
def get_encoding(name: str = "o200k_base") -> _Encoding | None:
    """A tiktoken encoding found on disk, or None (never a download)."""
    if importlib.util.find_spec("tiktoken") is None:
        return None
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    folder = Path(cache) if cache else _bundled_dir()
    if folder is None:
        return None
    key = hashlib.sha1(_URL.format(name).encode()).hexdigest()
    if not (folder / key).exists():
        return None
    with _lock:
        old = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
        try:
            import tiktoken

            return tiktoken.get_encoding(name)  # type: ignore[no-any-return]
        except Exception:
            return None
        finally:
            if old is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = old


def _encoding_for(model: str | None) -> _Encoding | None:
    m = (model or "").lower()
    if "gpt-3.5" in m or "gpt-4-" in m or m.endswith("gpt-4") or "text-embedding" in m:
        return get_encoding("cl100k_base") or get_encoding("o200k_base")
    return get_encoding("o200k_base") or get_encoding("cl100k_base")


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` for ``model``'s tokenizer (an estimate when no tokenizer is at hand)."""
    if not text:
        return 0
    enc = _encoding_for(model)
    if enc is None:
        return max(1, (len(text) + 3) // 4)
    if len(text) <= LONG_TEXT:
        return len(enc.encode(text, disallowed_special=()))
    return sum(len(enc.encode(piece, disallowed_special=())) for piece in _pieces(text))


def _pieces(text: str, size: int = LONG_TEXT) -> Iterable[str]:
    """``text`` in pieces of about ``size`` characters, cut before whitespace (where a token starts),
    so a long text is counted in steps that let other threads run in between."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind(" ", start + size // 2, end), text.rfind("\n", start + size // 2, end))
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def count_message_tokens(messages: Iterable[Mapping[str, Any]], model: str | None = None,
                         tools: Any = None) -> int:
    """Prompt tokens of a chat request, with OpenAI's per-message overhead (3 + 1 for the name)."""
    total = 3
    for m in messages:
        total += 3 + count_tokens(message_text(m), model)
        if m.get("name"):
            total += 1
        if m.get("tool_calls"):
            total += count_tokens(str(m["tool_calls"]), model)
    if tools:
        total += count_tokens(str(tools), model)
    return total


def long_text(messages: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the messages' text is long enough that per-text work belongs in a worker thread."""
    size = 0
    for m in messages:
        content = m.get("content")
        size += len(content) if isinstance(content, str) else len(message_text(m))
        if size > LONG_TEXT:
            return True
    return False


def tokenizer_loaded() -> bool:
    """Whether a tokenizer is loaded (the first load takes long enough to stall an event loop)."""
    return bool(get_encoding.cache_info().currsize)


async def load_tokenizer(model: str | None = None) -> None:
    """Load ``model``'s tokenizer in a worker thread if it is not loaded yet (the first load reads
    and builds its tables, which takes long enough to stall an event loop)."""
    if not tokenizer_loaded():
        import asyncio

        await asyncio.to_thread(_encoding_for, model)


async def acount_message_tokens(messages: Iterable[Mapping[str, Any]], model: str | None = None,
                                tools: Any = None) -> int:
    """:func:`count_message_tokens`, in a worker thread when the text is long (never stalls the loop)."""
    messages = list(messages)
    if not long_text(messages) and tokenizer_loaded():
        return count_message_tokens(messages, model, tools)
    import asyncio

    return await asyncio.to_thread(count_message_tokens, messages, model, tools)
