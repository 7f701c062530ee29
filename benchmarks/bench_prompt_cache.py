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
import re
from typing import Any

from benchmarks._common import print_table, write_result

PROVIDERS = {"gpt-4o": "openai/gpt-4o", "claude-sonnet-4-5": "anthropic/claude-sonnet-4-5"}
SUMMARIZER = "openai/gpt-4o-mini"
BUDGET = 6000
KEY = "sk-fake-benchmark-key-0123456789abcdef"


def system_prompt() -> str:
    """About 3,000 tokens of agent instructions, laid out as people write them (blank lines, indents)."""
    parts = ["You are the operations agent of Northwind Parcel.   Follow every policy below.\n\n"]
    for i in range(60):
        parts.append(f"## Policy {i}\n\n    Parcels   routed   through   depot {i % 9}   must   be   scanned   at   "
                     f"intake   and   at   dispatch.\n    Refunds   for   zone {i % 13}   need   ticket   T-{i:03d}   "
                     f"and   a   manager's   approval   when   above   {50 + i}   dollars.\n\n")
    return "".join(parts)


TOOLS = [{"type": "function", "function": {
    "name": name, "description": desc,
    "parameters": {"type": "object", "properties": {p: {"type": "string", "description": f"the {p}"} for p in props},
                   "required": list(props)}}} for name, desc, props in [
    ("track_parcel", "Where a parcel is now and where it has been.", ("parcel_id",)),
    ("open_ticket", "Open a support ticket for a customer.", ("customer_id", "reason", "priority")),
    ("refund", "Refund a customer for a parcel.", ("parcel_id", "amount", "ticket_id")),
]]


def user_turn(t: int) -> str:
    note = " ".join(f"Line {k}:   the   parcel   P-{t:03d}{k}   was   scanned   at   depot {k}   on   day {t + k}."
                    for k in range(6))
    return f"Turn {t}. A customer asks about parcel P-{t:03d}.   Scan log:\n\n{note}\n\nWhat should I tell them?"


def responder(body: dict[str, Any]) -> str:
    """The same answer for a turn whatever was done to the prompt; summaries for summary requests."""
    messages = body.get("messages") or []
    first = str(messages[0].get("content") or "") if messages else ""
    if first.startswith("You compress chat histories"):
        return "The agent answered questions about several parcels; each was in transit and on schedule."
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    found = re.search(r"Turn (\d+)", str(last.get("content")))
    t = int(found.group(1)) if found else -1
    return (f"Parcel P-{t:03d} is in transit: it passed depot {t % 9} on schedule and arrives in {t % 4 + 1} days. "
            f"No refund applies; ticket T-{t:03d} is not needed.")


def run_conversation(url: str, model: str, mode: str, turns: int) -> dict[str, Any]:
    from costmw.adapters import LiteLLMTarget
    from costmw.plugins import PromptMinifier

    import costmw

    main = LiteLLMTarget(model, api_base=url, api_key=KEY, cache_breakpoints=mode == "after")
    cheap = LiteLLMTarget(SUMMARIZER, api_base=url, api_key=KEY)
    plugins = [] if mode == "none" else [PromptMinifier(budget_tokens=BUDGET, prefix_stable=mode == "after")]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    out: dict[str, Any] = {"cost_usd": 0.0, "prompt_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                           "summary_cost_usd": 0.0, "provider_cache_usd": 0.0, "minifier_usd": 0.0, "answers": []}
    price = main.price
    assert price is not None
    with costmw.Chain(plugins, [main, cheap]) as chain:
        for t in range(turns):
            messages.append({"role": "user", "content": user_turn(t)})
            r = chain.complete(messages, model=model, options={"target": main.name}, tools=TOOLS, temperature=0)
            u = r.usage
            summary = float((r.info.get("minifier") or {}).get("summary_cost_usd") or 0.0)
            out["cost_usd"] += r.cost_usd + summary
            out["summary_cost_usd"] += summary
            out["prompt_tokens"] += u.prompt_tokens
            out["cached_tokens"] += u.cached_tokens
            out["cache_write_tokens"] += u.cache_write_tokens
            out["provider_cache_usd"] += price.cache_discount(u.cached_tokens, u.cache_write_tokens)
            out["minifier_usd"] += sum(s.usd for s in r.savings if s.plugin == "prompt_minifier")
            out["answers"].append(r.text)
            messages.append(r.message())
    out["cached_share"] = out["cached_tokens"] / max(1, out["prompt_tokens"])
    return out


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
