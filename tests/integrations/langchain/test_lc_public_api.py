"""The public names of costmw.integrations.langchain, and that importing costmw does not load LangChain."""

from __future__ import annotations

import subprocess
import sys

import costmw.integrations.langchain as lc

EXPECTED = {
    "CostmwCache", "CostmwCallbackHandler", "CostmwChatModel", "CostmwMiddleware", "CostmwUsage",
    "LangChainTarget", "costmw_usage", "from_openai_messages", "to_openai_messages", "wrap",
}


def test_exported_names() -> None:
    assert set(lc.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(lc, name) is not None


def test_importing_costmw_does_not_import_langchain() -> None:
    code = ("import sys, costmw, costmw.plugins, costmw.adapters\n"
            "print(any(m.startswith('langchain') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
