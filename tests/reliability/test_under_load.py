"""Under load every caller gets exactly its own answer: 1,000 concurrent async calls, 16 threads of
sync calls, and 100 concurrent HTTP calls to the fake OpenAI server with no fault injected."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from costmw.adapters import MockTarget
from costmw.plugins import Batcher, SemanticCache

from costmw import Chain, Request
from costmw.testing import FakeOpenAIServer


async def _answer(request: Request) -> str:
    await asyncio.sleep(0.005)
    return "answer " + request.last_user_text


async def test_a_thousand_concurrent_async_calls_each_get_their_own_answer() -> None:
    chain = Chain([SemanticCache(store="memory", embedder=None), Batcher()], targets=[MockTarget(_answer, name="m")])
    replies = await asyncio.gather(*(chain.acomplete([{"role": "user", "content": f"q{i}"}], "m")
                                     for i in range(1000)))
    assert [r.text for r in replies] == [f"answer q{i}" for i in range(1000)]
    assert len({r.request_id for r in replies}) == 1000 and len(chain.ledger) == 1000


def test_sixteen_threads_of_sync_calls_each_get_their_own_answer() -> None:
    chain = Chain([Batcher()], targets=[MockTarget(lambda r: "answer " + r.last_user_text, name="m")])
    wrong: list[Any] = []

    def worker(t: int) -> None:
        for i in range(25):
            text = f"{t}-{i}"
            reply = chain.complete([{"role": "user", "content": text}], "m")
            if reply.text != f"answer {text}":
                wrong.append((text, reply.text))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert wrong == [] and len(chain.ledger) == 16 * 25
    chain.close()


def test_a_hundred_concurrent_calls_to_the_fake_server_all_succeed() -> None:
    """A burst of 100 connections at once (the listen queue once held 5: calls timed out)."""
    import json
    import urllib.request

    barrier = threading.Barrier(100)
    answers: dict[int, str] = {}

    def call(i: int) -> None:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}).encode()
        request = urllib.request.Request(server.url + "/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        barrier.wait(30)
        with urllib.request.urlopen(request, timeout=30) as reply:
            answers[i] = json.loads(reply.read())["choices"][0]["message"]["content"]

    with FakeOpenAIServer() as server:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(100)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    assert answers == {i: f"echo: q{i}" for i in range(100)}
