"""Batcher: concurrent callers share one forward pass, and deferrable work goes to a Batch API.

Runs offline in a few seconds: a stand-in for a local model (one batch at a time, 40 ms plus 2 ms
per request, like a padded forward pass) and the fake OpenAI-compatible server with Batch API
routes. Run: python examples/batcher.py
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from costmw.adapters import Capabilities, LiteLLMTarget, Target
from costmw.plugins import Batcher

import costmw
from costmw import Request, Response, Usage
from costmw.testing import FakeOpenAIServer, install_batch_routes


class LocalModel(Target):
    """Serves one batch at a time; a batch of n takes 40 ms + 2 ms·n."""

    def __init__(self) -> None:
        super().__init__("local-model", price=(0.0, 0.0), capabilities=Capabilities(batching=True))
        self._device = asyncio.Lock()

    async def abatch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        async with self._device:
            await asyncio.sleep(0.040 + 0.002 * len(requests))
        return [Response(text=f"answer to: {r.last_user_text}", usage=Usage(12, 8)) for r in requests]

    async def acomplete(self, request: Request) -> Response:
        result = (await self.abatch([request]))[0]
        assert isinstance(result, Response)
        return result


def thirty_two_threads(chain: costmw.Chain) -> float:
    """32 threads each make 3 sync calls; returns the wall time."""
    def worker(i: int) -> None:
        for k in range(3):
            chain.complete([{"role": "user", "content": f"thread {i}, question {k}"}], model="local-model")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def micro_batching() -> None:
    model = LocalModel()
    with costmw.Chain(targets=[model]) as plain:
        alone = thirty_two_threads(plain)
    batcher = Batcher(max_batch_size=32, max_wait_ms=10)
    with costmw.Chain([batcher], [model]) as chain:
        together = thirty_two_threads(chain)
        r = chain.complete([{"role": "user", "content": "one more"}], model="local-model")
    stats = batcher.stats()
    print(f"96 calls from 32 threads: {alone:.2f} s one by one, {together:.2f} s batched "
          f"({alone / together:.1f}x faster; {stats['batches']:.0f} batches, mean size {stats['mean_batch_size']:.1f})")
    print(f"a response knows its batch: {r.info['batch']}")


def batch_api() -> None:
    with FakeOpenAIServer() as server:
        provider = install_batch_routes(server)
        target = LiteLLMTarget("openai/gpt-4o-mini", api_base=server.url, api_key="sk-example-not-a-real-key")
        with costmw.Chain(targets=[target], default_model="openai/gpt-4o-mini") as chain:
            job = chain.submit_batch([[{"role": "user", "content": f"summarise report {i}"}] for i in range(3)],
                                     completion_window="24h")
            print(f"\nsubmitted {job.id}: {job.info['status']}")
            while (status := job.status()) not in ("completed", "failed", "expired", "cancelled"):
                print(f"  ... {status} {job.counts}")
            print(f"  {status} {job.counts}")
            for outcome in job.results():
                assert outcome.response is not None
                print(f"  {outcome.response.text!r}: ${outcome.response.cost_usd:.8f} "
                      f"(live price ${outcome.response.baseline_cost_usd:.8f})")
            summary = chain.report()
            print(f"ledger: {summary['by_target']}  saved {summary['saved_pct']:.0f}% "
                  f"(by plugin: {summary['by_plugin']})")
        assert provider.status(job.id) == "completed"


if __name__ == "__main__":
    micro_batching()
    batch_api()
