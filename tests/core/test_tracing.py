"""OpenTelemetry traces: a chat span with the GenAI attributes, a span per plugin and the target call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import costmw
import costmw.tracing
from costmw.testing import MockTarget

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")


@pytest.fixture
def spans() -> Iterator[object]:
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    costmw.tracing.enable(provider)
    try:
        yield exporter
    finally:
        costmw.tracing.disable()


def test_a_call_makes_a_chat_span_with_plugin_and_target_spans_inside(spans: object) -> None:
    from costmw.plugins import PassThrough

    chain = costmw.Chain(plugins=[PassThrough()], targets=[MockTarget(lambda r: "hello there", name="gpt-4o-mini")])
    with chain:
        chain.complete([{"role": "user", "content": "hi"}], model="gpt-4o-mini", temperature=0.2)
    finished = {s.name: s for s in spans.get_finished_spans()}  # type: ignore[attr-defined]
    chat = finished["chat gpt-4o-mini"]
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    plugin = finished["costmw.plugin passthrough"]
    target = finished["costmw.target call"]
    assert plugin.parent.span_id == chat.context.span_id
    assert target.parent.span_id == plugin.context.span_id
    every_value = " ".join(str(v) for s in finished.values() for v in dict(s.attributes).values())
    assert "hello there" not in every_value  # answers (and prompts) never go on spans


def test_a_failed_call_marks_its_spans(spans: object) -> None:
    def boom(request: costmw.Request) -> str:
        raise costmw.ServerError("upstream down")

    chain = costmw.Chain(targets=[MockTarget(boom, name="m")])
    with chain, pytest.raises(costmw.ServerError):
        chain.complete([{"role": "user", "content": "hi"}], model="m")
    chat = next(s for s in spans.get_finished_spans() if s.name == "chat m")  # type: ignore[attr-defined]
    assert chat.attributes["error.type"] == "ServerError"
    assert chat.status.status_code.name == "ERROR"


def test_chains_built_without_enable_make_no_spans() -> None:
    assert not costmw.tracing.enabled()
    chain = costmw.Chain(targets=[MockTarget(lambda r: "x", name="m")])
    with chain:
        assert chain.complete([{"role": "user", "content": "hi"}], model="m").text == "x"
