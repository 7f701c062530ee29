from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from costmw.adapters import MockTarget

import costmw
from costmw import Chain, Chunk, ConfigError, Plugin, PluginError, Price, Request, Response, Usage
from costmw.plugin_api import count_message_tokens, count_tokens

USER = [{"role": "user", "content": "hello there"}]


class Tag(Plugin):
    """Appends its name to the request's metadata trail and the response text."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def before(self, request: Request) -> Request:
        trail = [*request.metadata.get("trail", []), self.tag]
        return request.replace(metadata={**request.metadata, "trail": trail})

    async def after(self, request: Request, response: Response) -> Response:
        response.text += f"<{self.tag}"
        return response


def trail_target() -> MockTarget:
    return MockTarget(lambda r: ",".join(r.metadata.get("trail", [])))


def test_first_plugin_is_outermost() -> None:
    chain = Chain(plugins=[Tag("a"), Tag("b")], targets=[trail_target()])
    r = chain.complete(USER, model="mock")
    assert r.text == "a,b<b<a"
    assert r.served_by == "target:mock"


def test_before_can_answer_without_calling_the_target() -> None:
    class Answer(Plugin):
        async def before(self, request: Request) -> Request | Response:
            request.context.facts.call_avoided("answer", "answered locally")
            return Response(text="local", usage=Usage(0, 1), served_by="plugin:answer")

    target = MockTarget(price=(1.0, 2.0))
    chain = Chain(plugins=[Answer()], targets=[target])
    r = chain.complete(USER, model="mock")
    assert r.text == "local" and target.calls == []
    assert r.cost_usd == 0 and r.baseline_cost_usd == pytest.approx(Price(1.0, 2.0).cost(
        count_message_tokens(USER, "mock"), 1))
    assert [(s.plugin, s.usd) for s in r.savings] == [("answer", r.baseline_cost_usd)]
    assert chain.ledger.rows()[0].savings == {"answer": r.baseline_cost_usd}


def test_a_failing_plugin_names_itself_and_other_calls_go_on() -> None:
    class Flaky(Plugin):
        name = "flaky"

        async def before(self, request: Request) -> Request:
            if "boom" in request.last_user_text:
                raise RuntimeError("kaput")
            return request

    chain = Chain(plugins=[Flaky()], targets=[MockTarget()])
    with pytest.raises(PluginError, match="'flaky'") as info:
        chain.complete([{"role": "user", "content": "boom"}], model="mock")
    assert info.value.plugin == "flaky" and isinstance(info.value.__cause__, RuntimeError)
    assert chain.complete(USER, model="mock").text == "hello there"
    rows = chain.ledger.rows()
    assert len(rows) == 2 and rows[0].error and rows[1].error is None


def test_target_errors_are_not_blamed_on_plugins() -> None:
    def fail(_: Request) -> str:
        raise ValueError("model exploded")

    chain = Chain(plugins=[Tag("a")], targets=[MockTarget(fail)])
    with pytest.raises(costmw.TargetError, match="model exploded"):
        chain.complete(USER, model="mock")


def test_chain_cannot_change_after_first_call() -> None:
    chain = Chain(targets=[MockTarget()])
    chain.add_plugin(Tag("early"))
    chain.complete(USER, model="mock")
    with pytest.raises(ConfigError, match="already served"):
        chain.add_plugin(Tag("late"))


def test_plugins_must_be_plugins() -> None:
    with pytest.raises(ConfigError, match=r"plugins\[0\]"):
        Chain(plugins=["cache"])  # type: ignore[list-item]


def test_stream_goes_through_plugins_and_ends_with_response() -> None:
    chain = Chain(plugins=[Tag("a")], targets=[MockTarget(lambda r: "streamed answer")])
    chunks = list(chain.stream(USER, model="mock"))
    assert chunks[-1].response is not None
    assert chunks[-1].response.text == "streamed answer<a"
    assert "".join(c.text for c in chunks[:-1]) == "streamed answer"
    assert len(chain.ledger) == 1


async def test_async_stream_and_cancel_early() -> None:
    class Slow(costmw.adapters.Target):
        async def acomplete(self, request: Request) -> Response:
            raise NotImplementedError

        async def astream(self, request: Request) -> AsyncIterator[Chunk]:
            for i in range(100):
                await asyncio.sleep(0)
                yield Chunk(text=str(i))
            yield Chunk(response=self._finish(request, Response(text="done")))

    chain = Chain(targets=[Slow("slow")])
    got = []
    async for c in chain.astream(USER, model="slow"):
        got.append(c.text)
        if len(got) == 3:
            break
    assert got == ["0", "1", "2"]


def test_sync_calls_from_32_threads() -> None:
    chain = Chain(plugins=[Tag("t")], targets=[MockTarget(lambda r: r.last_user_text)])
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(5):
                r = chain.complete([{"role": "user", "content": f"{i}-{j}"}], model="mock")
                results[i * 10 + j] = r.text
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 160
    assert all(results[i * 10 + j] == f"{i}-{j}<t" for i in range(32) for j in range(5))
    assert len(chain.ledger) == 160


async def test_sync_api_works_inside_a_running_loop() -> None:
    chain = Chain(targets=[MockTarget()])
    assert chain.complete(USER, model="mock").text == "hello there"
    assert next(c.text for c in chain.stream(USER, model="mock")) == "hello there"


async def test_1000_concurrent_async_calls_each_answered_once() -> None:
    async def handler(r: Request) -> str:
        await asyncio.sleep(0.001)
        return r.last_user_text

    target = MockTarget(handler)
    chain = Chain(plugins=[Tag("x"), Tag("y")], targets=[target])
    responses = await asyncio.gather(*(chain.acomplete([{"role": "user", "content": str(i)}], model="mock")
                                       for i in range(1000)))
    assert [r.text for r in responses] == [f"{i}<y<x" for i in range(1000)]
    assert len({r.request_id for r in responses}) == 1000
    assert len(target.calls) == 1000
    assert len(chain.ledger) == 1000


async def test_cancelling_a_call_cancels_the_upstream_call() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(_: Request) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    chain = Chain(targets=[MockTarget(handler)])
    task = asyncio.create_task(chain.acomplete(USER, model="mock"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


def test_cost_and_baseline_come_from_prices() -> None:
    cheap = MockTarget(lambda r: "x" * 40, name="cheap", price=(1.0, 2.0))

    class RouteToCheap(Plugin):
        async def before(self, request: Request) -> Request:
            request.context.target = cheap
            return request

    chain = Chain(plugins=[RouteToCheap()], targets=[cheap])
    messages = [{"role": "user", "content": "y" * 400}]
    r = chain.complete(messages, model="gpt-4o")
    assert r.served_by == "target:cheap"
    prompt, answer = count_message_tokens(messages, "cheap"), count_tokens("x" * 40, "cheap")
    assert r.usage.estimated and (r.usage.prompt_tokens, r.usage.completion_tokens) == (prompt, answer)
    assert r.cost_usd == pytest.approx((prompt * 1.0 + answer * 2.0) / 1e6)
    gpt4o = chain.price_of("gpt-4o")
    assert gpt4o is not None and gpt4o.input_per_1m > 1.0
    assert r.baseline_cost_usd == pytest.approx(gpt4o.cost(count_message_tokens(messages, "gpt-4o"), answer))
    assert r.saved_usd > 0 and sum(s.usd for s in r.savings) == pytest.approx(r.saved_usd)


def test_target_option_and_an_unknown_target_names_the_known_ones() -> None:
    a, b = MockTarget(lambda r: "a", name="a"), MockTarget(lambda r: "b", name="b")
    chain = Chain(targets=[a, b])
    assert chain.complete(USER, model="x", options={"target": "b"}).text == "b"
    with pytest.raises(costmw.InvalidRequestError, match=r"options.target names 'zzz'.*'a', 'b'"):
        chain.complete(USER, model="x", options={"target": "zzz"})
    assert len(chain.ledger.rows()) == 1  # refused before the call: no row for it


def test_no_target_at_all() -> None:
    with pytest.raises(costmw.NoTargetError, match="add a target"):
        Chain().complete(USER, model="gpt-4o")


def test_tools_and_response_format_pass_through_intact() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    fmt = {"type": "json_object"}
    seen: list[Request] = []

    def handler(r: Request) -> Response:
        seen.append(r)
        return Response(text="", tool_calls=[{"id": "1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}])

    chain = Chain(plugins=[Tag("a")], targets=[MockTarget(handler)])
    r = chain.complete(USER, model="mock", tools=tools, response_format=fmt)
    assert seen[0].params["tools"] == tools and seen[0].params["response_format"] == fmt
    assert r.tool_calls and r.tool_calls[0]["function"]["name"] == "f"


def test_feedback_is_stored() -> None:
    chain = Chain(targets=[MockTarget()])
    r = chain.complete(USER, model="mock")
    chain.feedback(r.request_id, good=False, note="wrong")
    assert chain.ledger.feedback()[0]["request_id"] == r.request_id
    assert chain.ledger.feedback()[0]["good"] is False
