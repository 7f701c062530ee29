"""``costmw report``: what a ledger says, per plugin and per target; optional PNG chart and HTML page."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .._errors import ConfigError, StoreUnavailable
from .._ledger import Ledger

__all__ = ["render_tables", "report", "write_chart", "write_html"]


def render_tables(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print the totals, the savings per plugin and the calls per target. Names are never cut:
    at narrow widths the number columns wrap instead."""
    console = console or Console()
    totals = Table(title="costmw: totals", show_header=True)
    for col in ("calls", "errors", "cost (USD)", "without costmw (USD)", "saved (USD)", "saved %"):
        totals.add_column(col, justify="right")
    totals.add_row(str(summary["calls"]), str(summary["errors"]), f"{summary['cost_usd']:.4f}",
                   f"{summary['baseline_cost_usd']:.4f}", f"{summary['saved_usd']:.4f}",
                   f"{summary['saved_pct']:.1f}%")
    console.print(totals)
    plugins = Table(title="savings per plugin (they add up to saved)")
    _name_column(plugins, "plugin", summary["by_plugin"])
    plugins.add_column("saved (USD)", justify="right")
    for name, usd in sorted(summary["by_plugin"].items(), key=lambda kv: -kv[1]):
        plugins.add_row(name, f"{usd:.4f}")
    if not summary["by_plugin"]:
        plugins.add_row("(none)", "0")
    console.print(plugins)
    targets = Table(title="calls per serving target")
    _name_column(targets, "served by", summary["by_target"])
    for col in ("calls", "prompt tok", "completion tok", "cost (USD)", "without costmw (USD)"):
        targets.add_column(col, justify="right")
    for name, t in sorted(summary["by_target"].items(), key=lambda kv: -kv[1]["calls"]):
        targets.add_row(name, str(int(t["calls"])), str(int(t["prompt_tokens"])), str(int(t["completion_tokens"])),
                        f"{t['cost_usd']:.4f}", f"{t['baseline_cost_usd']:.4f}")
    console.print(targets)


def _name_column(table: Table, header: str, names: Any) -> None:
    width = max([len(header), *(len(str(n)) for n in names)])
    table.add_column(header, justify="left", no_wrap=True, min_width=width, overflow="fold")


def write_chart(summary: dict[str, Any], path: Path | io.BytesIO) -> Path | io.BytesIO:
    """A PNG bar chart: cost with and without costmw, and savings per plugin."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from .._errors import missing_extra

        raise missing_extra("matplotlib", "report", exc) from exc
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(["without costmw", "with costmw"], [summary["baseline_cost_usd"], summary["cost_usd"]],
            color=["#999999", "#2a7ab0"])
    ax1.set_ylabel("USD")
    ax1.set_title(f"cost ({summary['calls']} calls, {summary['saved_pct']:.1f}% saved)")
    names = list(summary["by_plugin"]) or ["(none)"]
    values = [summary["by_plugin"].get(n, 0.0) for n in names]
    ax2.barh(names, values, color="#3a9a5b")
    ax2.set_xlabel("USD saved")
    ax2.set_title("savings per plugin")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return path


def write_html(summary: dict[str, Any], path: Path, chart: bytes | None = None) -> Path:
    """A self-contained HTML page with the same numbers; the chart (PNG bytes) is embedded."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6f}</td></tr>" for k, v in summary["by_plugin"].items())
    trows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{int(t['calls'])}</td><td>{t['cost_usd']:.6f}</td>"
        f"<td>{t['baseline_cost_usd']:.6f}</td></tr>" for k, t in summary["by_target"].items())
    img = (f'<img src="data:image/png;base64,{base64.b64encode(chart).decode("ascii")}" alt="cost chart">'
           if chart else "")
    data = json.dumps(summary).replace("<", "\\u003c")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>costmw report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>costmw report</h1>
<p>{summary['calls']} calls, {summary['errors']} errors. Cost ${summary['cost_usd']:.4f};
without costmw ${summary['baseline_cost_usd']:.4f}; saved ${summary['saved_usd']:.4f}
({summary['saved_pct']:.1f}%).</p>{img}
<h2>Savings per plugin</h2><table><tr><th>plugin</th><th>USD</th></tr>{rows}</table>
<h2>Calls per target</h2><table><tr><th>served by</th><th>calls</th><th>cost</th><th>without costmw</th></tr>
{trows}</table><script type="application/json" id="data">{data}</script>
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path


def report(
    ledger: str = typer.Argument(..., help="The ledger: a SQLite file written by a chain (Ledger(path)) "
                                           "or a postgresql:// URL."),
    png: Path | None = typer.Option(None, "--png", help="Also write a bar chart to this PNG file."),
    html_path: Path | None = typer.Option(None, "--html", help="Also write an HTML page to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
) -> None:
    """Print cost, savings per plugin and calls per target from a ledger (opened read-only)."""
    try:
        book = Ledger(ledger, readonly=True)
        summary = book.summary()
        book.close()
    except (ConfigError, StoreUnavailable) as exc:
        raise typer.BadParameter(str(exc), param_hint="LEDGER") from exc
    except sqlite3.Error as exc:
        raise typer.BadParameter(f"{str(ledger)!r} cannot be read as a costmw ledger: {exc}",
                                 param_hint="LEDGER") from exc
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        render_tables(summary)
    if png:
        write_chart(summary, png)
    if html_path:
        chart: bytes | None = None
        if png:
            chart = png.read_bytes()
        else:
            with contextlib.suppress(ImportError):
                buffer = io.BytesIO()
                write_chart(summary, buffer)
                chart = buffer.getvalue()
        write_html(summary, html_path, chart)
