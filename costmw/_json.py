"""JSON on the gateway's hot path: orjson when it is installed (``pip install 'costmw[fast]'``),
the standard library otherwise, with the same results either way.

``loads`` falls back to :func:`json.loads` for anything orjson refuses (a byte-order mark, NaN,
a lone surrogate, a number out of range) and for text with a run of 19 or more digits (orjson
reads an integer past 64 bits as a float; the standard library keeps it exact), so what parses,
to what, and the error a bad body gets, are the standard library's. ``dumps_bytes`` writes
compact UTF-8 JSON; an object orjson cannot write (an integer past 64 bits, a key that is not a
string) is written by :mod:`json`; orjson writes NaN and infinities as ``null`` (the standard
library writes ``NaN``, which is not JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dumps_bytes", "loads"]

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


if _orjson is not None:
    _decode_error = _orjson.JSONDecodeError
    _orjson_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps

    _long_digits_b = re.compile(rb"\d{19}")
    _long_digits_s = re.compile(r"\d{19}")

    def loads(data: bytes | str) -> Any:
        """Parse JSON text (bytes or str)."""
        long_digits = (_long_digits_b.search(data) if isinstance(data, bytes)
                       else _long_digits_s.search(data))
        if long_digits is not None:
            return json.loads(data)
        try:
            return _orjson_loads(data)
        except _decode_error:
            return json.loads(data)

    def dumps_bytes(obj: Any) -> bytes:
        """``obj`` as compact UTF-8 JSON."""
        try:
            out: bytes = _orjson_dumps(obj)
            return out
        except TypeError:
            return _std_dumps(obj)
else:  # pragma: no cover
    def loads(data: bytes | str) -> Any:
        """Parse JSON text (bytes or str)."""
        return json.loads(data)

    dumps_bytes = _std_dumps
