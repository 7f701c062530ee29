"""Make a cheaper local model from your own traffic, end to end, offline, in under a minute.

1. An expensive "API model" (a stand-in function here) routes support tickets through a chain
   whose ledger keeps the prompts and answers (``Ledger(path, store_text=True)``).
2. ``distill_from_ledger`` runs the flywheel: cleaned data, a LoRA student, an agreement gate.
   The tiny random model used here is too weak for LoRA alone, and the gate refuses it.
3. A stronger recipe (full fine-tuning of the tiny model) passes; pruning and int8 make it smaller.
4. ``costmw.adapters.load`` serves the result as a target and the chain answers with it.

Real use swaps the tiny model for a small instruct model (e.g. SmolLM2-135M-Instruct) and the
stand-in for your API model; see docs/make-models.md.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from costmw.adapters import MockTarget, load
from costmw.adapters.make import (
    clean_dataset,
    distill_from_ledger,
    prune,
    quantize,
    tiny_llama,
    tune_full,
)

import costmw

TEAMS = {
    "billing": ["I was charged twice", "refund my last payment", "my invoice is wrong", "card billed by mistake"],
    "account": ["reset my password", "I cannot log in", "locked out of my account", "change my email address"],
    "shipping": ["where is my parcel", "order not delivered yet", "the package is late", "wrong delivery address"],
}
OPENERS = ["hi,", "hello", "please help:", "urgent:", "hey team", "question:", "good morning,", "quick one:"]


def record_traffic(ledger_path: Path) -> list[dict[str, str]]:
    """Send every ticket through a chain to the 'API model'; the ledger keeps the text."""
    tickets = [(f"{o} {t}", team) for team, texts in TEAMS.items() for t in texts for o in OPENERS]
    random.Random(0).shuffle(tickets)
    label = dict(tickets)
    api_model = MockTarget(lambda r: label.get(r.last_user_text, "Error: upstream timeout"), name="big-api-model",
                           price=(2.5, 10.0))
    with costmw.Chain(targets=[api_model], ledger=costmw.Ledger(ledger_path, store_text=True)) as chain:
        for text, _ in tickets:
            chain.complete([{"role": "user", "content": text}], model="big-api-model")
        chain.complete([{"role": "user", "content": "ping"}], model="big-api-model")  # an error answer to clean out
    return [{"prompt": t, "response": team} for t, team in tickets]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="costmw-make-example-"))
    rows = record_traffic(work / "ledger.db")
    base = tiny_llama(work / "tiny-base", [f"{r['prompt']} {r['response']}" for r in rows], layers=4)

    print("== the flywheel: ledger -> data -> LoRA student -> gate")
    weak = distill_from_ledger(work / "ledger.db", base, work / "lora-student", bar=0.8, steps=20, lr=1e-2,
                               progress=False, eval_answers=16)
    print(weak.message, "\n")

    print("== a stronger recipe: full fine-tuning, then prune and quantize")
    data = clean_dataset(work / "ledger.db", validation=0.2, out=work / "data")
    tuned = tune_full(base, work / "data", work / "tuned", layers="all", train_embeddings=True, steps=120, lr=5e-3,
                      progress=False, eval_answers=16, price=(0.01, 0.01))
    pruned = prune(work / "tuned", work / "pruned", amount=0.3, data=work / "data", recover_steps=20,
                   recover_lr=3e-4, progress=False, eval_answers=16, speed_prompts=2)
    small = quantize(work / "pruned", work / "pruned-int8", method="int8", data=work / "data", eval_answers=16,
                     speed_prompts=2)
    before, *_, after = pruned.metrics["stages"]
    print(f"held-out accuracy: tuned {tuned.metrics['agreement_exact']:.0%}, pruned+recovered "
          f"{after['agreement_exact']:.0%}, pruned+int8 {small.metrics['stages'][-1]['agreement_exact']:.0%}")
    print(f"parameters: {before['params']:,} -> {after['params']:,}; weights in memory: "
          f"{small.metrics['stages'][0]['memory_mb']:.2f} MB -> {small.metrics['stages'][-1]['memory_mb']:.2f} MB\n")

    print("== serve it: costmw.adapters.load() -> a target in a chain")
    target = load(work / "pruned-int8", max_new_tokens=4, price=(0.01, 0.01))
    with costmw.Chain(targets=[target]) as chain:
        for ticket in [data.validation[0].last_user_text, data.validation[1].last_user_text]:
            answer = chain.complete([{"role": "user", "content": ticket}], model=target.name)
            print(f"{ticket!r} -> {answer.text.strip()!r} (served by {answer.served_by})")


if __name__ == "__main__":
    main()
