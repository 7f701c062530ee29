"""Cache keys cover everything that changes an answer, and nothing that does not."""

from __future__ import annotations

from typing import Any

import pytest
from costmw.plugins.cache._keys import is_deterministic, read_controls, request_key, scope_of

from costmw import InvalidRequestError, Options, Request

BASE: dict[str, Any] = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
    "model": "gpt-4o-mini",
}


def key(scope: str = "s", **changes: Any):  # type: ignore[no-untyped-def]
    spec = {**BASE, **changes}
    request = Request.create(spec["messages"], spec["model"], params=spec.get("params"), options=spec.get("options"))
    return request_key(request, scope, "space")


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"messages": [{"role": "system", "content": "Be verbose."}, BASE["messages"][1]]},
    {"params": {"temperature": 0.0, "max_tokens": 5}},
    {"params": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}},
    {"params": {"response_format": {"type": "json_object"}}},
    {"params": {"seed": 7}},
    {"params": {"stop": ["\n"]}},
    {"params": {"top_p": 0.5}},
    {"params": {"n": 2}},
    {"params": {"max_tokens": 7}},
    {"params": {"temperature": 0.3}},
    {"options": {"target": "legal"}},
    {"options": {"adapter": "lora-legal"}},
    {"options": {"route": "cheap"}},
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


def test_an_answer_made_with_one_adapter_is_never_keyed_like_another() -> None:
    legal, medical = key(options={"adapter": "lora-legal"}), key(options={"adapter": "lora-medical"})
    assert legal.exact != medical.exact and legal.group != medical.group


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
    c = read_controls(Options.coerce({"no_store": True, "ttl": 60, "namespace": "faq"}))
    assert (c.no_cache, c.no_store, c.ttl, c.namespace) == (False, True, 60.0, "faq")
    assert read_controls(Options.coerce({"ttl": 0})).ttl == 0.0
    for bad in ({"ttl": -1}, {"ttl": "soon"}, {"no_cache": "yes"}, {"namespace": ""}, {"namespace": 3},
                {"ttl": float("nan")}, {"nocache": True}):
        with pytest.raises(InvalidRequestError):
            Options.coerce(bad)


def test_scopes_are_private_unless_the_namespace_is_shared() -> None:
    shared = {"faq"}

    def scope(per_user: bool = False, **options: Any) -> str:
        return scope_of(Options.coerce(options), per_user=per_user, shared_namespaces=shared)

    a, b = scope(tenant="a"), scope(tenant="b")
    assert a != b
    assert scope(tenant="a", user="x", per_user=True) != scope(tenant="a", user="y", per_user=True)
    assert scope(tenant="a", user="x") == a  # a tenant-wide cache shares within the tenant
    private_ns = scope(tenant="a", namespace="notes")
    assert private_ns not in (a, scope(tenant="b", namespace="notes"))
    assert scope(tenant="a", namespace="faq") == scope(tenant="b", namespace="faq")


@pytest.mark.parametrize("per_user", [False, True])
def test_a_user_id_never_aliases_a_tenant_of_the_same_name(per_user: bool) -> None:
    def scope(**options: Any) -> str:
        return scope_of(Options.coerce(options), per_user=per_user, shared_namespaces=())

    assert scope(user="42") != scope(tenant="42")
    assert scope(user="42") != scope()
    assert scope(user="42") != scope(user="43")
