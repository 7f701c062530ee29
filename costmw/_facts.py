"""What happened while serving one request, as plugins and the chain report it.

Plugins report facts, never prices: a call made (to which target, with what usage), prompt
tokens removed, a call avoided, the target chosen. The chain prices them once, when the call
ends, and turns them into the ledger row (see ``costmw/_accounting.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._pricing import Price
    from ._target import Target
    from ._types import Usage

__all__ = ["CallMade", "Facts", "TokensRemoved"]


@dataclass(frozen=True, slots=True)
class CallMade:
    """One call to a target. ``by`` names the plugin that made it on the side (a summary, say);
    empty for calls on the way to the answer. ``discount`` is a fraction of the list price the
    provider takes off (a batch API), booked as a saving of ``discount_by``."""

    target: str
    model: str
    usage: Usage
    price: Price | None
    by: str = ""
    discount: float = 0.0
    discount_by: str = ""
    partial: bool = False


@dataclass(frozen=True, slots=True)
class TokensRemoved:
    """Prompt tokens a plugin removed, counted on the requested model before and after."""

    plugin: str
    before: int
    after: int
    detail: str = ""


class Facts:
    """The facts of one request, shared by every copy of it (they live on its context)."""

    __slots__ = ("avoided", "calls", "chosen", "removed")

    def __init__(self) -> None:
        self.calls: list[CallMade] = []
        self.removed: list[TokensRemoved] = []
        self.avoided: tuple[str, str] | None = None
        self.chosen: tuple[str, str] | None = None

    def call(self, target: Target, usage: Usage, *, by: str = "", model: str = "", discount: float = 0.0,
             discount_by: str = "", partial: bool = False) -> None:
        """A call was made to ``target`` and used ``usage`` (the chain prices it at the target's price)."""
        self.calls.append(CallMade(target.name, model or target.model, dataclasses.replace(usage),
                                   target.price, by, float(discount), discount_by, partial))

    def tokens_removed(self, plugin: str, before: int, after: int, detail: str = "") -> None:
        """``plugin`` cut the prompt from ``before`` to ``after`` tokens (counted on the requested model).

        Reported once per plugin: a request that passes a plugin twice (a cascade's two calls) had
        the same prompt cut, so the latest report replaces the earlier one."""
        self.removed = [r for r in self.removed if r.plugin != plugin]
        if after < before:
            self.removed.append(TokensRemoved(plugin, int(before), int(after), detail))

    def call_avoided(self, plugin: str, detail: str = "") -> None:
        """``plugin`` answered without the call the request asked for (a cache hit, say)."""
        self.avoided = (plugin, detail)

    def target_chosen(self, plugin: str, detail: str = "") -> None:
        """``plugin`` chose the target that served the request (a router)."""
        self.chosen = (plugin, detail)
