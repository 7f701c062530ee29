"""Test targets for the batcher: one that records the batches it is sent, gated on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from costmw.adapters import Capabilities, Target

from costmw import Request, Response, Usage


class RecordingTarget(Target):
    """Answers ``"answer to <text>"``; records each batch as the list of its user texts.

    ``fail`` texts get their own exception; a ``poison`` text makes the whole ``abatch`` raise;
    while ``gate`` is set-able and not set, batches wait for it; ``delay`` is seconds per call.
    """

    def __init__(self, name: str = "local", *, batching: bool = True, fail: Sequence[str] = (),
                 poison: Sequence[str] = (), delay: float = 0.0) -> None:
        super().__init__(name, price=(1.0, 2.0), capabilities=Capabilities(batching=batching))
        self.batches: list[list[str]] = []
        self.fail = set(fail)
        self.poison = set(poison)
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.started = 0
        self.running = 0
        self.peak_running = 0

    async def _hold(self) -> None:
        self.started += 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.running -= 1

    def _answer(self, request: Request) -> Response | BaseException:
        text = request.last_user_text
        if text in self.fail:
            return ValueError(f"cannot answer {text!r}")
        limit = request.params.get("max_tokens")
        answer = f"answer to {text}" + (f" [max {limit}]" if limit else "")
        return Response(text=answer, usage=Usage(5, 3))

    async def acomplete(self, request: Request) -> Response:
        self.batches.append([request.last_user_text])
        await self._hold()
        result = self._answer(request)
        if isinstance(result, BaseException):
            raise result
        return result

    async def abatch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        texts = [r.last_user_text for r in requests]
        self.batches.append(texts)
        await self._hold()
        if self.poison & set(texts):
            raise RuntimeError("the padded forward pass crashed")
        return [self._answer(r) for r in requests]


@pytest.fixture
def make_target() -> Callable[..., RecordingTarget]:
    return RecordingTarget


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def msg() -> Callable[[str], list[dict[str, str]]]:
    return user
