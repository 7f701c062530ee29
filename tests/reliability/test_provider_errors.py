"""Provider SDK exceptions map to costmw's retryable errors whatever target raised them, so
fallbacks run; error text never carries a key."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest
from costmw.adapters import CallableTarget, MockTarget
from costmw.plugins import Batcher, ModelRouter

from costmw import Chain, RateLimitError, ServerError, TargetError, TargetTimeout
from costmw.plugin_api import map_provider_error

MSG = [{"role": "user", "content": "hello"}]
_REQ = httpx.Request("POST", "https://api.example.com/v1/chat/completions")


def _status(code: int) -> httpx.Response:
    return httpx.Response(code, request=_REQ)


class _StatusError(Exception):
    """An error of some other SDK that only carries a status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


SDK_ERRORS: list[tuple[str, Callable[[], BaseException], type[TargetError]]] = [
    ("openai.RateLimitError", lambda: openai.RateLimitError("slow down", response=_status(429), body=None),
     RateLimitError),
    ("openai.InternalServerError", lambda: openai.InternalServerError("boom", response=_status(500), body=None),
     ServerError),
    ("openai.APIConnectionError", lambda: openai.APIConnectionError(request=_REQ), ServerError),
    ("openai.APITimeoutError", lambda: openai.APITimeoutError(request=_REQ), TargetTimeout),
    ("httpx.ReadTimeout", lambda: httpx.ReadTimeout("read timed out", request=_REQ), TargetTimeout),
    ("httpx.ConnectError", lambda: httpx.ConnectError("refused", request=_REQ), ServerError),
    ("httpx.HTTPStatusError 503", lambda: httpx.HTTPStatusError("unavailable", request=_REQ,
                                                                 response=_status(503)), ServerError),
    ("TimeoutError", lambda: TimeoutError("took too long"), TargetTimeout),
    ("ConnectionResetError", lambda: ConnectionResetError("reset by peer"), ServerError),
    ("status 502", lambda: _StatusError(502), ServerError),
    ("status 429", lambda: _StatusError(429), RateLimitError),
]


@pytest.mark.parametrize(("name", "make", "expected"), SDK_ERRORS, ids=[e[0] for e in SDK_ERRORS])
def test_a_provider_exception_maps_to_a_retryable_error(name: str, make: Callable[[], BaseException],
                                                        expected: type[TargetError]) -> None:
    error = map_provider_error(make(), "t")
    assert type(error) is expected and error.retryable


def test_a_client_error_stays_a_plain_target_error() -> None:
    error = map_provider_error(openai.BadRequestError("bad", response=_status(400), body=None), "t")
    assert type(error) is TargetError and not error.retryable
    assert type(map_provider_error(ValueError("x"), "t")) is TargetError


@pytest.mark.parametrize("batched", [False, True], ids=["direct", "through the batcher"])
@pytest.mark.parametrize(("name", "make", "expected"), SDK_ERRORS[:6], ids=[e[0] for e in SDK_ERRORS[:6]])
def test_a_callable_targets_sdk_exception_falls_back(name: str, make: Callable[[], BaseException],
                                                     expected: type[TargetError], batched: bool) -> None:
    def failing(messages: list[dict[str, str]]) -> str:
        raise make()

    primary = CallableTarget(failing, name="primary")
    spare = MockTarget(lambda r: "spare answer", name="spare")
    plugins = [ModelRouter([primary, spare])] + ([Batcher(max_wait_ms=1)] if batched else [])
    with Chain(plugins=plugins, targets=[primary, spare]) as chain:
        response = chain.complete(MSG, "primary")
        assert response.text == "spare answer"
        assert response.info["route"]["attempts"] == [{"target": "primary", "error": expected.__name__}]


def test_without_a_fallback_the_caller_gets_the_mapped_error() -> None:
    def failing(messages: list[dict[str, str]]) -> str:
        raise openai.RateLimitError("slow down", response=_status(429), body=None)

    with Chain(targets=[CallableTarget(failing, name="only")]) as chain, pytest.raises(RateLimitError) as info:
        chain.complete(MSG, "only")
    assert info.value.status_code == 429
    assert isinstance(info.value.__cause__, openai.RateLimitError)


def test_an_error_that_echoes_a_key_is_redacted() -> None:
    key = "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34"

    def failing(messages: list[dict[str, str]]) -> str:
        raise openai.AuthenticationError(f"Incorrect API key provided: {key}", response=_status(401), body=None)

    with Chain(targets=[CallableTarget(failing, name="only")]) as chain:
        with pytest.raises(TargetError) as info:
            chain.complete(MSG, "only")
        assert key not in str(info.value)
        assert all(key not in (row.error or "") for row in chain.ledger.rows())
