"""The demo's agent conversation: a long system prompt and tools, many turns, against the fake
server's emulation of OpenAI's and Anthropic's prompt caches (offline, no API key).

The same workload drives ``benchmarks/bench_prompt_cache.py``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["TOOLS", "agent_section", "responder", "run_conversation", "system_prompt", "user_turn"]

PROVIDERS = {"gpt-4o": "openai/gpt-4o", "claude-sonnet": "anthropic/claude-sonnet-4-5"}
SUMMARIZER = "openai/gpt-4o-mini"
BUDGET = 6000
_KEY = "sk-fake-demo-key-0123456789abcdef"


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
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    found = re.search(r"Turn (\d+)", str(last.get("content")))
    t = int(found.group(1)) if found else -1
    return (f"Parcel P-{t:03d} is in transit: it passed depot {t % 9} on schedule and arrives in {t % 4 + 1} days. "
            f"No refund applies; ticket T-{t:03d} is not needed.")


def run_conversation(url: str, model: str, mode: str, turns: int) -> dict[str, Any]:
    """One conversation of ``turns`` turns. ``mode``: ``none`` (no plugins, no breakpoints),
    ``before`` (minifier with a history budget, prefix-unaware, no breakpoints) or ``after``
    (the same minifier, prefix-aware, with breakpoints)."""
    from costmw.adapters import LiteLLMTarget
    from costmw.plugins import PromptMinifier

    from .._chain import Chain

    main = LiteLLMTarget(model, api_base=url, api_key=_KEY, cache_breakpoints=mode == "after")
    cheap = LiteLLMTarget(SUMMARIZER, api_base=url, api_key=_KEY)
    plugins = [] if mode == "none" else [PromptMinifier(budget_tokens=BUDGET, prefix_stable=mode == "after")]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    out: dict[str, Any] = {"cost_usd": 0.0, "prompt_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                           "summary_cost_usd": 0.0, "provider_cache_usd": 0.0, "minifier_usd": 0.0, "answers": []}
    price = main.price
    with Chain(plugins, [main, cheap]) as chain:
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
            if price is not None:
                out["provider_cache_usd"] += price.cache_discount(u.cached_tokens, u.cache_write_tokens)
            out["minifier_usd"] += sum(s.usd for s in r.savings if s.plugin == "prompt_minifier")
            out["answers"].append(r.text)
            messages.append(r.message())
    out["cached_share"] = out["cached_tokens"] / max(1, out["prompt_tokens"])
    return out


def agent_section(console: Any, turns: int = 12) -> dict[str, Any]:
    """An agent conversation without and with costmw, priced as gpt-4o and claude-sonnet-4-5."""
    from rich.table import Table

    from ..testing import FakeOpenAIServer

    table = Table(title=f"an agent conversation: {turns} turns, ~3,000-token system prompt, 3 tools "
                        "(USD; the savings lines are what each saved)")
    for col in ("priced as", "", "cost", "cached input", "provider_cache", "prompt_minifier"):
        table.add_column(col, justify="left" if col in ("priced as", "") else "right")
    out: dict[str, Any] = {}
    with console.status("running the agent conversation against the emulated provider caches..."):
        for priced_as, model in PROVIDERS.items():
            for mode, label in (("none", "no costmw"), ("after", "costmw")):
                with FakeOpenAIServer(responder) as server:
                    r = run_conversation(server.url, model, mode, turns)
                out[f"{priced_as}:{mode}"] = {k: v for k, v in r.items() if k != "answers"}
                table.add_row(priced_as, label, f"{r['cost_usd']:.4f}", f"{r['cached_share']:.0%}",
                              f"{r['provider_cache_usd']:.4f}", f"{r['minifier_usd']:.4f}")
    console.print(table)
    return out
