"""The generated long-document set of the minifier benchmark: reproducible, and every answer checkable."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from costmw._tokens import count_tokens

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_minifier_docs", ROOT / "benchmarks" / "gen_minifier_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_documents_are_what_the_script_makes() -> None:
    gen = _generator()
    made = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in gen.generate())
    assert made == (ROOT / "benchmarks" / "data" / "minifier_docs.jsonl").read_text(encoding="utf-8")


def test_documents_are_long_and_each_answer_is_in_its_document_only() -> None:
    items = _generator().generate()
    splits: dict[str, set[str]] = {"dev": set(), "test": set()}
    for it in items:
        splits[it["split"]].add(it["template"])
        assert count_tokens(it["document"], "gpt-4o") >= 1000
        assert len(it["questions"]) == 2
        for q in it["questions"]:
            assert q["references"][0] in it["document"]
            assert not any(r.lower() in q["lead"].lower() for r in q["references"])
    assert not splits["dev"] & splits["test"]  # no template is both tuned on and reported on
    assert sum(it["split"] == "test" for it in items) >= 40
    # the values change from variant to variant
    firsts = {it["questions"][0]["references"][0] for it in items if it["template"] == "p03"}
    assert len(firsts) >= 5
