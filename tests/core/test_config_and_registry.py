from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import costmw
from costmw import Chain, ConfigError, Plugin, Request, register_plugin
from costmw._plugin import get_plugin_class


@register_plugin("test_redact")
class Redact(Plugin):
    def __init__(self, word: str = "secret", replacement: str = "***") -> None:
        self.word = word
        self.replacement = replacement

    async def before(self, request: Request) -> Request:
        msgs = [{**m, "content": str(m["content"]).replace(self.word, self.replacement)} for m in request.messages]
        return request.replace(messages=msgs)


def test_registered_plugin_by_name_from_dict() -> None:
    chain = Chain.from_config({
        "plugins": [{"test_redact": {"word": "pw"}}, "passthrough"],
        "targets": [{"kind": "mock", "name": "local", "reply": "ok"}],
        "default_model": "local",
    })
    assert [p.plugin_name for p in chain.plugins] == ["test_redact", "passthrough"]
    assert chain.complete([{"role": "user", "content": "my pw"}]).text == "ok"


def test_from_yaml_and_toml_files(tmp_path: Path) -> None:
    y = tmp_path / "costmw.yaml"
    y.write_text("plugins:\n  - name: test_redact\n    options: {word: x}\n"
                 "targets:\n  - {kind: mock, name: m, reply: hi}\nledger: {path: " + str(tmp_path / "l.db") + "}\n")
    chain = Chain.from_config(y)
    assert chain.complete([{"role": "user", "content": "a"}], model="m").text == "hi"
    assert (tmp_path / "l.db").exists()
    t = tmp_path / "costmw.toml"
    t.write_text('[[plugins]]\nname = "passthrough"\n\n[[targets]]\nkind = "mock"\nname = "m"\nreply = "yo"\n')
    assert Chain.from_config(t).complete([{"role": "user", "content": "a"}], model="m").text == "yo"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"plugins": ["nope"]}, r"plugins\[0\]: unknown plugin 'nope'"),
        ({"plugins": [{"test_redact": {"wrod": "x"}}]},
         r"plugin 'test_redact' \(plugins\[0\]\): unknown option 'wrod'"),
        ({"plugins": [{"test_redact": {"word": ["x"]}}]}, r"option 'word'"),
        ({"targets": [{"kind": "warp-drive"}]}, r"targets\[0\]: unknown target kind 'warp-drive'"),
        ({"targets": [{"kind": "litellm", "model": "gpt-4o", "retries": "many"}]}, r"targets\[0\].*option 'retries'"),
        ({"plugin": []}, r"config: plugin"),
    ],
)
def test_config_errors_name_what_is_wrong(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Chain.from_config(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Chain.from_config(tmp_path / "absent.yaml")


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    y = tmp_path / "evil.yaml"
    y.write_text("plugins: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="could not be parsed"):
        Chain.from_config(y)


def test_register_plugin_validates_the_class() -> None:
    with pytest.raises(ConfigError, match="must subclass costmw.Plugin"):
        register_plugin("bad1")(type("NotAPlugin", (), {}))
    with pytest.raises(ConfigError, match="hook 'handle' must be 'async def'"):
        class SyncHandle(Plugin):
            def handle(self, request, call_next):  # type: ignore[no-untyped-def,override]
                return call_next(request)

        register_plugin("bad2")(SyncHandle)
    with pytest.raises(ConfigError, match="simple identifier"):
        register_plugin("has space")
    with pytest.raises(ConfigError, match="already registered"):
        @register_plugin("test_redact")
        class Other(Plugin):
            pass


def test_entry_point_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    class FromPackage(Plugin):
        async def astream(self, request: Request, call_next: Any) -> AsyncIterator[Any]:
            async for c in call_next(request):
                yield c

    class EP:
        name = "third_party"
        value = "pkg:FromPackage"

        def load(self) -> type[Plugin]:
            return FromPackage

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [EP()] if group == "costmw.plugins" else [])
    assert get_plugin_class("third_party") is FromPackage
    assert isinstance(Chain.from_config({"plugins": ["third_party"]}).plugins[0], FromPackage)


def test_registered_plugins_lists_builtins() -> None:
    assert "passthrough" in costmw.registered_plugins()
