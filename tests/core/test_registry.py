"""One registry mechanism for plugins, routing strategies, target kinds and cache stores."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from costmw import Chain, ConfigError, Plugin, register_plugin
from costmw.plugin_api import Registry, register_target_kind


class _EntryPoint:
    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self._obj = name, f"thirdparty:{name}", obj

    def load(self) -> Any:
        return self._obj


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[_EntryPoint]]:
    """Entry points of a pretend installed package, by group."""
    import importlib.metadata

    groups: dict[str, list[_EntryPoint]] = {}
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: list(groups.get(group or "", [])))
    return groups


def test_a_module_attr_entry_is_imported_only_when_first_looked_up(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_thing_mod.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[type] = Registry("thing", "costmw.test-things", {"thing": "lazy_thing_mod:Thing"})
    registry.register("other", "lazy_thing_mod:Thing")
    assert "lazy_thing_mod" not in sys.modules
    assert registry.names() == ["other", "thing"]
    thing = registry.get("thing")
    assert thing.__name__ == "Thing" and "lazy_thing_mod" in sys.modules
    assert registry.get("other") is thing


def test_an_unknown_name_suggests_the_closest_known_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown plugin 'semantic_cach'; did you mean 'semantic_cache'\?"):
        Chain.from_config({"plugins": ["semantic_cach"]})
    from costmw.plugins.cache import store_from_spec

    with pytest.raises(ConfigError, match=r"unknown cache store 'reddis'; did you mean 'redis'\?"):
        store_from_spec("reddis://localhost", None)


def test_a_bad_module_attr_names_the_entry() -> None:
    registry: Registry[Any] = Registry("thing", "costmw.test-things", {"gone": "no_such_module_here:Thing"})
    with pytest.raises(ConfigError, match="thing 'gone': cannot import 'no_such_module_here:Thing'"):
        registry.get("gone")


def test_builtin_names_can_never_be_taken() -> None:
    from costmw.plugins.cache import register_store
    from costmw.plugins.router import register_strategy

    class Mine(Plugin):
        pass

    with pytest.raises(ConfigError, match="plugin name 'batcher' is built in"):
        register_plugin("batcher")(Mine)
    with pytest.raises(ConfigError, match="routing strategy name 'rules' is built in"):
        register_strategy("rules", lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="target kind name 'mock' is built in"):
        register_target_kind("mock", lambda **kw: None)
    with pytest.raises(ConfigError, match="cache store name 'memory' is built in"):
        register_store("memory", lambda spec, n: None)  # type: ignore[arg-type,return-value]


def test_a_builtin_plugin_name_is_refused_before_any_plugin_is_imported() -> None:
    """The built-in names are known to core: registering one in a fresh process fails at once, and
    the built-ins keep working afterwards."""
    code = textwrap.dedent("""
        import sys
        import costmw
        assert not any(m.startswith("costmw.plugins") for m in sys.modules), "plugins imported too early"
        class Mine(costmw.Plugin):
            pass
        try:
            costmw.register_plugin("semantic_cache")(Mine)
        except costmw.ConfigError as exc:
            print("refused:", exc)
        from costmw.plugins import Batcher
        from costmw._plugin import get_plugin_class
        assert get_plugin_class("semantic_cache").__name__ == "SemanticCache"
        assert get_plugin_class("batcher") is Batcher
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "refused: plugin name 'semantic_cache' is built in" in done.stdout and done.stdout.endswith("ok\n")


def test_every_kind_takes_names_from_its_entry_point_group(installed: dict[str, list[_EntryPoint]]) -> None:
    from costmw.adapters import MockTarget
    from costmw.plugins.cache import MemoryStore, store_from_spec
    from costmw.plugins.router import Requested, Strategy
    from costmw.plugins.router._strategy import as_strategy

    class Echo(Plugin):
        pass

    made: list[str] = []

    def open_store(spec: str, max_entries: int | None) -> MemoryStore:
        made.append(spec)
        return MemoryStore(max_entries)

    installed["costmw.plugins"] = [_EntryPoint("echo", Echo)]
    installed["costmw.stores"] = [_EntryPoint("shelf", open_store)]
    installed["costmw.strategies"] = [_EntryPoint("always_requested", Requested)]
    installed["costmw.targets"] = [_EntryPoint("canned", lambda name, text: MockTarget(lambda r: text, name=name))]

    chain = Chain.from_config({"plugins": ["echo"], "targets": [{"kind": "canned", "name": "c", "text": "hi"}]})
    assert isinstance(chain.plugins[0], Echo)
    assert chain.complete([{"role": "user", "content": "x"}], model="c").text == "hi"
    chain.close()
    assert isinstance(store_from_spec("shelf://top", 10), MemoryStore) and made == ["shelf://top"]
    strategy = as_strategy("always_requested")
    assert isinstance(strategy, Strategy) and isinstance(strategy, Requested)


def test_an_entry_point_cannot_shadow_a_builtin(installed: dict[str, list[_EntryPoint]]) -> None:
    from costmw.plugins.cache import MemoryStore, store_from_spec

    installed["costmw.stores"] = [_EntryPoint("memory", lambda spec, n: "not a store")]
    assert isinstance(store_from_spec("memory", None), MemoryStore)


def test_a_failing_entry_point_names_its_group(installed: dict[str, list[_EntryPoint]]) -> None:
    class Broken(_EntryPoint):
        def load(self) -> Any:
            raise ImportError("No module named 'thirdparty'")

    installed["costmw.strategies"] = [Broken("fancy", None)]
    from costmw.plugins.router._strategy import as_strategy

    with pytest.raises(ConfigError, match=r"routing strategy 'fancy'.*costmw.strategies.*failed to load"):
        as_strategy("fancy")


def test_names_registered_in_code_resolve_and_can_be_lazy() -> None:
    from costmw.plugins.cache import MemoryStore, register_store, store_from_spec
    from costmw.plugins.cache._store import STORES

    register_store("scratch", "costmw.plugins.cache._store:memory_store")
    try:
        assert isinstance(store_from_spec("scratch", None), MemoryStore)
        with pytest.raises(ConfigError, match="already registered"):
            register_store("scratch", lambda spec, n: MemoryStore(n))
    finally:
        STORES.unregister("scratch")
    with pytest.raises(ConfigError, match="must be a class or function"):
        register_target_kind("number", 42)  # type: ignore[arg-type]
