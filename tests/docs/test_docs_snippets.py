"""Every Python snippet in README.md and docs/*.md runs, offline, as part of the test suite.

The snippets of one page run in order in one namespace (a page builds its example up step by
step), in a fresh working directory. Paid models are answered by costmw's ``FakeOpenAIServer``:
every ``LiteLLMTarget`` and LangChain's OpenAI client are pointed at it, and ``forbid_paid_calls``
makes any call that would still leave the machine fail. A block right after the comment
``<!-- no-run: why -->`` is not run (for the few that need what a test cannot have).

A small harness rather than pytest-markdown-docs or phmdoctest: neither is in the project's
environment (nothing is installed at test time), and ours gives each page one namespace and the
fake server, and finds new pages and blocks by itself.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget, forbid_paid_calls

from costmw.testing import FakeOpenAIServer, install_batch_routes

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_NO_RUN = re.compile(r"^\s*<!--\s*no-run\b.*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    code: str
    run: bool


def snippets(page: Path) -> list[Snippet]:
    """The ```python blocks of a Markdown page, in order, with whether each is to be run."""
    out: list[Snippet] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i, previous = 0, ""
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, lang, start = fence.group(1), fence.group(2), i + 1
        i += 1
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            i += 1
        if lang in ("python", "py"):
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[start:i]]
            out.append(Snippet(page, start, "\n".join(body) + "\n", not _NO_RUN.match(previous)))
        previous, i = "", i + 1
    return out


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server every paid model of a snippet reaches, in a fresh folder."""
    with FakeOpenAIServer() as server:
        install_batch_routes(server)  # the provider Batch API too
        original = LiteLLMTarget.__init__

        def to_fake(self: LiteLLMTarget, model: str, **options: Any) -> None:
            options.setdefault("api_base", server.url)
            options.setdefault("api_key", "sk-docs-fake-key-0000000000000000")
            original(self, model, **options)

        monkeypatch.setattr(LiteLLMTarget, "__init__", to_fake)
        for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
            monkeypatch.setenv(name, server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-fake-key-0000000000000000")
        monkeypatch.setenv("COSTMW_FORBID_PAID_CALLS", "1")
        monkeypatch.chdir(tmp_path)
        try:
            with forbid_paid_calls():
                yield server
        finally:
            _reset_process_state()


def _reset_process_state() -> None:
    """Undo what snippets set for the whole process (LangChain's global LLM cache, costmw's
    default chain, tracing), so the tests that run after the docs see none of it."""
    import costmw
    import costmw.tracing

    costmw.set_default_chain(None)
    costmw.tracing.disable()
    try:
        from langchain_core.globals import get_llm_cache, set_llm_cache
    except ImportError:
        return
    if get_llm_cache() is not None:
        set_llm_cache(None)


def run(code: str, where: str, namespace: dict[str, Any]) -> None:
    """Run one snippet; a snippet with a top-level ``await`` (as in a notebook) runs on a new loop."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(compiled, namespace))
    else:
        exec(compiled, namespace)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_snippet_of_the_page_runs(page: Path, offline: FakeOpenAIServer) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for snippet in snippets(page):
        if not snippet.run:
            continue
        where = f"{page.relative_to(REPO)}:{snippet.line}"
        try:
            run(snippet.code, where, namespace)
        except ModuleNotFoundError as exc:  # an optional extra this environment lacks: not the docs' fault
            if (exc.name or "").split(".")[0] in ("costmw", ""):
                raise AssertionError(f"the snippet at {where} failed: {exc}") from exc
            pytest.skip(f"the snippet at {where} needs {exc.name}, which is not installed here")
        except Exception as exc:
            raise AssertionError(f"the snippet at {where} failed: {type(exc).__name__}: {exc}") from exc
    for value in list(namespace.values()):
        close = getattr(value, "close", None)
        if type(value).__name__ == "Chain" and callable(close):
            close()


def test_the_harness_finds_blocks_and_honours_no_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a GPU -->\n```python\ny = 2\n```\n"
                    "- a list item:\n\n  ```python\n  z = 3\n  ```\n```yaml\na: 1\n```\n")
    found = snippets(page)
    assert [(s.code, s.run) for s in found] == [("x = 1\n", True), ("y = 2\n", False), ("z = 3\n", True)]
    assert [s.line for s in found] == [3, 8, 13]
