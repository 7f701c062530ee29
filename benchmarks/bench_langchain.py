"""What the LangChain integration costs per call, and what it saves on a repetitive workload.

1. Overhead: a trivial in-process chat model called directly, then through ``wrap()`` with no
   plugins (conversion + chain + ledger), and as a ``CostmwChatModel`` on a MockTarget; sync
   invoke and stream, microseconds per call.
2. Agent overhead: one tool-calling agent turn (two model calls) with and without
   ``CostmwMiddleware`` (no plugins), against the same trivial model.
3. Savings: an LCEL app asking 40 support questions (20 distinct, each asked twice, half of the
   repeats reworded in case and punctuation) through ChatOpenAI against the fake OpenAI server,
   priced as gpt-4o, with ``wrap(..., plugins=[SemanticCache])``.

Run: ``python -m benchmarks.bench_langchain [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ._common import print_table, summary_us, write_result


def _trivial_model() -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Trivial(BaseChatModel):
        """Answers instantly: a tool call when tools are bound and none was made yet, else text."""

        model_name: str = "gpt-4o"

        @property
        def _llm_type(self) -> str:
            return "trivial"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            if kw.get("tools") and messages[-1].type != "tool":
                name = kw["tools"][0]["function"]["name"]
                msg = AIMessage("", tool_calls=[{"name": name, "args": {"city": "Paris"}, "id": "c1"}])
            else:
                msg = AIMessage("ok", usage_metadata={"input_tokens": 20, "output_tokens": 2, "total_tokens": 22})
            return ChatResult(generations=[ChatGeneration(message=msg)])

        def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kw: Any) -> Any:
            from langchain_core.utils.function_calling import convert_to_openai_tool

            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kw)

    return Trivial()


def _drain(model: Any, prompt: str) -> None:
    for _ in model.stream(prompt):
        pass


def _time(fn: Callable[[], Any], n: int) -> dict[str, float]:
    for _ in range(min(20, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return summary_us(samples)


def overhead(n: int) -> list[dict[str, Any]]:
    from costmw.adapters import MockTarget

    from costmw import Chain
    from costmw.integrations.langchain import CostmwChatModel, wrap

    base = _trivial_model()
    wrapped = wrap(base, plugins=[])
    direct = CostmwChatModel(chain=Chain(targets=[MockTarget(lambda r: "ok", name="gpt-4o")]), model="gpt-4o")
    rows = []
    for label, model in (("plain model", base), ("wrap(model), no plugins", wrapped),
                         ("CostmwChatModel on MockTarget", direct)):
        rows.append({"case": label, "call": "invoke", **_time(partial(model.invoke, "hello"), n)})
        rows.append({"case": label, "call": "stream", **_time(partial(_drain, model, "hello"), n)})
    return rows


def agent_overhead(n: int) -> list[dict[str, Any]]:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    from costmw import Chain
    from costmw.integrations.langchain import CostmwMiddleware

    @tool
    def get_weather(city: str) -> str:
        """Get the weather in a city."""
        return f"sunny in {city}"

    question = {"messages": [{"role": "user", "content": "weather in Paris?"}]}
    rows = []
    for label, middleware in (("agent", []), ("agent + CostmwMiddleware", [CostmwMiddleware(Chain())])):
        agent = create_agent(_trivial_model(), tools=[get_weather], middleware=middleware)
        rows.append({"case": label, "call": "invoke (2 model calls)", **_time(partial(agent.invoke, question), n)})
    return rows


def savings(distinct: int) -> dict[str, Any]:
    from costmw.plugins import MemoryStore, SemanticCache
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    from costmw.integrations.langchain import costmw_usage, wrap
    from costmw.testing import FakeOpenAIServer
    from costmw.testing._responders import schema_responder

    questions = [f"How do I reset the password of account number {i}?" for i in range(distinct)]
    repeats = [q.lower().rstrip("?") if i % 2 else q for i, q in enumerate(questions)]
    with FakeOpenAIServer(responder=schema_responder) as api:
        llm = ChatOpenAI(model="gpt-4o", base_url=api.url, api_key="sk-fake-bench-000000000000")  # type: ignore[arg-type]
        cache = SemanticCache(store=MemoryStore(), embedder="hashing", threshold=0.9)
        app = ChatPromptTemplate.from_messages([("human", "{q}")]) | wrap(llm, plugins=[cache]) | StrOutputParser()
        t0 = time.perf_counter()
        with costmw_usage() as usage:
            for q in questions + repeats:
                app.invoke({"q": q})
        elapsed = time.perf_counter() - t0
        return {"calls": usage.calls, "api_calls": len(api.chat_requests), "served_by": usage.by_served_by(),
                "baseline_usd": usage.baseline_cost_usd, "cost_usd": usage.cost_usd, "saved_pct": usage.saved_pct,
                "wall_s": elapsed}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (well under a minute)")
    args = parser.parse_args(argv)
    n = 100 if args.quick else 1000
    result = {"overhead": overhead(n), "agent": agent_overhead(max(20, n // 10)),
              "savings": savings(10 if args.quick else 20), "quick": args.quick}
    rows = [[r["case"], r["call"], r["p50_us"], r["p99_us"]] for r in result["overhead"] + result["agent"]]
    print_table("LangChain integration: time per call (sync, µs)", ["case", "call", "p50 µs", "p99 µs"], rows)
    s = result["savings"]
    print_table("LCEL app, 2 asks per question (priced as gpt-4o)",
                ["LLM calls", "API calls", "without $", "with $", "saved %"],
                [[s["calls"], s["api_calls"], f"{s['baseline_usd']:.5f}", f"{s['cost_usd']:.5f}", s["saved_pct"]]])
    path = write_result("langchain", result)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
