"""A cache entry and its JSON form (entries are stored as JSON everywhere, never pickled)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from costmw.plugin_api import Response, Usage

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Entry", "response_from_dict", "response_to_dict", "vector_from_bytes", "vector_to_bytes"]


def response_to_dict(response: Response) -> dict[str, Any]:
    """The parts of a response worth replaying: the answer, its usage and what it cost then."""
    return {
        "text": response.text,
        "tool_calls": response.tool_calls,
        "finish_reason": response.finish_reason,
        "model": response.model,
        "usage": [response.usage.prompt_tokens, response.usage.completion_tokens],
        "cost_usd": response.cost_usd,
        "served_by": response.served_by,
    }


def response_from_dict(data: dict[str, Any]) -> Response:
    usage = data.get("usage") or [0, 0]
    return Response(
        text=str(data.get("text") or ""),
        tool_calls=data.get("tool_calls"),
        finish_reason=data.get("finish_reason"),
        model=str(data.get("model") or ""),
        usage=Usage(int(usage[0]), int(usage[1])),
    )


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """Little-endian float32: a plain array of numbers, never an object format."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes | None) -> np.ndarray | None:
    import numpy as np

    if not data:
        return None
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


@dataclass(slots=True)
class Entry:
    """One cached answer: ``key`` is its exact key (also its id), ``group`` its semantic group,
    ``text`` the last user turn it answered, ``vector`` the embedding of its normalised form
    (None: exact only), ``derived`` what was read from ``text`` when it was stored (JSON data
    with the ``version`` of the code and data that read it, or its JSON text as a store read it,
    decoded only when needed; the cache reads ``text`` again when the version differs)."""

    key: str
    group: str
    scope: str
    text: str
    response: dict[str, Any]
    vector: np.ndarray | None = None
    created: float = field(default_factory=time.time)
    expires: float | None = None
    hits: int = 0
    derived: dict[str, Any] | str | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    def derived_data(self) -> dict[str, Any] | None:
        """``derived`` as data (None when absent or malformed)."""
        if isinstance(self.derived, str):
            try:
                self.derived = json.loads(self.derived)
            except ValueError:
                self.derived = None
        return self.derived if isinstance(self.derived, dict) else None

    def to_json(self, *, with_vector: bool = False) -> str:
        data: dict[str, Any] = {
            "v": 1, "key": self.key, "group": self.group, "scope": self.scope, "text": self.text,
            "response": self.response, "created": self.created, "expires": self.expires, "hits": self.hits,
        }
        derived = self.derived_data()
        if derived is not None:
            data["derived"] = derived
        if with_vector and self.vector is not None:
            data["vector"] = base64.b64encode(vector_to_bytes(self.vector)).decode("ascii")
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, vector: np.ndarray | None = None) -> Entry:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a costmw cache entry")
        if vector is None and data.get("vector"):
            vector = vector_from_bytes(base64.b64decode(data["vector"]))
        return cls(key=str(data["key"]), group=str(data["group"]), scope=str(data["scope"]),
                   text=str(data["text"]), response=dict(data["response"]), vector=vector,
                   created=float(data["created"]), expires=None if data.get("expires") is None
                   else float(data["expires"]), hits=int(data.get("hits", 0)),
                   derived=data["derived"] if isinstance(data.get("derived"), dict) else None)
