"""Per-call options: one typed, validated place for costmw's controls."""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import pytest
from costmw.adapters import MockTarget

import costmw
from costmw import Chain, InvalidRequestError, Options, Request

USER = [{"role": "user", "content": "hi"}]


def test_options_are_frozen_and_built_from_a_dict() -> None:
    opts = Options.coerce({"tenant": "acme", "tags": "faq", "needs": ["tools"], "ttl": 5})
    assert opts == Options(tenant="acme", tags=frozenset({"faq"}), needs=frozenset({"tools"}), ttl=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.tenant = "other"  # type: ignore[misc]
    assert opts.to_dict() == {"tenant": "acme", "tags": ["faq"], "needs": ["tools"], "ttl": 5.0}
    assert Options.coerce(opts.to_dict()) == opts


@pytest.mark.parametrize(("typo", "meant"), [
    ("nocache", "no_cache"), ("tenat", "tenant"), ("tag", "tags"), ("adaptor", "adapter"), ("nostore", "no_store"),
])
def test_an_unknown_option_is_an_error_that_suggests_the_closest_name(typo: str, meant: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"unknown option '{typo}' \\(did you mean '{meant}'\\?\\)"):
        Request.create(USER, "m", options={typo: True})


@pytest.mark.parametrize(("options", "field"), [
    ({"no_cache": "yes"}, "options.no_cache"), ({"ttl": -1}, "options.ttl"), ({"ttl": float("inf")}, "options.ttl"),
    ({"namespace": ""}, "options.namespace"), ({"needs": ["flying"]}, "options.needs"), ({"tags": 3}, "options.tags"),
    ({"batch": 0}, "options.batch"), ({"target": 7}, "options.target"), ({"adapter": "a\ud800"}, "options.adapter"),
])
def test_a_bad_option_value_names_its_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field.replace(".", r"\.")):
        Request.create(USER, "m", options=options)


def test_options_must_be_a_dict_or_options() -> None:
    with pytest.raises(InvalidRequestError, match="options must be a dict"):
        Request.create(USER, "m", options="x")  # type: ignore[arg-type]


def test_controls_in_metadata_move_to_options_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="pass them as options"):
        r = Request.create(USER, "m", metadata={"tenant": "acme", "tag": "faq", "team": "search"})
    assert r.options == Options(tenant="acme", tags=frozenset({"faq"}))
    assert r.metadata == {"team": "search"}


def test_options_win_over_the_same_control_in_metadata() -> None:
    with pytest.warns(DeprecationWarning):
        r = Request.create(USER, "m", metadata={"tenant": "old", "no_store": True}, options={"tenant": "new"})
    assert (r.options.tenant, r.options.no_store) == ("new", True)


def test_a_misspelt_control_in_metadata_is_never_silently_ignored() -> None:
    with pytest.raises(InvalidRequestError, match="'nocache' looks like a misspelt option.*'no_cache'"):
        Request.create(USER, "m", metadata={"nocache": True})


def test_free_form_metadata_labels_pass_through_to_the_ledger() -> None:
    chain = Chain(targets=[MockTarget(lambda r: "ok")])
    chain.complete(USER, model="mock", metadata={"team": "search", 7: "sk-proj-" + "a1B2" * 10},
                   options={"tenant": "acme", "user": "u1"})
    row = chain.ledger.rows()[-1]
    assert row.tenant == "acme"
    assert row.info["user"] == "u1"
    assert row.info["metadata"]["team"] == "search"
    assert "a1B2a1B2" not in str(row.info["metadata"]["7"])  # a secret in a label is redacted


def test_identity_is_nfc_normalised_once() -> None:
    composed, decomposed = "Zo\u00eb", unicodedata.normalize("NFD", "Zo\u00eb")
    assert composed != decomposed
    a = Request.create(USER, "m", options={"tenant": composed, "user": decomposed})
    assert a.options.tenant == a.options.user == composed


@pytest.mark.parametrize("field", ["tenant", "user"])
@pytest.mark.parametrize("value", ["mallory\ud800", "\udfff", "", 42, 4.2, b"acme", ["a"], "x" * 257])
def test_a_bad_tenant_or_user_is_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError, match=f"options.{field}"):
        Request.create(USER, "m", options={field: value})


def test_a_lone_surrogate_in_a_legacy_metadata_user_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"metadata\.user holds a lone surrogate"), \
            pytest.warns(DeprecationWarning):
        Request.create(USER, "m", metadata={"user": "mallory\ud800"})


def test_the_decorator_takes_options_for_every_call_and_per_call() -> None:
    seen: list[Request] = []
    chain = Chain()

    @costmw.optimize(chain, options={"tenant": "acme"})
    def answer(messages: list[dict[str, Any]], **params: Any) -> str:
        return "ok"

    chain.add_plugin(_Spy(seen))
    answer(USER, costmw_options={"no_cache": True}, costmw_metadata={"run": 1})
    assert seen[0].options.tenant == "acme" and seen[0].options.no_cache
    assert seen[0].options.target is not None and seen[0].options.target.startswith("fn:")
    assert seen[0].metadata == {"run": 1}
    with pytest.raises(InvalidRequestError, match="did you mean 'no_cache'"):
        answer(USER, costmw_options={"nocache": True})


class _Spy(costmw.Plugin):
    def __init__(self, seen: list[Request]) -> None:
        self.seen = seen

    async def handle(self, request: Request, call_next: costmw.CallNext) -> costmw.Response:
        self.seen.append(request)
        return await call_next(request)


async def test_a_per_call_timeout_overrides_the_targets_own() -> None:
    import asyncio

    from costmw.adapters import CallableTarget

    async def hang(messages: list[dict[str, str]]) -> str:
        await asyncio.Event().wait()
        return "never"

    chain = Chain(targets=[CallableTarget(hang, name="hang", timeout_s=60)])
    with pytest.raises(costmw.TargetTimeout, match="deadline of 0.1 s"):
        await chain.acomplete(USER, "hang", options={"timeout_s": 0.1})


def test_an_option_passed_as_a_model_parameter_is_refused_not_sent_to_the_model() -> None:
    chain = Chain(targets=[MockTarget(lambda r: "ok", name="m")])
    with pytest.raises(InvalidRequestError, match=r"tenant is a costmw option, not a model parameter: "
                                                  r"pass options=\{'tenant': \.\.\.\}"):
        chain.complete(USER, "m", tenant="acme")
    with pytest.raises(InvalidRequestError, match="no_cache, ttl are costmw options"):
        chain.stream(USER, "m", ttl=5, no_cache=True)
    # ``user`` is OpenAI's own parameter too: it still reaches the model
    assert chain.complete(USER, "m", user="u-1").text == "ok"
    assert chain.complete(USER, "m", options={"tenant": "acme"}).text == "ok"
