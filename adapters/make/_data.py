"""Build a training set: clean, scrub PII, dedup, split without leakage, and optionally augment.

:func:`clean_dataset` takes a JSONL file of prompt/response pairs, a ledger, or a list of
examples, and returns a :class:`Dataset` whose :class:`CleanReport` says what was removed and why,
with the near-duplicate thresholds that were used.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, redact_secrets

from ._augment import augment_examples
from ._dedup import cluster_ids, default_thresholds, near_duplicate_pairs, split_clusters
from ._examples import Example, examples_from_ledger, load_examples, write_jsonl

__all__ = ["CleanReport", "Dataset", "clean_dataset", "scrub_pii"]

log = logging.getLogger("costmw.make")

_PII: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    ("card", re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")),
    ("ssn", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    ("phone", re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.\-]\d{3,4}[\s.\-]\d{3,4}(?!\w)")),
    ("ip", re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")),
]
_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m|i am) sorry[^.!\n]{0,60}?\b(?:can(?:no|')t|unable|not able|won'?t)"
    r"|i (?:can(?:no|')t|am unable to|won'?t|am not able to) (?:help|assist|comply|provide|do that|answer)"
    r"|as an ai(?: language model)?\b|i'?m (?:not able|unable) to (?:help|assist|comply|provide|answer))",
    re.IGNORECASE)
_ERROR = re.compile(
    r"^\W*(?:error\b|exception\b|traceback \(most recent call last\)|\{\s*\"error\"|rate limit"
    r"|internal server error|service unavailable|bad gateway|gateway time-?out)", re.IGNORECASE)

_JSON_START = re.compile(r'^(?:\{\s*"|\[\s*[{\["\d\-])')


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scrub_pii(text: str, counts: Counter[str] | None = None) -> str:
    """Replace e-mail addresses, card numbers (Luhn-valid), SSNs, phone numbers, IPv4 addresses and
    secrets with placeholders such as ``[EMAIL]``; ``counts`` tallies what was replaced."""
    tally: Counter[str] = counts if counts is not None else Counter()

    for kind, pattern in _PII:
        def sub(m: re.Match[str], kind: str = kind) -> str:
            if kind == "card" and not _luhn(re.sub(r"\D", "", m.group())):
                return m.group()
            tally[kind] += 1
            return f"[{kind.upper()}]"

        text = pattern.sub(sub, text)
    redacted = redact_secrets(text)
    if redacted != text:
        tally["secret"] += redacted.count("[REDACTED]") - text.count("[REDACTED]")
    return redacted


def _truncated(ex: Example) -> bool:
    a = ex.answer.rstrip()
    if ex.meta.get("finish_reason") == "length":
        return True
    if a.count("```") % 2:
        return True
    if _JSON_START.match(a) and a[-1:] not in "}]":
        return True
    return a.endswith(("...", "…")) and len(a) > 40


@dataclass
class CleanReport:
    """What cleaning did: counts per removal reason, a few removed prompts per reason, PII scrubbed,
    the near-duplicate method and thresholds, and the sizes of the split."""

    total: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    pii: Counter[str] = field(default_factory=Counter)
    near_dup: dict[str, Any] = field(default_factory=dict)
    train: int = 0
    validation: int = 0
    clusters_in_validation: int = 0
    augmented: int = 0
    augment_failed: int = 0
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, ex: Example) -> None:
        self.removed[reason] += 1
        sample = self.samples.setdefault(reason, [])
        if len(sample) < 3:
            text = " ".join(ex.last_user_text.split())
            sample.append(text if len(text) <= 80 else "…" + text[-79:])

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "removed": dict(self.removed), "samples": self.samples,
                "pii_scrubbed": dict(self.pii), "near_duplicates": self.near_dup, "train": self.train,
                "validation": self.validation, "clusters_in_validation": self.clusters_in_validation,
                "augmented": self.augmented, "augment_failed": self.augment_failed, "notes": self.notes}

    def __str__(self) -> str:
        lines = [f"read {self.total} examples"]
        for reason, n in self.removed.most_common():
            eg = "; ".join(repr(s) for s in self.samples.get(reason, [])[:2])
            lines.append(f"  removed {n:>5}  {reason:<18} e.g. {eg}")
        if self.pii:
            lines.append("  scrubbed PII: " + ", ".join(f"{k} x{v}" for k, v in self.pii.most_common()))
        nd = self.near_dup
        if nd:
            lines.append(f"  near-duplicates: {nd['method']}, removed at similarity >= {nd['threshold']}, "
                         f"split clusters at >= {nd['split_threshold']}")
        if self.augmented or self.augment_failed:
            lines.append(f"  augmented: {self.augmented} paraphrased prompts added to train"
                         f" ({self.augment_failed} failed or leaked)")
        lines.append(f"kept {self.train} train / {self.validation} validation "
                     f"({self.clusters_in_validation} clusters held out whole)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Dataset:
    """A cleaned training set: ``train`` and ``validation`` examples and the :class:`CleanReport`."""

    train: list[Example]
    validation: list[Example]
    report: CleanReport

    def save(self, directory: str | Path) -> Path:
        """Write ``train.jsonl``, ``validation.jsonl`` and ``report.json`` into ``directory``."""
        d = Path(directory)
        write_jsonl(d / "train.jsonl", self.train)
        write_jsonl(d / "validation.jsonl", self.validation)
        (d / "report.json").write_text(json.dumps(self.report.to_dict(), indent=2), encoding="utf-8")
        return d


def _rule(ex: Example, max_prompt_chars: int, max_answer_chars: int) -> str | None:
    if ex.meta.get("error") or _ERROR.match(ex.answer):
        return "error"
    if not ex.answer.strip() or not ex.prompt_text.strip():
        return "empty"
    if _REFUSAL.match(ex.answer):
        return "refused"
    if _truncated(ex):
        return "truncated"
    if len(ex.prompt_text) > max_prompt_chars:
        return "prompt too long"
    if len(ex.answer) > max_answer_chars:
        return "answer too long"
    return None


def _scrub(ex: Example, counts: Counter[str]) -> Example:
    messages = [{**m, "content": scrub_pii(m["content"], counts)} if isinstance(m.get("content"), str) else m
                for m in ex.messages]
    return Example(messages=messages, answer=scrub_pii(ex.answer, counts), meta=ex.meta)


def _exact_dedup(examples: list[Example], report: CleanReport) -> list[Example]:
    """One example per distinct prompt, with the answer given most often (the rest are conflicts)."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        key = " ".join(ex.prompt_text.lower().split())
        groups.setdefault(key, []).append(ex)
    out = []
    for group in groups.values():
        votes = Counter(" ".join(e.answer.split()) for e in group)
        best = votes.most_common(1)[0][0]
        keep = next(e for e in group if " ".join(e.answer.split()) == best)
        out.append(keep)
        for e in group:
            if e is not keep:
                report.drop("exact duplicate" if " ".join(e.answer.split()) == best else "conflicting answer", e)
    return out


def clean_dataset(data: Any, *, ledger_model: str | None = None, near_dup: str = "minhash",
                  near_dup_threshold: float | None = None, split_threshold: float | None = None,
                  validation: float = 0.1, scrub: bool = True, max_prompt_chars: int = 8000,
                  max_answer_chars: int = 4000, augment: int = 0, chain: Any = None,
                  augment_model: str | None = None, embedder: Any = None, seed: int = 0,
                  out: str | Path | None = None) -> Dataset:
    """Clean ``data`` (JSONL path, dataset folder, ledger ``.db`` or list) into a train/validation split.

    Removes error, empty, refused, truncated and over-long answers; scrubs PII; removes exact
    duplicates (keeping the majority answer) and near-duplicates (``near_dup``: "minhash" or
    "embedding", at ``near_dup_threshold``); then holds out ``validation`` of the examples as whole
    clusters of prompts similar at ``split_threshold``. ``augment`` paraphrases each training prompt
    that many times through ``chain``. Raises ConfigError when nothing is left.
    """
    remove_at, split_at = default_thresholds(near_dup)
    remove_at = remove_at if near_dup_threshold is None else near_dup_threshold
    split_at = min(split_at, remove_at) if split_threshold is None else split_threshold
    if split_at > remove_at:
        raise ConfigError(f"split_threshold ({split_at}) must not exceed near_dup_threshold ({remove_at})")
    if isinstance(data, (str, Path)) and str(data).endswith((".db", ".sqlite", ".sqlite3")):
        examples = examples_from_ledger(data, model=ledger_model)
    else:
        examples = load_examples(data)
    report = CleanReport(total=len(examples))
    kept = []
    for ex in examples:
        reason = _rule(ex, max_prompt_chars, max_answer_chars)
        if reason:
            report.drop(reason, ex)
        else:
            kept.append(_scrub(ex, report.pii) if scrub else ex)
    kept = _exact_dedup(kept, report)
    texts = [ex.prompt_text for ex in kept]
    pairs = near_duplicate_pairs(texts, method=near_dup, threshold=split_at, embedder=embedder)
    dup_of = cluster_ids(len(kept), [p for p in pairs if p[2] >= remove_at])
    for i, root in enumerate(dup_of):
        if root != i:
            report.drop("near duplicate", kept[i])
    keep_idx = [i for i, root in enumerate(dup_of) if root == i]
    report.near_dup = {"method": near_dup, "threshold": remove_at, "split_threshold": split_at,
                       "pairs_found": sum(1 for p in pairs if p[2] >= remove_at)}
    if not keep_idx:
        raise ConfigError(f"no examples left after cleaning ({_why(report)}); check the data or loosen the limits")
    remap = {old: new for new, old in enumerate(keep_idx)}
    survivors = [kept[i] for i in keep_idx]
    split_pairs = [(remap[i], remap[j], s) for i, j, s in pairs if i in remap and j in remap]
    clusters = cluster_ids(len(survivors), split_pairs)
    train_idx, val_idx = split_clusters(clusters, validation, seed)
    train = [survivors[i] for i in train_idx]
    val = [survivors[i] for i in val_idx]
    if validation and not val:
        report.notes.append(f"no validation split: all {len(survivors)} prompts form one near-duplicate cluster at "
                            f"similarity >= {split_at}; raise split_threshold to split them")
    if not train:
        raise ConfigError(f"only {len(survivors)} example(s) left after cleaning ({_why(report)}): "
                          "nothing remains for training; add data or lower `validation`")
    if augment:
        train = augment_examples(train, val, augment=augment, chain=chain, model=augment_model,
                                 method=near_dup, threshold=split_at, embedder=embedder, report=report)
    report.train, report.validation = len(train), len(val)
    report.clusters_in_validation = len({clusters[i] for i in val_idx})
    dataset = Dataset(train=train, validation=val, report=report)
    if out is not None:
        dataset.save(out)
    log.info("costmw data: %s", report)
    return dataset


def _why(report: CleanReport) -> str:
    return ", ".join(f"{n} {r}" for r, n in report.removed.most_common()) or "none removed"


def split_only(examples: Sequence[Example], validation: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Split already-clean examples by MinHash clusters (used when a tool gets one file, not a split)."""
    _, split_at = default_thresholds("minhash")
    pairs = near_duplicate_pairs([e.prompt_text for e in examples], method="minhash", threshold=split_at)
    tr, va = split_clusters(cluster_ids(len(examples), pairs), validation, seed)
    return [examples[i] for i in tr], [examples[i] for i in va]
