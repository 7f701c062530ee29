"""An existing LangChain app (an LCEL chain and an agent) made cheaper with one line each.

Runs offline in a few seconds: the "OpenAI API" is costmw's fake OpenAI-compatible server, and
prices are gpt-4o's list prices from LiteLLM's price map. Needs ``pip install "costmw[langchain]"
langchain-openai``. Run: python examples/langchain_app.py
"""

from __future__ import annotations

import sys
from typing import Any

from costmw.plugins import MemoryStore, SemanticCache

from costmw import Chain
from costmw.testing import FakeOpenAIServer, schema_responder

try:
    from langchain.agents import create_agent
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    from costmw.integrations.langchain import CostmwMiddleware, costmw_usage, wrap
except ImportError as exc:
    sys.exit(f"this example needs LangChain and langchain-openai: pip install \"costmw[langchain]\" "
             f"langchain-openai ({exc})")

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What is the capital of France?",          # asked again
    "what is the capital of france",           # same words, other spelling
    "How many legs does a spider have?",
    "Who wrote Hamlet?",
    "What is the capital of France?",
    "Who wrote Hamlet?",
]


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."


def cache() -> SemanticCache:
    """An in-memory semantic cache; the hashing embedder keeps the example free of model downloads."""
    return SemanticCache(store=MemoryStore(), embedder="hashing", threshold=0.9)


def run_lcel(llm: Any) -> list[str]:
    app = ChatPromptTemplate.from_messages([("system", "Answer in one sentence."), ("human", "{question}")]) \
        | llm | StrOutputParser()
    return [app.invoke({"question": q}) for q in QUESTIONS]


def run_agent(agent: Any) -> None:
    for _ in range(3):  # the same support question, three times
        agent.invoke({"messages": [{"role": "user", "content": "What is the weather in 'Paris'?"}]})


def report(title: str, api_calls: int, usage: Any) -> None:
    print(f"{title:<28} {api_calls:>9} {usage.calls:>10} {usage.baseline_cost_usd * 1e3:>14.4f} "
          f"{usage.cost_usd * 1e3:>14.4f} {usage.saved_pct:>8.1f}%")


def main() -> None:
    with FakeOpenAIServer(responder=schema_responder) as api:
        llm = ChatOpenAI(model="gpt-4o", base_url=api.url, api_key="sk-fake-example-0000000000",  # type: ignore[arg-type]
                         temperature=0)
        print(f"{'app':<28} {'API calls':>9} {'LLM calls':>10} {'without (m$)':>14} "
              f"{'with (m$)':>14} {'saved':>9}")

        # 1. The existing LCEL chain; the one new line is `wrap(...)`.
        llm_with_costmw = wrap(llm, plugins=[cache()])                      # <- the one line
        before = len(api.chat_requests)
        with costmw_usage() as usage:
            run_lcel(llm_with_costmw)
        report("LCEL chain + wrap()", len(api.chat_requests) - before, usage)

        # 2. The existing agent; the one new line is the middleware.
        chain = Chain(plugins=[cache()])
        agent = create_agent(llm, tools=[get_weather],
                             middleware=[CostmwMiddleware(chain)])           # <- the one line
        before = len(api.chat_requests)
        with costmw_usage() as usage:
            run_agent(agent)
        report("agent + CostmwMiddleware", len(api.chat_requests) - before, usage)
        print("\nwho answered the agent's model calls:", usage.by_served_by())


if __name__ == "__main__":
    main()
