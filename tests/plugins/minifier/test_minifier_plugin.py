"""PromptMinifier in a chain: what reaches the target, what is never touched, savings and fallbacks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.plugins import PromptMinifier

import costmw
from costmw import ConfigError, Request, Response
from costmw._plugin import CallNext, Plugin, get_plugin_class
from costmw._tokens import count_message_tokens

VERBOSE = ("I would like you to please write a short poem about the sea.   Please make sure to keep it short.\n\n\n"
           "Please make sure to keep it short. Thank you so much!")
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Please   look up   an order.",
                                           "parameters": {"type": "object", "properties": {}}}}]


def _chain(*plugins: Plugin, price: tuple[float, float] = (2.5, 10.0)) -> tuple[costmw.Chain, MockTarget]:
    target = MockTarget(lambda r: "done", name="gpt-4o", price=price)
    return costmw.Chain(list(plugins), [target]), target


def test_registered_under_its_config_name() -> None:
    assert get_plugin_class("prompt_minifier") is PromptMinifier
    chain = costmw.Chain.from_config({"plugins": [{"prompt_minifier": {"level": "safe", "budget_tokens": 4000}}],
                                      "targets": [{"kind": "mock", "name": "m"}]})
    plugin = chain.plugins[0]
    assert isinstance(plugin, PromptMinifier) and plugin.budget_tokens == 4000


@pytest.mark.parametrize("options, field", [
    ({"level": "extreme"}, "level"), ({"budget_tokens": 10}, "budget_tokens"), ({"rate": 1.5}, "rate"),
    ({"target_tokens": 0}, "target_tokens"), ({"trim_to": 0}, "trim_to"), ({"summarizer": 3}, "summarizer")])
def test_bad_options_fail_fast_naming_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PromptMinifier(**options)


def test_minified_request_reaches_the_target_and_savings_are_recorded() -> None:
    chain, target = _chain(PromptMinifier())
    messages = [{"role": "system", "content": "You are a poet.   Be brief."}, {"role": "user", "content": VERBOSE}]
    with chain:
        r = chain.complete(messages, model="gpt-4o")
    sent = target.calls[-1].messages
    assert sent[1]["content"] == "Write a short poem about the sea. Keep it short."
    info = r.info["minifier"]
    before = count_message_tokens(messages, "gpt-4o")
    assert info["tokens_before"] == before and info["tokens_after"] == count_message_tokens(sent, "gpt-4o")
    assert info["by_step"] == {"rules": info["removed_tokens"]}
    [saving] = r.savings
    assert saving.plugin == "prompt_minifier" and saving.tokens == before - info["tokens_after"]
    assert saving.usd == pytest.approx(saving.tokens * 2.5 / 1e6)
    assert chain.ledger.rows()[-1].savings["prompt_minifier"] == pytest.approx(saving.usd)


def test_token_counts_are_shared_through_the_request_context() -> None:
    seen: dict[str, Any] = {}

    class Peek(Plugin):
        async def handle(self, request: Request, call_next: CallNext) -> Response:
            seen["original"] = request.context.recall("original_prompt_tokens")
            seen["now"] = request.context.recall("prompt_tokens")
            seen["messages"] = request.messages
            return await call_next(request)

    chain, _ = _chain(PromptMinifier(), Peek())
    messages = [{"role": "user", "content": VERBOSE}]
    with chain:
        chain.complete(messages, model="gpt-4o")
    assert seen["original"] == count_message_tokens(messages, "gpt-4o")
    assert seen["now"] == count_message_tokens(seen["messages"], "gpt-4o") < seen["original"]


def test_removed_tokens_are_priced_at_the_requested_model_and_the_route_is_its_own_line() -> None:
    cheap = MockTarget(lambda r: "cheap answer", name="cheap", price=(0.1, 0.4))

    class Route(Plugin):
        name = "route"

        async def handle(self, request: Request, call_next: CallNext) -> Response:
            request.context.target = cheap
            request.context.facts.target_chosen(self.name, "cheap")
            return await call_next(request)

    chain, _ = _chain(PromptMinifier(), Route())
    chain.add_target(cheap)
    with chain:
        r = chain.complete([{"role": "user", "content": VERBOSE}], model="gpt-4o")
    assert r.text == "cheap answer"
    saved = {s.plugin: s for s in r.savings}
    assert saved["prompt_minifier"].usd == pytest.approx(saved["prompt_minifier"].tokens * 2.5 / 1e6)
    assert set(saved) == {"prompt_minifier", "route"}
    assert sum(s.usd for s in r.savings) == pytest.approx(r.baseline_cost_usd - r.cost_usd)


def test_tools_tool_messages_and_response_format_are_never_touched() -> None:
    tool_call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":  "a  b"}'}}
    messages = [
        {"role": "system", "content": "Please   answer   briefly."},
        {"role": "user", "content": "I would like you to   look up order 7."},
        {"role": "assistant", "content": "Please   wait   while   I   check.", "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "c1", "content": "Please   note:   {\n  \"status\": \"late\"\n}"},
        {"role": "user", "content": 'Could you please reply in JSON like\n{\n  "status": "..."\n}'},
    ]
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"description": "Please   be   exact."}}}
    chain, target = _chain(PromptMinifier())
    with chain:
        chain.complete(messages, model="gpt-4o", tools=TOOLS, response_format=fmt)
    sent = target.calls[-1]
    assert sent.messages[2] == messages[2] and sent.messages[3] == messages[3]
    assert sent.params["tools"] == TOOLS and sent.params["response_format"] == fmt
    assert sent.messages[0]["content"] == "Answer briefly."
    assert sent.messages[1]["content"] == "Look up order 7."
    assert '{\n  "status": "..."\n}' in sent.messages[4]["content"]  # JSON mode: examples kept as written


def test_only_text_parts_of_multimodal_content_change() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA   BBBB"}}
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Could you please describe   this image?"}, image]}]
    chain, target = _chain(PromptMinifier())
    with chain:
        chain.complete(messages, model="gpt-4o")
    parts = target.calls[-1].messages[0]["content"]
    assert parts[0] == {"type": "text", "text": "Describe this image."} and parts[1] == image


def test_nothing_to_gain_passes_the_request_through_untouched() -> None:
    seen: list[Request] = []
    chain = costmw.Chain([PromptMinifier()], [MockTarget(lambda r: seen.append(r) or "ok", name="m")])
    messages = [{"role": "user", "content": "Summarize the attached report in two sentences."}]
    with chain:
        r = chain.complete(messages, model="m")
    assert list(seen[0].messages) == messages
    assert r.savings == [] and r.info["minifier"]["removed_tokens"] == 0


def test_per_request_opt_out() -> None:
    chain, target = _chain(PromptMinifier())
    with chain:
        chain.complete([{"role": "user", "content": VERBOSE}], model="gpt-4o", options={"minify": False})
    assert target.calls[-1].messages[0]["content"] == VERBOSE


def test_streaming_sends_the_minified_request_and_records_the_saving() -> None:
    chain, target = _chain(PromptMinifier())
    with chain:
        chunks = list(chain.stream([{"role": "user", "content": VERBOSE}], model="gpt-4o"))
    final = chunks[-1].response
    assert final is not None and final.savings and final.savings[0].plugin == "prompt_minifier"
    assert target.calls[-1].messages[0]["content"].startswith("Write a short poem")


class BrokenScorer:
    name = "broken"

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        raise RuntimeError("scorer crashed")


class LengthScorer:
    name = "length"

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        return [(m.start(), m.end(), float(len(m.group()))) for m in re.finditer(r"\S+", text)]


LONG_DOC = " ".join(
    f"The planning office of site {i} publishes its holiday roster {i + 2} weeks in advance, and the supervisors "
    f"check it against the shift plan before it is posted on notice board {i}." for i in range(30))


def test_a_failing_scorer_never_fails_the_call() -> None:
    plugin = PromptMinifier(level="balanced", scorer=BrokenScorer())
    chain, target = _chain(plugin)
    messages = [{"role": "user", "content": f"{LONG_DOC}\n\nWhen is the holiday roster published?"}]
    with chain:
        r = chain.complete(messages, model="gpt-4o")
    assert r.text == "done" and plugin.stats["compress_errors"] == 1
    assert target.calls[-1].messages[0]["content"].endswith("When is the holiday roster published?")


def test_long_context_is_compressed_and_the_question_kept_verbatim() -> None:
    plugin = PromptMinifier(level="balanced", scorer=LengthScorer(), rate=0.5)
    chain, target = _chain(plugin)
    question = "When is the holiday roster published?"
    messages = [{"role": "system", "content": "Answer from the document."},
                {"role": "user", "content": f"Document:\n{LONG_DOC}\n\n{question}"}]
    with chain:
        r = chain.complete(messages, model="gpt-4o")
    sent = target.calls[-1].messages[1]["content"]
    assert sent.endswith("\n\n" + question)
    info = r.info["minifier"]
    assert info["by_step"]["compression"] > 0 and info["compression"]["rate"] == pytest.approx(0.5, abs=0.08)
    assert info["tokens_after"] < info["tokens_before"] * 0.6


def test_short_prompts_are_not_compressed() -> None:
    scorer = LengthScorer()
    chain, target = _chain(PromptMinifier(level="balanced", scorer=scorer))
    with chain:
        chain.complete([{"role": "user", "content": "What is the holiday roster? Answer briefly."}], model="gpt-4o")
    assert target.calls[-1].messages[0]["content"] == "What is the holiday roster? Answer briefly."


def test_explicit_compress_without_a_model_directory_fails_fast() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PromptMinifier(compress=True, scorer="/nonexistent/model/dir")


def test_importing_the_plugin_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, costmw; from costmw.plugins import PromptMinifier; PromptMinifier(level='balanced'); "
            "print([m for m in ('torch', 'transformers', 'litellm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
