"""Cache keys cover everything that changes an answer, and nothing that does not."""

from __future__ import annotations

from typing import Any

import pytest
from costmw.plugins.cache._keys import is_deterministic, read_controls, request_key, scope_of

from costmw import InvalidRequestError, Request

BASE: dict[str, Any] = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
    "model": "gpt-4o-mini",
}


def key(scope: str = "s", **changes: Any):  # type: ignore[no-untyped-def]
    spec = {**BASE, **changes}
    request = Request.create(spec["messages"], spec["model"], params=spec.get("params"))
    return request_key(request, scope, "space")


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"messages": [{"role": "system", "content": "Be verbose."}, BASE["messages"][1]]},
    {"params": {"temperature": 0.0, "max_tokens": 5}},
    {"params": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}},
    {"params": {"response_format": {"type": "json_object"}}},
    {"params": {"seed": 7}},
    {"params": {"stop": ["\n"]}},
])
def test_what_changes_an_answer_changes_both_keys(change: dict[str, Any]) -> None:
    a, b = key(), key(**change)
    assert a.exact != b.exact
    assert a.group != b.group


def test_last_user_turn_changes_exact_key_but_not_group() -> None:
    a = key()
    b = key(messages=[BASE["messages"][0], {"role": "user", "content": "Which city is France's capital?"}])
    assert a.exact != b.exact
    assert a.group == b.group
    assert b.text == "Which city is France's capital?"


def test_transport_parameters_and_secrets_do_not_change_keys() -> None:
    a = key()
    b = key(params={"api_key": "sk-secret-value-1234567890", "timeout": 3, "user": "u1", "num_retries": 2})
    assert (a.exact, a.group) == (b.exact, b.group)


def test_param_order_and_surrounding_whitespace_do_not_matter() -> None:
    a = key(params={"max_tokens": 5, "stop": ["x"]})
    b = key(params={"stop": ["x"], "max_tokens": 5},
            messages=[BASE["messages"][0], {"role": "user", "content": "  Capital of France?\n"}])
    assert a.exact == b.exact


def test_scope_and_embedding_space_separate_keys() -> None:
    request = Request.create(BASE["messages"], BASE["model"])
    a = request_key(request, "tenant-a", "space")
    b = request_key(request, "tenant-b", "space")
    c = request_key(request, "tenant-a", "other-space")
    assert a.exact != b.exact and a.group != b.group
    assert a.group != c.group


def test_images_in_the_last_turn_keep_semantic_matches_apart() -> None:
    parts = [{"type": "text", "text": "What is in this picture?"},
             {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    other = [parts[0], {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}}]
    a = key(messages=[{"role": "user", "content": parts}])
    b = key(messages=[{"role": "user", "content": other}])
    assert a.text == b.text == "What is in this picture?"
    assert a.group != b.group


@pytest.mark.parametrize(("params", "expected"), [
    ({}, True), ({"temperature": 0}, True), ({"temperature": 0.0, "n": 1}, True),
    ({"temperature": 0.7}, False), ({"n": 3}, False), ({"temperature": None}, True), ({"temperature": "hot"}, False),
])
def test_only_deterministic_requests_count_as_deterministic(params: dict[str, Any], expected: bool) -> None:
    assert is_deterministic(params) is expected


def test_controls_are_read_and_bad_ones_fail_fast() -> None:
    c = read_controls({"no_store": True, "ttl": 60, "namespace": "faq"})
    assert (c.no_cache, c.no_store, c.ttl, c.namespace) == (False, True, 60.0, "faq")
    assert read_controls({"ttl": 0}).ttl == 0.0
    for bad in ({"ttl": -1}, {"ttl": "soon"}, {"no_cache": "yes"}, {"namespace": ""}, {"namespace": 3}):
        with pytest.raises(InvalidRequestError):
            read_controls(bad)


def test_scopes_are_private_unless_the_namespace_is_shared() -> None:
    shared = {"faq"}
    a = scope_of({"tenant": "a"}, None, per_user=False, shared_namespaces=shared)
    b = scope_of({"tenant": "b"}, None, per_user=False, shared_namespaces=shared)
    assert a != b
    assert scope_of({"user": "a"}, None, per_user=False, shared_namespaces=shared) == a
    assert scope_of({"tenant": "a", "user": "x"}, None, per_user=True, shared_namespaces=shared) != \
        scope_of({"tenant": "a", "user": "y"}, None, per_user=True, shared_namespaces=shared)
    private_ns = scope_of({"tenant": "a"}, "notes", per_user=False, shared_namespaces=shared)
    assert private_ns not in (a, scope_of({"tenant": "b"}, "notes", per_user=False, shared_namespaces=shared))
    assert scope_of({"tenant": "a"}, "faq", per_user=False, shared_namespaces=shared) == \
        scope_of({"tenant": "b"}, "faq", per_user=False, shared_namespaces=shared)
