"""Every malformed request and config fails fast with a costmw error that names the field.

One table for requests (sent through a chain with every built-in plugin, so nothing surfaces from
inside a plugin) and one for configs. A bad request never reaches the target.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import Batcher, ModelRouter, PromptMinifier, SemanticCache

from costmw import Chain, ConfigError, CostmwError, InvalidRequestError
from costmw.embeddings import HashingEmbedder

OK = [{"role": "user", "content": "What is the capital of France?"}]


def _user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


# (case id, keyword arguments of Chain.complete, text the error must hold: the field)
REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("nan temperature", {"temperature": float("nan")}, "params.temperature"),
    ("inf temperature", {"temperature": float("inf")}, "params.temperature"),
    ("negative temperature", {"temperature": -0.5}, "params.temperature"),
    ("text temperature", {"temperature": "hot"}, "params.temperature"),
    ("nan top_p", {"top_p": float("nan")}, "params.top_p"),
    ("negative max_tokens", {"max_tokens": -1}, "params.max_tokens"),
    ("zero max_tokens", {"max_tokens": 0}, "params.max_tokens"),
    ("absurd max_tokens", {"max_tokens": 10**30}, "params.max_tokens"),
    ("max_tokens in words", {"max_tokens": "ten"}, "params.max_tokens"),
    ("float max_tokens", {"max_tokens": 10.5}, "params.max_tokens"),
    ("bool max_tokens", {"max_tokens": True}, "params.max_tokens"),
    ("negative n", {"n": -3}, "params.n"),
    ("zero n", {"n": 0}, "params.n"),
    ("tools a string", {"tools": "abc"}, "params.tools"),
    ("tools not dicts", {"tools": ["abc"]}, "params.tools[0]"),
    ("tool without a name", {"tools": [{"type": "function", "function": {}}]}, "params.tools[0].function"),
    ("stop not strings", {"stop": [1, 2]}, "params.stop"),
    ("image in a system message", {"messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}, *OK]}, "messages[0].content[0]"),
    ("image in a tool result", {"messages": [*OK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "messages[2].content[0]"),
    ("unknown part type", {"messages": _user([{"type": "video", "video": "x"}])}, "messages[0].content[0]"),
    ("text part with a number", {"messages": _user([{"type": "text", "text": 5}])}, "messages[0].content[0].text"),
    ("a bare number as a part", {"messages": _user([5])}, "messages[0].content[0]"),
    ("image part without its url", {"messages": _user([{"type": "image_url"}])}, "messages[0].content[0]"),
    ("lone surrogate in a prompt", {"messages": _user("caf\ud800")}, "messages[0].content"),
    ("lone surrogate in a text part", {"messages": _user([{"type": "text", "text": "\udc80"}])},
     "messages[0].content[0].text"),
    ("unknown target", {"options": {"target": "nope"}}, "options.target names 'nope'"),
    ("lone surrogate in the tenant", {"options": {"tenant": "acme\ud800"}}, "options.tenant"),
    ("lone surrogate in the user", {"options": {"user": "mallory\ud800"}}, "options.user"),
    ("numeric tenant", {"options": {"tenant": 42}}, "options.tenant"),
    ("empty user", {"options": {"user": ""}}, "options.user"),
    ("options not a dict", {"options": "x"}, "options must be a dict"),
    ("unknown option", {"options": {"nocache": True}}, "did you mean 'no_cache'"),
    ("bad option value", {"options": {"no_cache": "yes"}}, "options.no_cache"),
    ("misspelt control in metadata", {"metadata": {"nocache": True}}, "metadata key 'nocache'"),
    ("metadata not a dict", {"metadata": ["tenant"]}, "metadata must be a dict"),
    ("messages a string", {"messages": "hello"}, "messages must be a list"),
    ("no messages", {"messages": []}, "messages is empty"),
    ("unknown role", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
]


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[Chain, MockTarget]]:
    target = MockTarget(lambda r: "Paris", name="mock", model="gpt-4o-mini")
    chain = Chain([SemanticCache(store="memory", embedder=HashingEmbedder(256), verifier=False), PromptMinifier(),
                   ModelRouter([target]), Batcher()], [target])
    yield chain, target
    chain.close()


@pytest.mark.parametrize(("kwargs", "field"), [pytest.param(k, f, id=i) for i, k, f in REQUESTS])
def test_a_malformed_request_fails_fast_naming_the_field(guarded: tuple[Chain, MockTarget],
                                                         kwargs: dict[str, Any], field: str) -> None:
    chain, target = guarded
    calls, rows = len(target.calls), len(chain.ledger.rows())
    kwargs = dict(kwargs)
    messages = kwargs.pop("messages", OK)
    with pytest.raises(InvalidRequestError) as caught:
        chain.complete(messages, model="gpt-4o-mini", **kwargs)
    assert field in str(caught.value)
    assert len(target.calls) == calls and len(chain.ledger.rows()) == rows  # nothing was sent


def test_well_formed_requests_of_the_same_shapes_pass(guarded: tuple[Chain, MockTarget]) -> None:
    chain, _target = guarded
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    for kwargs in ({"temperature": 0, "top_p": 1, "max_tokens": 16, "n": 1, "stop": ["\n"]},
                   {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
                   {"options": {"tenant": unicodedata.normalize("NFD", "Zo\u00eb"), "user": "42"}},
                   {"max_tokens": None}):
        assert chain.complete(OK, model="gpt-4o-mini", **kwargs).text == "Paris"
    assert chain.complete(_user([{"type": "text", "text": "What is this?"}, image]), model="gpt-4o-mini").text


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


# (case id, a function of a temporary folder giving the config, text the error must hold)
CONFIGS: list[tuple[str, Any, str]] = [
    ("plugin options a string", lambda tmp: {"plugins": [{"name": "semantic_cache", "options": "x"}]},
     "plugins[0]"),
    ("plugin options a string, short form", lambda tmp: {"plugins": [{"semantic_cache": "x"}]}, "plugins[0]"),
    ("non-UTF-8 file", lambda tmp: _write(tmp, "costmw.yaml", b"default_model: caf\xe9\n"), "UTF-8"),
    ("ledger path is a directory", lambda tmp: {"ledger": {"path": str(tmp)}}, "ledger.path"),
    ("ledger string is a directory", lambda tmp: {"ledger": str(tmp)}, "ledger"),
    ("callable from the standard library", lambda tmp: {"targets": [{"kind": "callable", "fn": "os:system"}]},
     "targets[0].fn"),
    ("callable from builtins", lambda tmp: {"targets": [{"kind": "callable", "fn": "builtins:eval"}]},
     "targets[0].fn"),
    ("callable from a stdlib submodule", lambda tmp: {"targets": [{"kind": "callable", "fn": "os.path:join"}]},
     "targets[0].fn"),
    ("callable that does not exist", lambda tmp: {"targets": [{"kind": "callable", "fn": "nosuchmodule:f"}]},
     "targets[0].fn"),
    ("unknown plugin option", lambda tmp: {"plugins": [{"semantic_cache": {"threshhold": 0.9}}]}, "threshhold"),
    ("unknown top-level key", lambda tmp: {"plugin": []}, "plugin"),
]


@pytest.mark.parametrize(("make", "field"), [pytest.param(m, f, id=i) for i, m, f in CONFIGS])
def test_a_malformed_config_is_a_config_error_naming_the_field(tmp_path: Path, make: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Chain.from_config(make(tmp_path))
    assert field in str(caught.value)
    assert isinstance(caught.value, CostmwError)


def echo_last(messages: list[dict[str, Any]], **params: Any) -> str:
    """A function of the application's own code, which a config may name."""
    return f"echo: {messages[-1]['content']}"


def test_a_config_may_name_a_function_of_the_apps_own_code(tmp_path: Path) -> None:
    module = echo_last.__module__
    chain = Chain.from_config({"targets": [{"kind": "callable", "name": "echo", "fn": f"{module}:echo_last"}],
                               "ledger": {"path": str(tmp_path / "ledger.db")}})
    try:
        assert chain.complete(OK, model="echo").text == "echo: What is the capital of France?"
    finally:
        chain.close()
    with pytest.raises(ConfigError, match="private name"):
        Chain.from_config({"targets": [{"kind": "callable", "fn": f"{module}:_user"}]})
