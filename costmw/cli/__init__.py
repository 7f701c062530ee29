"""The ``costmw`` command line: ``demo``, ``report``, ``serve``, ``keys``, ``cache``, ``db`` and the
model-making tools."""

from __future__ import annotations

import typer

from ._cache import app as cache_app
from ._cascade_data import cascade_data
from ._db import db_app
from ._demo import demo
from ._report import report
from ._serve import keys_app, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="costmw",
    help="costmw: cut what LLM calls cost. Run `costmw demo` to see it work offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("demo")(demo)
app.command("report")(report)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")
app.command("cascade-data")(cascade_data)


def _mount_tools() -> None:
    """Mount the model-making commands (data, tune, distill, prune, quantize) when present."""
    try:
        from costmw.adapters.make import cli as make_cli
    except ImportError:
        return
    mount = getattr(make_cli, "mount", None)
    if mount is not None:
        mount(app)


_mount_tools()


def main() -> None:
    app()
