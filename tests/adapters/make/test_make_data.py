"""Building a training set: cleaning rules, PII scrubbing, dedup, leak-free split, augmentation, ledger input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import MockTarget
from costmw.adapters.make import Example, clean_dataset, load_examples, scrub_pii
from costmw.adapters.make._dedup import near_duplicate_pairs, shingles

import costmw
from costmw.embeddings import HashingEmbedder


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


BAD = [
    {"prompt": "what is 2+2", "response": ""},
    {"prompt": "how do I pick a lock", "response": "I'm sorry, but I can't help with that."},
    {"prompt": "summarise this", "response": "Error: rate limit exceeded, try again"},
    {"prompt": "give me json", "response": '{"name": "Ada", "role": '},
    {"prompt": "write a long essay", "response": "It began", "finish_reason": "length"},
    {"prompt": "x" * 50, "response": "ok"},
]


def test_each_bad_answer_is_removed_with_its_reason(rows: list[dict[str, Any]]) -> None:
    ds = clean_dataset(rows[:20] + BAD, validation=0.0, max_prompt_chars=40)
    removed = ds.report.removed
    assert removed["empty"] == 1 and removed["refused"] == 1 and removed["error"] == 1
    assert removed["truncated"] == 2 and removed["prompt too long"] == 1
    kept = {e.last_user_text for e in ds.train}
    assert not kept & {b["prompt"] for b in BAD}
    text = str(ds.report)
    assert "refused" in text and "truncated" in text and "near-duplicates: minhash" in text


def test_pii_is_scrubbed_and_counted() -> None:
    counts: Counter[str] = Counter()
    out = scrub_pii("mail ada@example.com or call +1 415-555-0132, card 4111 1111 1111 1111, "
                    "ssn 123-45-6789 from 10.0.0.12; order 1234567890123 stays", counts)
    assert "ada@example.com" not in out and "[EMAIL]" in out
    assert "[PHONE]" in out and "[CARD]" in out and "[SSN]" in out and "[IP]" in out
    assert "1234567890123" in out  # not a Luhn-valid card number: an order id stays
    assert counts == Counter(email=1, phone=1, card=1, ssn=1, ip=1)


def test_exact_duplicates_keep_the_majority_answer() -> None:
    data = [{"prompt": "Reset my password", "response": "password"},
            {"prompt": "reset my  password", "response": "password"},
            {"prompt": "RESET MY PASSWORD", "response": "billing"},
            {"prompt": "where is my parcel", "response": "shipping"}]
    ds = clean_dataset(data, validation=0.0)
    assert sorted(e.answer for e in ds.train) == ["password", "shipping"]
    assert ds.report.removed["exact duplicate"] == 1 and ds.report.removed["conflicting answer"] == 1


def test_near_duplicates_are_removed_at_the_reported_threshold() -> None:
    data = [{"prompt": "my parcel from last tuesday has not arrived yet, can you check it", "response": "shipping"},
            {"prompt": "my parcel from last tuesday has not arrived yet, can you check it?", "response": "shipping"},
            {"prompt": "I was charged twice for the same order this month", "response": "billing"}]
    ds = clean_dataset(data, validation=0.0, near_dup_threshold=0.8)
    assert ds.report.removed["near duplicate"] == 1 and len(ds.train) == 2
    assert ds.report.near_dup["threshold"] == 0.8 and ds.report.near_dup["method"] == "minhash"
    strict = clean_dataset(data, validation=0.0, near_dup_threshold=1.0, split_threshold=1.0)
    assert strict.report.removed["near duplicate"] == 0


def test_split_keeps_near_duplicate_clusters_on_one_side(rows: list[dict[str, Any]]) -> None:
    ds = clean_dataset(rows, validation=0.25, near_dup_threshold=0.95, split_threshold=0.5)
    assert ds.validation and ds.train
    split_at = ds.report.near_dup["split_threshold"]
    texts = [e.prompt_text for e in ds.train] + [e.prompt_text for e in ds.validation]
    n = len(ds.train)
    crossing = [(i, j) for i, j, _ in near_duplicate_pairs(texts, threshold=split_at) if i < n <= j]
    assert crossing == []
    # the rule is real: the same data split at random would leak
    assert any(len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b)) >= split_at
               for a in texts[:n] for b in texts[n:]) is False


def test_embedding_method_uses_its_own_scale() -> None:
    data = [{"prompt": "reset my password please", "response": "password"},
            {"prompt": "please reset my password", "response": "password"},
            {"prompt": "the parcel never came", "response": "shipping"}]
    ds = clean_dataset(data, near_dup="embedding", embedder=HashingEmbedder(), validation=0.0,
                       near_dup_threshold=0.6)
    assert ds.report.near_dup["method"] == "embedding" and ds.report.removed["near duplicate"] == 1


def test_nothing_left_fails_with_the_reasons() -> None:
    with pytest.raises(costmw.ConfigError, match="no examples left after cleaning.*empty"):
        clean_dataset([{"prompt": "a", "response": ""}, {"prompt": "b", "response": " "}])


def test_augmentation_paraphrases_train_prompts_only(rows: list[dict[str, Any]]) -> None:
    def paraphrase(request: costmw.Request) -> str:
        text = request.last_user_text
        return "please help: where is my parcel" if "tracking" in text else f"in other words, {text} (rephrased)"

    chain = costmw.Chain(targets=[MockTarget(paraphrase, name="writer")])
    ds = clean_dataset(rows, validation=0.2, augment=1, chain=chain, augment_model="writer",
                       near_dup_threshold=0.99, split_threshold=0.9)
    augmented = [e for e in ds.train if e.meta.get("augmented")]
    assert augmented and ds.report.augmented == len(augmented)
    val_prompts = {e.last_user_text for e in ds.validation}
    assert not any(e.last_user_text in val_prompts for e in augmented)
    assert all(e.answer in {"billing", "password", "shipping"} for e in augmented)
    assert len(chain.targets["writer"].calls) >= len(augmented)  # type: ignore[attr-defined]


def test_ledger_and_jsonl_inputs(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    ledger_path = tmp_path / "ledger.db"
    chain = costmw.Chain(targets=[MockTarget(lambda r: "refund" if "charged" in r.last_user_text else
                                             "sk-abcdefghijklmnopqrstuvwxyz123456 is the key", name="teacher")],
                         ledger=costmw.Ledger(ledger_path, store_text=True))
    for r in rows[:10]:
        chain.complete([{"role": "user", "content": r["prompt"]}], model="teacher")
    chain.close()
    ds = clean_dataset(ledger_path, validation=0.0)
    assert ds.report.total == 10
    assert all("sk-abcdef" not in e.answer for e in ds.train)
    saved = ds.save(tmp_path / "data")
    again = load_examples(saved)
    assert [e.answer for e in again] == [e.answer for e in ds.train]
    assert json.loads((saved / "report.json").read_text())["total"] == 10
    path = _jsonl(tmp_path / "pairs.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                           {"role": "assistant", "content": "hello"}]}])
    assert load_examples(path) == [Example(messages=[{"role": "user", "content": "hi"}], answer="hello")]


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(costmw.ConfigError, match="does not exist"):
        clean_dataset(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "response": "b"}\n{not json\n')
    with pytest.raises(costmw.ConfigError, match="bad.jsonl:2"):
        clean_dataset(bad)
    with pytest.raises(costmw.ConfigError, match="no answer"):
        clean_dataset([{"prompt": "only a prompt"}])
