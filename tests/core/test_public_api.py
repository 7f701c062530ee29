"""The exported names are the public API; this test fails when one is added or removed by accident."""

from __future__ import annotations
import __future__

import subprocess
import sys
from types import ModuleType

import costmw.adapters
import costmw.plugins
import pytest

import costmw
import costmw.plugin_api


def _offered(module: ModuleType) -> set[str]:
    """What a module really offers: the public names bound in it (not its submodules, nor
    ``from __future__`` features), plus the names it loads lazily on first use."""
    bound = {name for name, value in vars(module).items()
             if not name.startswith("_") and not isinstance(value, (ModuleType, __future__._Feature))}
    return bound | set(getattr(module, "_LAZY", {}))


@pytest.mark.parametrize("module", [costmw, costmw.plugins, costmw.adapters, costmw.plugin_api],
                         ids=lambda m: m.__name__)
def test_all_matches_what_the_module_offers(module: ModuleType) -> None:
    """``__all__`` lists exactly the public names, lazy ones included, and each one resolves."""
    assert set(module.__all__) - {"__version__"} == _offered(module)
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module), name


def test_exported_names() -> None:
    assert sorted(costmw.__all__) == sorted([
        "AuthenticationError", "BatchJob", "BatchNotReadyError", "BatchOutcome", "BatcherClosedError",
        "BudgetExceeded", "BudgetUnavailable", "CallNext",
        "Chain", "Chunk", "ConfigError", "ContextWindowError", "CostmwError", "InvalidRequestError", "Ledger",
        "LedgerRow", "MissingDependencyError", "NoTargetError", "Options", "PermissionDeniedError", "Plugin",
        "PluginError", "Price",
        "QueueFullError", "RateLimitError", "Request", "RequestContext", "RequestError", "Response", "Saving",
        "ServerError", "StreamNext", "TargetError", "TargetTimeout", "Usage", "__version__", "acompletion",
        "completion", "default_chain", "optimize", "register_plugin", "registered_plugins", "set_default_chain",
    ])
    for name in costmw.__all__:
        assert hasattr(costmw, name), name


def test_import_is_light_and_offline() -> None:
    code = (
        "import sys, costmw, costmw.plugins, costmw.adapters\n"
        "heavy = [m for m in ('torch', 'transformers', 'litellm', 'langchain_core', 'sentence_transformers',"
        " 'redis', 'gptcache', 'peft', 'httpx', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
