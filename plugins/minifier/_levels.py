"""The three strengths of the minifier and what each turns on."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEVELS", "Level"]


@dataclass(frozen=True, slots=True)
class Level:
    """Defaults of one level; the plugin's own options override them."""

    name: str
    hedges: bool            # drop intensifiers and hedges ("very", "basically") from instructions
    compress: bool          # model-based compression of long context
    rate: float             # fraction of a long text's tokens that compression keeps
    min_tokens: int         # texts shorter than this are not compressed (they barely shrink)
    compress_roles: frozenset[str]


LEVELS: dict[str, Level] = {
    "safe": Level("safe", hedges=False, compress=False, rate=1.0, min_tokens=1_000_000,
                  compress_roles=frozenset()),
    "balanced": Level("balanced", hedges=True, compress=True, rate=0.5, min_tokens=600,
                      compress_roles=frozenset({"system", "developer", "user"})),
    "aggressive": Level("aggressive", hedges=True, compress=True, rate=0.33, min_tokens=300,
                        compress_roles=frozenset({"system", "developer", "user", "assistant"})),
}
