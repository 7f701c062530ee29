"""One way to look a name up, for every kind of thing a configuration names.

A :class:`Registry` holds the names of one kind: plugins, routing strategies, target kinds and
cache stores each have one. A name resolves, in this order, to

1. a built-in: a ``"module:attr"`` string imported on first use (so naming a built-in in a config
   imports only what that built-in needs, and ``import costmw`` stays light);
2. something registered in code (``register_plugin``, ``register_strategy``, ...), either the
   object itself or another ``"module:attr"`` string;
3. an entry point in the kind's group (``costmw.plugins``, ``costmw.strategies``,
   ``costmw.targets``, ``costmw.stores``), so an installed package adds names with no import.

Built-in names are known before anything is imported and can never be taken by another object.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from ._errors import ConfigError

__all__ = ["Registry", "callable_factory", "import_path"]

T = TypeVar("T")


def import_path(path: str, *, what: str = "object") -> Any:
    """The object at ``"package.module:attr"`` (``attr`` may be dotted: ``"mod:Class.method"``)."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what}: {path!r} is not of the form 'module:attr'")
    try:
        value: Any = importlib.import_module(module)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what}: cannot import {path!r}: {exc}") from exc
    return value


def _is_builtin_object(path: str, obj: Any) -> bool:
    """Whether ``obj`` is the object the built-in ``path`` names, judged without importing it (the
    built-in's own module may be mid-import when it registers itself)."""
    module, _, attr = path.partition(":")
    defined_in = getattr(obj, "__module__", "") or ""
    return bool(getattr(obj, "__qualname__", None) == attr and
                (defined_in == module or defined_in.startswith(module + ".")))


def callable_factory(kind: str) -> Callable[[str, Any], None]:
    """A ``check`` for registries of factories: the registered object must be a class or function."""

    def check(name: str, factory: Any) -> None:
        if not callable(factory):
            raise ConfigError(f"{kind} {name!r}: the factory must be a class or function, "
                              f"got {type(factory).__name__}")

    return check


class Registry(Generic[T]):
    """Names of one kind (``kind`` is what error messages call it, e.g. "plugin").

    ``builtins`` maps each built-in name to ``"module:attr"``; ``group`` is the entry-point group
    third-party packages add names through; ``check(name, obj)`` validates an object when it is
    registered or first resolved, and raises ``ConfigError`` to refuse it.
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str],
                 check: Callable[[str, Any], None] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._builtins = dict(builtins)
        self._check = check
        self._added: dict[str, Any] = {}  # name -> object or "module:attr"
        self._resolved: dict[str, T] = {}
        self._lock = threading.RLock()

    def register(self, name: str, obj: Any) -> None:
        """Add ``name`` for ``obj`` (the object, or a ``"module:attr"`` string imported when first used).

        A built-in name is refused unless ``obj`` is that built-in; a name taken by another object
        is refused too."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        builtin = self._builtins.get(name)
        if builtin is not None:
            if (isinstance(obj, str) and obj == builtin) or _is_builtin_object(builtin, obj):
                return
            raise ConfigError(f"{self.kind} name {name!r} is built in ({builtin}); choose another name")
        if not isinstance(obj, str) and self._check is not None:
            self._check(name, obj)
        with self._lock:
            existing = self._added.get(name)
            if existing is not None and not _same(existing, obj):
                raise ConfigError(f"{self.kind} name {name!r} is already registered by {_describe(existing)}")
            self._added[name] = obj
            self._resolved.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove a name added with :meth:`register` (built-ins stay)."""
        with self._lock:
            self._added.pop(name, None)
            self._resolved.pop(name, None)

    def is_builtin(self, name: str) -> bool:
        return name in self._builtins

    def get(self, name: str) -> T:
        """The object registered as ``name``; ``ConfigError`` (with the closest names) when unknown."""
        with self._lock:
            if name in self._resolved:
                return self._resolved[name]
        found = self._find(name)
        if found is None:
            raise ConfigError(self._unknown(name))
        value = self._load(name, found)
        if self._check is not None and (isinstance(found, (str, _EntryPoint)) or name not in self._added):
            self._check(name, value)
        with self._lock:
            self._resolved[name] = value
        return value  # type: ignore[no-any-return]

    def names(self) -> list[str]:
        """Every name this registry can resolve: built-ins, registered ones and entry points."""
        return sorted({*self._builtins, *self._added, *(ep.name for ep in self._entry_points())})

    def items(self, *, skip_unavailable: bool = True) -> Iterator[tuple[str, T]]:
        """``(name, object)`` for every name; names whose optional dependency is missing are
        skipped unless ``skip_unavailable`` is false."""
        for name in self.names():
            try:
                yield name, self.get(name)
            except ConfigError:
                if not skip_unavailable:
                    raise

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def _find(self, name: str) -> Any:
        if name in self._builtins:
            return self._builtins[name]
        with self._lock:
            if name in self._added:
                return self._added[name]
        for ep in self._entry_points():
            if ep.name == name:
                return _EntryPoint(ep)
        return None

    def _load(self, name: str, found: Any) -> Any:
        what = f"{self.kind} {name!r}"
        if isinstance(found, str):
            return import_path(found, what=what)
        if isinstance(found, _EntryPoint):
            try:
                return found.ep.load()
            except Exception as exc:
                raise ConfigError(f"{what}: entry point {found.ep.value!r} ({self.group}) failed to load: "
                                  f"{exc}") from exc
        return found

    def _entry_points(self) -> list[Any]:
        from importlib.metadata import entry_points

        return [ep for ep in entry_points(group=self.group) if ep.name not in self._builtins]

    def _unknown(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known) or 'none'})"


class _EntryPoint:
    """An entry point found for a name, loaded on first use."""

    def __init__(self, ep: Any) -> None:
        self.ep = ep


def _same(a: Any, b: Any) -> bool:
    if a is b or a == b:
        return True
    # a module re-imported (a test reloading it, a notebook re-running a cell) registers an equal class again
    return bool(isinstance(a, type) and isinstance(b, type) and a.__module__ == b.__module__
                and a.__qualname__ == b.__qualname__)


def _describe(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
