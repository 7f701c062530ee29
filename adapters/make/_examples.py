"""Training examples: a prompt (OpenAI chat messages) and the answer to learn, read from JSONL or a ledger.

Every tool in :mod:`costmw.adapters.make` takes its data through :func:`load_examples`, so a
JSONL file, a folder written by :func:`~costmw.adapters.make.clean_dataset`, a ledger and a plain
list of examples are interchangeable.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costmw.plugin_api import ConfigError, Message, message_text

__all__ = ["Example", "examples_from_ledger", "load_examples", "read_jsonl", "write_jsonl"]


@dataclass(slots=True)
class Example:
    """One training pair: ``messages`` (the prompt, ending with the user's turn) and ``answer``."""

    messages: list[Message]
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_text(self) -> str:
        """The prompt as plain text (every turn, one per line), used for dedup and reports."""
        return "\n".join(message_text(m) for m in self.messages)

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return message_text(m)
        return self.prompt_text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messages": self.messages, "response": self.answer}
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "example") -> Example:
        """Accepts ``prompt``/``response`` (or ``completion``/``answer``) and ``messages`` forms.

        ``messages`` may end with the assistant's answer, which then becomes ``answer``.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        answer = next((data[k] for k in ("response", "completion", "answer", "output") if k in data), None)
        if "messages" in data:
            messages = [dict(m) for m in data["messages"]]
            if answer is None and messages and messages[-1].get("role") == "assistant":
                answer = messages.pop().get("content")
        elif "prompt" in data or "input" in data:
            prompt = data.get("prompt", data.get("input"))
            messages = [dict(m) for m in prompt] if isinstance(prompt, list) else [
                {"role": "user", "content": "" if prompt is None else str(prompt)}]
            if data.get("system"):
                messages.insert(0, {"role": "system", "content": str(data["system"])})
        else:
            raise ConfigError(f"{where}: needs 'prompt' (or 'messages') and 'response'; got keys {sorted(data)}")
        if answer is None:
            raise ConfigError(f"{where}: has no answer; add 'response' (or end 'messages' with an assistant turn)")
        meta = dict(data.get("meta") or {})
        if data.get("finish_reason"):
            meta["finish_reason"] = data["finish_reason"]
        if data.get("error"):
            meta["error"] = str(data["error"])
        return cls(messages=messages, answer=str(answer), meta=meta)


def read_jsonl(path: str | Path) -> list[Example]:
    """Read examples from a JSONL file; a bad line fails with its line number."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"data file {str(p)!r} does not exist")
    out = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{p}:{n}: not valid JSON ({exc.msg})") from exc
            out.append(Example.from_dict(data, where=f"{p}:{n}"))
    return out


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write examples as JSONL, atomically (a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, p)
    return p


def examples_from_ledger(path: str | Path, *, model: str | None = None, include_errors: bool = True) -> list[Example]:
    """Prompt/answer pairs recorded by a ledger made with ``store_text=True``.

    ``model`` keeps only answers served by that model (the teacher). Rows that failed are kept
    (marked with their error) when ``include_errors`` is true, so cleaning can count them.
    """
    from costmw.plugin_api import Ledger

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"ledger {str(p)!r} does not exist")
    ledger = Ledger(p)
    try:
        rows = ledger.rows()
    finally:
        ledger.close()
    out = []
    for row in rows:
        if row.prompt is None:
            continue
        if model is not None and model not in (row.model, row.served_by, f"target:{model}", row.requested_model):
            continue
        if row.error and not include_errors:
            continue
        meta: dict[str, Any] = {"request_id": row.request_id, "model": row.model, "served_by": row.served_by}
        if row.error:
            meta["error"] = row.error
        finish = (row.info or {}).get("finish_reason")
        if finish:
            meta["finish_reason"] = finish
        out.append(Example(messages=[dict(m) for m in row.prompt], answer=row.answer or "", meta=meta))
    if not out:
        raise ConfigError(
            f"ledger {str(p)!r} holds no prompt/answer text"
            + (f" served by {model!r}" if model else "")
            + "; record calls with costmw.Ledger(path, store_text=True)")
    return out


def load_examples(data: Any, split: str = "train") -> list[Example]:
    """Examples from a list, a JSONL file, or a folder holding ``train.jsonl``/``validation.jsonl``."""
    if hasattr(data, "train") and hasattr(data, "validation"):
        return list(getattr(data, split))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [ex if isinstance(ex, Example) else Example.from_dict(ex, where=f"data[{i}]")
                for i, ex in enumerate(data)]
    if isinstance(data, (str, Path)):
        p = Path(data)
        if p.is_dir():
            file = p / f"{split}.jsonl"
            if not file.exists():
                raise ConfigError(f"folder {str(p)!r} has no {file.name}; make one with `costmw data`")
            return read_jsonl(file)
        if p.suffix in (".db", ".sqlite", ".sqlite3"):
            return examples_from_ledger(p)
        return read_jsonl(p)
    raise ConfigError(f"data must be a JSONL path, a dataset folder or a list of examples, got {type(data).__name__}")
