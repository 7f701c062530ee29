"""The exported names are the public API; this test fails when one is added or removed by accident."""

from __future__ import annotations

import subprocess
import sys

import costmw.adapters
import costmw.plugins

import costmw


def test_exported_names() -> None:
    assert sorted(costmw.__all__) == sorted([
        "BudgetExceeded", "BudgetUnavailable", "CallNext", "Chain", "Chunk", "ConfigError", "ContextWindowError",
        "CostmwError", "InvalidRequestError", "Ledger", "LedgerRow", "MissingDependencyError", "NoTargetError",
        "Options", "Plugin",
        "PluginError", "Price", "RateLimitError", "Request", "RequestContext", "RequestError", "Response",
        "Saving", "ServerError", "StreamNext", "TargetError", "TargetTimeout", "Usage", "__version__",
        "acompletion", "completion", "default_chain", "optimize", "register_plugin", "registered_plugins",
        "set_default_chain",
    ])
    for name in costmw.__all__:
        assert hasattr(costmw, name), name


def test_adapter_names() -> None:
    for name in ("LiteLLMTarget", "CallableTarget", "MockTarget", "Target", "Capabilities", "forbid_paid_calls"):
        assert hasattr(costmw.adapters, name), name
    assert "HFTarget" in dir(costmw.adapters)


def test_import_is_light_and_offline() -> None:
    code = (
        "import sys, costmw, costmw.plugins, costmw.adapters\n"
        "heavy = [m for m in ('torch', 'transformers', 'litellm', 'langchain_core', 'sentence_transformers',"
        " 'redis', 'gptcache', 'peft', 'httpx', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
