"""Provider prompt caching on an agent conversation: 20 turns with a ~3,000-token system prompt and
tools, against the fake server's emulation of OpenAI's and Anthropic's prompt caches, priced as
gpt-4o and as claude-sonnet-4-5 (LiteLLM's price map, cache reads and writes included).

Three runs side by side for each provider, with the same turns and the same answers:
- no costmw: the prompt as the app builds it, straight to the model (no cache breakpoints);
- costmw, prefix-unaware: PromptMinifier(budget_tokens=..., prefix_stable=False), no breakpoints;
- costmw, prefix-aware: PromptMinifier(budget_tokens=...), breakpoints placed by the target.
Cost counts every call, the history summaries included. Goal: the prefix-aware run costs least
on both providers, with the same answers.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks._common import print_table, write_result
from costmw.cli._agent import BUDGET, PROVIDERS, responder, run_conversation


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same 20 turns (the run is short already)")
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args(argv or [])
    from costmw.testing import FakeOpenAIServer

    results: dict[str, Any] = {"turns": args.turns, "budget_tokens": BUDGET, "providers": {}}
    rows = []
    for priced_as, model in PROVIDERS.items():
        runs = {}
        for mode in ("none", "before", "after"):
            with FakeOpenAIServer(responder) as server:  # a fresh provider cache for each run
                runs[mode] = run_conversation(server.url, model, mode, args.turns)
        same = runs["none"]["answers"] == runs["before"]["answers"] == runs["after"]["answers"]
        for mode, label in (("none", "no costmw"), ("before", "costmw, prefix-unaware"),
                            ("after", "costmw, prefix-aware")):
            r = runs[mode]
            rows.append([priced_as, label, f"{r['cost_usd']:.4f}", f"{r['cached_share']:.1%}", r["prompt_tokens"],
                         f"{r['provider_cache_usd']:.4f}", f"{r['minifier_usd']:.4f}", f"{r['summary_cost_usd']:.4f}",
                         "yes" if same else "NO"])
        results["providers"][priced_as] = {
            "model": model, "same_answers": same,
            "runs": {m: {k: v for k, v in r.items() if k != "answers"} for m, r in runs.items()},
            "after_cheapest": runs["after"]["cost_usd"] < min(runs["none"]["cost_usd"], runs["before"]["cost_usd"]),
        }
    print_table(f"a {args.turns}-turn agent conversation (system prompt ~3,000 tokens, 3 tools, budget {BUDGET})",
                ["priced as", "run", "cost USD", "cached share", "prompt tokens", "provider_cache USD",
                 "minifier USD", "summaries USD", "same answers"], rows)
    path = write_result("prompt_cache", results)
    print(f"\nwritten to {path}")
    return results


if __name__ == "__main__":
    main()
