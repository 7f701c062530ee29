"""Per-call options: costmw's own controls for one request, typed and validated once.

Every control a plugin or target reads from a request (who the caller is, where to send it,
what the cache may do) is a field of :class:`Options`. ``Request.create`` builds and checks the
options when the request is made, so a misspelt key fails there, with a suggestion, instead of
being silently ignored deep inside a plugin. ``metadata`` stays for the caller's own free-form
labels; it goes to the ledger and never changes how a call is served.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ._errors import InvalidRequestError
from ._validate import no_surrogates as _no_surrogates

__all__ = ["CAPABILITY_NAMES", "MAX_IDENTITY_LENGTH", "Options", "identity", "split_metadata"]

#: Capabilities a request can say it needs (``Options.needs``), as a target's Capabilities name them.
CAPABILITY_NAMES = ("tools", "json_mode", "streaming")

#: The longest tenant or user id accepted, in characters (after NFC normalisation).
MAX_IDENTITY_LENGTH = 256

# Metadata keys that older versions read as controls; still moved into the options, with a warning.
_LEGACY_ALIASES = {"tag": "tags"}


@dataclass(frozen=True, slots=True)
class Options:
    """costmw's controls for one call. Build with :meth:`coerce` (a dict or an Options).

    Every field has a default that means "no special handling"; unknown names are an error.
    """

    #: Who the call is for: the ledger, budgets and cache entries are kept per tenant.
    #: A non-empty string, NFC-normalised; numbers are refused (``42`` and ``"42"`` never meet).
    tenant: str | None = None
    #: The end user inside the tenant. A cache scoped per user (``SemanticCache(scope="user")``)
    #: keeps each user's entries apart; a user id never stands for a tenant of the same name.
    user: str | None = None
    #: Labels the router's rules match (``Rule(tags=[...])``); a string or a list of strings.
    tags: frozenset[str] = frozenset()
    #: Send the call to the chain's target of this name; a name the chain lacks is an error.
    target: str | None = None
    #: A hint to the router's rules strategy: try this target first when it may serve the call.
    route: str | None = None
    #: Capabilities the call needs beyond what its parameters show (``tools``, ``json_mode``,
    #: ``streaming``); the router only picks targets that have them.
    needs: frozenset[str] = frozenset()
    #: Neither read nor write the cache for this call.
    no_cache: bool = False
    #: Read the cache, but do not store this call's answer.
    no_store: bool = False
    #: Seconds this call's cached answer lives (0: do not store); None: the cache's own ttl.
    ttl: float | None = None
    #: A cache namespace: entries are seen only by calls with the same namespace (and, unless the
    #: cache declares the namespace shared, the same tenant).
    namespace: str | None = None
    #: False: the minifier leaves this call's prompt as it is.
    minify: bool = True
    #: False: the batcher sends this call on its own, at once.
    batch: bool = True
    #: The LoRA adapter of a local target to answer with (``"base"``: none); part of the cache key.
    adapter: str | None = None
    #: Seconds the target may take for this call (overrides the target's own ``timeout_s``).
    timeout_s: float | None = None

    @classmethod
    def coerce(cls, value: Options | Mapping[str, Any] | None, *, where: str = "options") -> Options:
        """Options from an Options, a dict of field names, or None; raises InvalidRequestError
        naming the bad field (and the closest known name for an unknown one)."""
        if value is None:
            return _EMPTY
        if isinstance(value, Options):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequestError(f"{where} must be a dict or costmw.Options, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str) or key not in _FIELDS:
                raise InvalidRequestError(f"{where}: unknown option {key!r}{_suggest(key)}; "
                                          f"known options: {', '.join(_FIELDS)}")
        return cls(**{k: _CHECKS[k](f"{where}.{k}", v) for k, v in value.items()})

    def merge(self, other: Options | Mapping[str, Any] | None) -> Options:
        """A copy with the fields set in ``other`` (a dict: its keys; Options: its non-default fields)."""
        if other is None:
            return self
        if isinstance(other, Options):
            changes = {f.name: getattr(other, f.name) for f in fields(other)
                       if getattr(other, f.name) != getattr(_EMPTY, f.name)}
        else:
            changes = asdict(Options.coerce(other))
            changes = {k: changes[k] for k in other}
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults, JSON-able (sets become sorted lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(_EMPTY, f.name):
                out[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return out


_FIELDS = tuple(f.name for f in fields(Options))


def _suggest(key: object) -> str:
    close = difflib.get_close_matches(str(key), [*_FIELDS, *_LEGACY_ALIASES], n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {_LEGACY_ALIASES.get(close[0], close[0])!r}?)"


def identity(where: str, value: Any) -> str | None:
    """The one normal form of a tenant or user id: a non-empty string without lone surrogates,
    NFC-normalised, at most MAX_IDENTITY_LENGTH characters. None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a string, got {type(value).__name__} {value!r}; "
                                  "pass str(...) if you mean it as a name")
    _no_surrogates(where, value)
    normal = unicodedata.normalize("NFC", value)
    if not normal:
        raise InvalidRequestError(f"{where} must be a non-empty string (leave it out for none)")
    if len(normal) > MAX_IDENTITY_LENGTH:
        raise InvalidRequestError(f"{where} is {len(normal)} characters long; at most {MAX_IDENTITY_LENGTH}")
    return normal


def _name(where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{where} must be a non-empty string, got {value!r}")
    _no_surrogates(where, value)
    return value


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{where} must be true or false, got {value!r}")
    return value


def _names(where: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    items: Iterable[Any] = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, (bytes, Mapping)):
        raise InvalidRequestError(f"{where} must be a string or a list of strings, got {type(value).__name__}")
    out = frozenset(items)
    for item in out:
        _name(where, item)
    return out


def _needs(where: str, value: Any) -> frozenset[str]:
    out = _names(where, value)
    unknown = out - set(CAPABILITY_NAMES)
    if unknown:
        raise InvalidRequestError(f"{where} names unknown capabilities {sorted(unknown)}; "
                                  f"known: {list(CAPABILITY_NAMES)}")
    return out


def _ttl(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
        raise InvalidRequestError(f"{where} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _seconds(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise InvalidRequestError(f"{where} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


_CHECKS: dict[str, Any] = {
    "tenant": identity, "user": identity, "tags": _names, "target": _name, "route": _name,
    "needs": _needs, "no_cache": _flag, "no_store": _flag, "ttl": _ttl, "namespace": _name,
    "minify": _flag, "batch": _flag, "adapter": _name, "timeout_s": _seconds,
}
assert set(_CHECKS) == set(_FIELDS)

_EMPTY = Options()


def split_metadata(metadata: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the controls older callers put in ``metadata`` from its free-form labels.

    A key that names an option (or an old alias such as ``tag``) is moved to the options with a
    DeprecationWarning. A key that looks like a misspelt option (``nocache``) is an error: it was
    almost surely meant as a control, and ignoring it would change behaviour silently.
    """
    labels: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, value in metadata.items():
        name = _LEGACY_ALIASES.get(key, key) if isinstance(key, str) else key
        if name in _FIELDS:
            moved[name] = value
        elif isinstance(key, str) and difflib.get_close_matches(key, [*_FIELDS, *_LEGACY_ALIASES], n=1, cutoff=0.85):
            raise InvalidRequestError(f"metadata key {key!r} looks like a misspelt option{_suggest(key)}; "
                                      "pass controls as options=..., and rename the label if it is one")
        else:
            labels[key] = value
    if moved:
        warnings.warn(f"costmw controls in metadata ({', '.join(sorted(moved))}) are deprecated: "
                      "pass them as options={...}", DeprecationWarning, stacklevel=4)
    return labels, moved
