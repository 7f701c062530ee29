"""``costmw data | tune lora | tune full | distill | prune | quantize``: the model-making tools on the command line.

``mount(costmw_app)`` adds them to the ``costmw`` command (an unnamed ``add_typer``: they join the top level).
Heavy libraries load inside each command, so ``costmw --help`` stays fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

__all__ = ["app", "mount"]

app = typer.Typer(no_args_is_help=True, help="Make cheaper local models from your own traffic.")
tune_app = typer.Typer(no_args_is_help=True, help="Fine-tune a local model on a training set.")
app.add_typer(tune_app, name="tune")

OUT = typer.Option(..., "--out", "-o", help="Folder to write (the model and its costmw-target.json).")
STEPS = typer.Option(None, help="Optimizer steps (default: one pass over the data per --epochs).")
RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint in --out.")
PRICE = typer.Option(None, help="Price of the target, 'input,output' USD per 1M tokens.")


def _price(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter("use --price INPUT,OUTPUT (USD per 1M tokens), e.g. 0.02,0.02") from None
    return a, b


def _modules(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


@contextlib.contextmanager
def _friendly() -> Iterator[None]:
    """Turn configuration mistakes and interrupts into a one-line message and an exit code."""
    from costmw.plugin_api import CostmwError

    try:
        yield
    except (CostmwError, ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt as exc:
        typer.secho(str(exc) or "interrupted", fg="yellow", err=True)
        raise typer.Exit(130) from None


def _show(result: Any) -> None:
    typer.echo(str(result))
    if not getattr(result, "passed", True):
        raise typer.Exit(1)


@app.command("data")
def data_cmd(
    source: Path = typer.Argument(None, help="JSONL of prompt/response pairs, or a ledger .db."),
    out: Path = OUT,
    from_ledger: Path = typer.Option(None, help="Read the pairs from this ledger (made with store_text=True)."),
    teacher_model: str = typer.Option(None, help="Keep only ledger answers served by this model."),
    near_dup: str = typer.Option("minhash", help="Near-duplicate method: minhash or embedding."),
    threshold: float = typer.Option(None, help="Similarity at which near-duplicates are removed."),
    split_threshold: float = typer.Option(None, help="Similarity at which prompts share a side of the split."),
    validation: float = typer.Option(0.1, help="Share held out for validation."),
    scrub: bool = typer.Option(True, help="Scrub e-mails, phones, cards, SSNs, IPs and secrets."),
    max_prompt_chars: int = typer.Option(8000), max_answer_chars: int = typer.Option(4000),
    augment: int = typer.Option(0, help="Paraphrases per training prompt (needs --augment-model)."),
    augment_model: str = typer.Option(None, help="Model that writes the paraphrases (through LiteLLM)."),
    seed: int = typer.Option(0),
) -> None:
    """Build a clean training set: remove bad and duplicate pairs, scrub PII, split without leakage."""
    from ._data import clean_dataset

    path = from_ledger or source
    if path is None:
        raise typer.BadParameter("give a JSONL file or --from-ledger LEDGER.db")
    with _friendly():
        chain = None
        if augment:
            import costmw

            chain = costmw.Chain(auto_targets=True)
        dataset = clean_dataset(path, ledger_model=teacher_model, near_dup=near_dup, near_dup_threshold=threshold,
                                split_threshold=split_threshold, validation=validation, scrub=scrub,
                                max_prompt_chars=max_prompt_chars, max_answer_chars=max_answer_chars,
                                augment=augment, chain=chain, augment_model=augment_model, seed=seed, out=out)
        typer.echo(str(dataset.report))
        typer.echo(f"wrote {out}/train.jsonl, validation.jsonl, report.json")


@tune_app.command("lora")
def lora_cmd(
    base: Path = typer.Argument(..., help="Base model folder (transformers)."),
    data: Path = typer.Argument(..., help="Training data: a `costmw data` folder or a JSONL."),
    out: Path = OUT,
    rank: int = typer.Option(8), alpha: float = typer.Option(None, help="Default: 2 x rank."),
    dropout: float = typer.Option(0.05),
    target_modules: str = typer.Option(None, help="Comma-separated; default per architecture."),
    steps: int = STEPS, epochs: float = typer.Option(1.0), batch_size: int = typer.Option(8),
    lr: float = typer.Option(2e-4), max_length: int = typer.Option(256), seed: int = typer.Option(0),
    save_every: int = typer.Option(50), resume: bool = RESUME, eval_answers: int = typer.Option(32),
    name: str = typer.Option(None), price: str = PRICE,
) -> None:
    """Supervised LoRA fine-tuning (loss on answer tokens only); writes the adapter and a manifest."""
    from ._lora import tune_lora

    with _friendly():
        _show(tune_lora(base, data, out, rank=rank, alpha=alpha, dropout=dropout,
                        target_modules=_modules(target_modules), steps=steps, epochs=epochs, batch_size=batch_size,
                        lr=lr, max_length=max_length, seed=seed, save_every=save_every, resume=resume,
                        eval_answers=eval_answers, name=name, price=_price(price)))


@tune_app.command("full")
def full_cmd(
    base: Path = typer.Argument(...), data: Path = typer.Argument(...), out: Path = OUT,
    layers: str = typer.Option("last:2", help="'all', 'last:4', 'first:2', '0,1,5' or '20-29'."),
    train_embeddings: bool = typer.Option(False), steps: int = STEPS, epochs: float = typer.Option(1.0),
    batch_size: int = typer.Option(8), lr: float = typer.Option(5e-5), max_length: int = typer.Option(256),
    seed: int = typer.Option(0), save_every: int = typer.Option(50), resume: bool = RESUME,
    eval_answers: int = typer.Option(32), name: str = typer.Option(None), price: str = PRICE,
) -> None:
    """Full fine-tuning of selected decoder layers (for when LoRA is not enough)."""
    from ._full import tune_full

    with _friendly():
        _show(tune_full(base, data, out, layers=layers, train_embeddings=train_embeddings, steps=steps,
                        epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, seed=seed,
                        save_every=save_every, resume=resume, eval_answers=eval_answers, name=name,
                        price=_price(price)))


@app.command("distill")
def distill_cmd(
    out: Path = OUT,
    teacher: Path = typer.Option(None, help="Local teacher model (logit or sequence-level distillation)."),
    data: Path = typer.Option(None, help="Prompts (and answers) to distil on."),
    student: Path = typer.Option(None, help="Student model; default: the teacher with every other layer."),
    from_ledger: Path = typer.Option(None, help="The flywheel: distil the API answers recorded in this ledger."),
    base: Path = typer.Option(None, help="With --from-ledger: the small local model the LoRA student adapts."),
    teacher_model: str = typer.Option(None, help="With --from-ledger: only answers served by this model."),
    method: str = typer.Option("logits", help="logits or sequence."),
    bar: float = typer.Option(None, help="Register only if agreement with the teacher reaches this (0-1)."),
    match: str = typer.Option("exact", help="How answers agree: exact or f1."),
    temperature: float = typer.Option(2.0), alpha: float = typer.Option(0.5),
    lora: bool = typer.Option(False, help="Train the student with LoRA."),
    steps: int = STEPS, epochs: float = typer.Option(1.0), batch_size: int = typer.Option(8),
    lr: float = typer.Option(None, help="Default: 2e-4 (ledger/LoRA), 1e-4 (distill)."),
    max_length: int = typer.Option(256), seed: int = typer.Option(0), resume: bool = RESUME,
    name: str = typer.Option(None), price: str = PRICE,
) -> None:
    """Distil a teacher into a smaller student; with --from-ledger, the whole flywheel in one command."""
    with _friendly():
        if from_ledger is not None:
            from ._flywheel import distill_from_ledger

            if base is None:
                raise typer.BadParameter("--from-ledger needs --base (the small local model to adapt)")
            result = distill_from_ledger(from_ledger, base, out, teacher_model=teacher_model,
                                         bar=0.8 if bar is None else bar, match=match, steps=steps,
                                         epochs=epochs, batch_size=batch_size,
                                         lr=lr or 2e-4, max_length=max_length, seed=seed, resume=resume,
                                         name=name, price=_price(price))
        else:
            from ._distill import distill

            if data is None:
                raise typer.BadParameter("give --data (or --from-ledger for the flywheel)")
            result = distill(teacher, data, out, student=student, method=method, temperature=temperature,
                             alpha=alpha, lora=lora, bar=bar, match=match, steps=steps, epochs=epochs,
                             batch_size=batch_size, lr=lr or 1e-4, max_length=max_length, seed=seed,
                             resume=resume, name=name, price=_price(price))
        _show(result)


@app.command("prune")
def prune_cmd(
    model: Path = typer.Argument(...), out: Path = OUT,
    method: str = typer.Option("structured", help="structured (smaller and faster) or magnitude (sparsity)."),
    amount: float = typer.Option(0.3, help="Fraction to remove."),
    target: str = typer.Option("both", help="Structured: mlp, heads or both."),
    data: Path = typer.Option(None, help="Calibration, quality and recovery data."),
    recover_steps: int = typer.Option(0, help="Steps of recovery fine-tuning after pruning."),
    recover_lr: float = typer.Option(5e-5), seed: int = typer.Option(0), resume: bool = RESUME,
    name: str = typer.Option(None), price: str = PRICE,
) -> None:
    """Prune a model and report size, speed and quality before and after (and after recovery)."""
    from ._prune import prune

    with _friendly():
        _show(prune(model, out, method=method, amount=amount, target=target, data=data, recover_steps=recover_steps,
                    recover_lr=recover_lr, seed=seed, resume=resume, name=name, price=_price(price)))


@app.command("quantize")
def quantize_cmd(
    model: Path = typer.Argument(...), out: Path = OUT,
    method: str = typer.Option("int8", help="int8 (CPU), gguf (llama.cpp), bnb-8bit or bnb-4bit (CUDA)."),
    gguf_type: str = typer.Option("q8_0", help="With gguf: q8_0, f16 or f32."),
    data: Path = typer.Option(None, help="Data to measure quality before and after."),
    name: str = typer.Option(None), price: str = PRICE,
) -> None:
    """Quantize a model and report its size, speed and quality."""
    from ._quantize import quantize

    with _friendly():
        _show(quantize(model, out, method=method, gguf_type=gguf_type, data=data, name=name, price=_price(price)))


def mount(parent: typer.Typer) -> None:
    """Add ``data``, ``tune``, ``distill``, ``prune`` and ``quantize`` to ``parent`` (the ``costmw`` command)."""
    parent.add_typer(app)


def main() -> None:  # pragma: no cover - for `python -m costmw.adapters.make.cli`
    app(prog_name="costmw")


if __name__ == "__main__":  # pragma: no cover
    main()
