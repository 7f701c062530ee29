"""What every tool returns: where the model went, its manifest, and what was measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._trainer import TrainResult

__all__ = ["MakeResult", "format_table"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain-text table of ``rows`` (dicts) for terminals and logs."""
    if not rows:
        return ""
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


@dataclass
class MakeResult:
    """The outcome of a tool: ``path`` (the model folder), ``manifest`` (None when nothing was
    registered, e.g. a student below the bar), ``metrics`` and the training run, if any."""

    path: Path
    manifest: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    training: TrainResult | None = None
    passed: bool = True
    message: str = ""

    def __str__(self) -> str:
        lines = [self.message] if self.message else []
        flat = {k: v for k, v in self.metrics.items() if not isinstance(v, (dict, list))}
        if flat:
            lines.append(format_table([{"metric": k, "value": v} for k, v in flat.items()]))
        for key, value in self.metrics.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                lines.append(f"{key}:\n" + format_table(value))
        where = f"target written: {self.manifest}" if self.manifest else f"nothing registered (files in {self.path})"
        lines.append(where)
        return "\n".join(lines)
