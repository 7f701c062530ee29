"""Build a chain from a dict or a YAML/TOML/JSON file, validated with pydantic.

::

    plugins:
      - semantic_cache: {threshold: 0.9}     # name: options
      - name: prompt_minifier                # or name + options
        options: {level: balanced}
    targets:
      - {kind: litellm, model: gpt-4o-mini}
      - {kind: mock, name: local, reply: "ok"}
    ledger: {path: costmw-ledger.db}        # or a postgresql:// URL (path: or url:)
    default_model: gpt-4o
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ._errors import ConfigError
from ._plugin import Plugin, get_plugin_class
from ._registry import import_path
from ._target_kinds import TARGET_KINDS, register_target_kind

if typing.TYPE_CHECKING:
    from ._chain import Chain
    from ._ledger import Ledger

__all__ = ["chain_from_config", "load_config_file", "register_target_kind"]

class _LedgerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    url: str | None = None
    store_text: bool = False
    on_unavailable: typing.Literal["refuse", "allow"] | None = None
    max_pending_rows: int = Field(default=10_000, ge=1)
    spool: str | None = None


class _ChainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plugins: list[str | dict[str, Any]] = Field(default_factory=list)
    targets: list[dict[str, Any]] = Field(default_factory=list)
    ledger: _LedgerSpec | str | None = None
    default_model: str | None = None
    auto_targets: bool = False


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read YAML (safe loader), TOML or JSON, chosen by the file's extension."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {str(p)!r}: use .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"config file {str(p)!r} could not be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
    if "costmw" in data and isinstance(data["costmw"], dict) and suffix == ".toml":
        data = data["costmw"]
    return data


def _options_model(owner: str, fn: Callable[..., Any]) -> type[BaseModel] | None:
    """A pydantic model of the keyword options ``fn`` accepts (None when it takes **kwargs)."""
    fields: dict[str, Any] = {}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL,):
            continue
        if param.kind is param.VAR_KEYWORD:
            return None
        annotation = hints.get(name, Any)  # unresolvable annotations: the constructor checks the value
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[name] = (annotation, default)
    try:
        return create_model(  # type: ignore[call-overload,no-any-return]
            f"{owner}Options", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)
    except Exception:
        return None


def _validate_options(what: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    model = _options_model(what.replace(" ", "_"), fn)
    if model is None:
        return
    try:
        model.model_validate(options)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(x) for x in err["loc"]) or "(options)"
            if err["type"] == "extra_forbidden":
                valid = ", ".join(k for k in model.model_fields)
                problems.append(f"unknown option {field!r} (valid options: {valid})")
            elif err["type"] == "missing":
                problems.append(f"option {field!r} is required")
            else:
                problems.append(f"option {field!r}: {err['msg']}")
        raise ConfigError(f"{what}: " + "; ".join(problems)) from None


def _plugin_entry(i: int, entry: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if "name" in entry:
        extra = {k: v for k, v in entry.items() if k not in ("name", "options")}
        given = entry.get("options")
        if given is not None and not isinstance(given, dict):
            raise ConfigError(f"plugins[{i}] ({entry['name']!r}): options must be a mapping, got {given!r}")
        options = {**(given or {}), **extra}
        return str(entry["name"]), options
    if len(entry) == 1:
        name, options = next(iter(entry.items()))
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"plugins[{i}] ({name!r}): options must be a mapping, got {options!r}")
        return str(name), dict(options or {})
    raise ConfigError(f"plugins[{i}]: write either a name, {{name: options}}, or {{name: ..., options: ...}}")


def build_plugin(i: int, entry: str | dict[str, Any]) -> Plugin:
    name, options = _plugin_entry(i, entry)
    try:
        cls = get_plugin_class(name)
    except ConfigError as exc:
        raise ConfigError(f"plugins[{i}]: {exc}") from None
    what = f"plugin {name!r} (plugins[{i}])"
    _validate_options(what, cls.__init__, options)
    try:
        return cls(**options)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def _import(path: str) -> Any:
    return import_path(path, what="config")


def build_target(i: int, spec: Mapping[str, Any]) -> Any:
    options = dict(spec)
    kind = str(options.pop("kind", "litellm"))
    try:
        factory = TARGET_KINDS.get(kind)
    except ConfigError as exc:
        raise ConfigError(f"targets[{i}]: {exc}") from None
    what = f"target {options.get('name') or options.get('model') or kind!r} (targets[{i}], kind {kind!r})"
    if kind == "callable" and "fn" in options:
        options["fn"] = config_function(f"targets[{i}].fn", options["fn"])
    if kind == "mock" and "reply" in options:
        reply = str(options.pop("reply"))
        options["handler"] = lambda _request, _r=reply: _r
    init: Callable[..., Any] = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    _validate_options(what, init, options)
    try:
        return factory(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def _is_stdlib(module: str) -> bool:
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


def config_function(where: str, value: Any) -> Callable[..., Any]:
    """The function a config names for a callable target, as ``"module:function"``.

    A config file may come from somewhere less trusted than code, so only a plain Python function
    of the application's own code is accepted: names in the standard library or builtins
    (``os:system``, ``subprocess:run``, ``builtins:eval``), private names (``_x``), classes and
    other callables are refused. A function object (a dict config built in Python) is taken as is.
    """
    if callable(value) and not isinstance(value, str):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str) or value.count(":") != 1:
        raise ConfigError(f"{where} must be 'module:function', got {value!r}")
    module, _, attr = value.partition(":")
    refused = (f"{where}: {value!r} is refused: a config may name only a function of your own code, "
               "not one from the standard library or builtins, nor a private name; pass any other "
               "callable to CallableTarget in code")
    if not module or not attr or _is_stdlib(module) or any(p.startswith("_") for p in attr.split(".")):
        raise ConfigError(refused)
    try:
        fn = _import(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not inspect.isfunction(fn) or _is_stdlib(getattr(fn, "__module__", None) or ""):
        raise ConfigError(refused)
    return fn  # type: ignore[no-any-return]


def _ledger(spec: _LedgerSpec | str | None) -> Ledger:
    """The ledger a config names: ``ledger: PATH_OR_URL`` or ``ledger: {path|url: ..., store_text,
    on_unavailable, max_pending_rows, spool}``; a SQLite path or a ``postgresql://`` URL either way."""
    from ._ledger import Ledger, ledger_kind

    if spec is None:
        return Ledger()
    if isinstance(spec, str):
        spec = _LedgerSpec(path=spec)
        field = "ledger"
    else:
        if spec.path is not None and spec.url is not None:
            raise ConfigError("config: ledger: give `path` or `url`, not both")
        field = "ledger.url" if spec.url is not None else "ledger.path"
    where = spec.url if spec.url is not None else spec.path
    try:
        kind = ledger_kind(where)
    except ConfigError as exc:
        raise ConfigError(f"config: {field}: {exc}") from None
    if kind == "sqlite" and where is not None and Path(where).is_dir():
        raise ConfigError(f"config: {field}: {where!r} is a directory; give the path of the ledger's "
                          "database file (it is created if missing)")
    shown = where
    if kind == "postgresql" and where is not None:
        from ._ledger_pg import display_url

        shown = display_url(where)
    if spec.spool is not None and kind != "postgresql":
        raise ConfigError(f"config: ledger.spool: a spool is for a postgresql:// ledger (a {kind} ledger "
                          "keeps its rows itself)")
    try:
        if kind == "postgresql" and where is not None:
            from ._ledger_pg import PostgresLedger

            return PostgresLedger(where, store_text=spec.store_text, on_unavailable=spec.on_unavailable,
                                  max_pending_rows=spec.max_pending_rows, spool=spec.spool)
        return Ledger(where, store_text=spec.store_text, on_unavailable=spec.on_unavailable,
                      max_pending_rows=spec.max_pending_rows)
    except ConfigError as exc:
        raise ConfigError(f"config: {field}: {exc}") from None
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"config: {field}: cannot open the ledger at {shown!r}: {exc}") from exc


def chain_from_config(config: Mapping[str, Any] | str | Path) -> Chain:
    from ._chain import Chain

    if not isinstance(config, (str, Path, Mapping)):
        raise ConfigError(f"a config is a dict or the path of a YAML/TOML/JSON file, got {type(config).__name__}")
    data = load_config_file(config) if isinstance(config, (str, Path)) else dict(config)
    try:
        spec = _ChainSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"config: {field}: {err['msg']}") from None
    plugins = [build_plugin(i, e) for i, e in enumerate(spec.plugins)]
    targets = [build_target(i, t) for i, t in enumerate(spec.targets)]
    return Chain(plugins=plugins, targets=targets, ledger=_ledger(spec.ledger),
                 default_model=spec.default_model, auto_targets=spec.auto_targets)
