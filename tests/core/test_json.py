"""costmw._json: orjson's speed with the standard library's results, with and without orjson."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

import costmw._json

SAME = [
    b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caf\\u00e9 \xc3\xa9"}]}',
    b'{"a": 123456789012345678901234567890, "b": -9223372036854775809}',  # past 64 bits: exact ints
    b'{"seed": 18446744073709551615, "t": 0.1, "x": [1e-7, 2.5e300]}',
    b'{"a": NaN, "b": Infinity, "c": 1e400}',  # not JSON, but the standard library reads them
    b'\xef\xbb\xbf{"bom": true}',
    b'{"lone": "\\ud800"}',
    b'{"k": 1, "k": 2}',
    '{"text": "str input \u2603"}',
    b"[]",
]
BAD = [b"", b"{", b'{"a": }', b"\xff\xfe", b"nul", b'{"a": 1} trailing']


@pytest.fixture(params=["orjson", "stdlib"])
def jsonmod(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "orjson", None)  # an import of orjson fails
    else:
        pytest.importorskip("orjson")
    yield importlib.reload(costmw._json)
    monkeypatch.undo()
    importlib.reload(costmw._json)


@pytest.mark.parametrize("text", SAME)
def test_loads_reads_what_the_standard_library_reads(jsonmod: ModuleType, text: bytes | str) -> None:
    got, want = jsonmod.loads(text), json.loads(text)
    assert repr(got) == repr(want)  # repr: nan != nan, and 1 == 1.0 would hide an int read as a float
    assert [type(v) for v in (got.values() if isinstance(got, dict) else got)] == \
        [type(v) for v in (want.values() if isinstance(want, dict) else want)]


@pytest.mark.parametrize("text", BAD)
def test_bad_json_raises_the_standard_librarys_error(jsonmod: ModuleType, text: bytes) -> None:
    with pytest.raises(ValueError) as got:
        jsonmod.loads(text)
    with pytest.raises(ValueError) as want:
        json.loads(text)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


@pytest.mark.parametrize("obj", [
    {"model": "m", "messages": [{"role": "user", "content": "h\u00e9llo \u2603"}], "n": 1, "t": 0.5},
    {"big": 2**70, "small": -(2**65)},
    {1: "int key", "nested": {"list": [1, 2.5, None, True]}},
    [],
])
def test_dumps_writes_compact_json_that_reads_back_the_same(jsonmod: ModuleType, obj: object) -> None:
    out = jsonmod.dumps_bytes(obj)
    assert isinstance(out, bytes) and b", " not in out and b": " not in out
    assert json.loads(out) == json.loads(json.dumps(obj))


def test_dumps_refuses_what_json_refuses(jsonmod: ModuleType) -> None:
    with pytest.raises(TypeError):
        jsonmod.dumps_bytes({"x": object()})
