"""``costmw db upgrade``: create or migrate the ledger's schema (PostgreSQL; SQLite migrates itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["db_app"]

db_app = typer.Typer(help="Manage the ledger's database schema.", no_args_is_help=True)


def _where(url: str | None, config: Path | None) -> str:
    if url:
        return url
    if config is None:
        raise typer.BadParameter("give the ledger with --url (or $COSTMW_LEDGER) or a config file with --config")
    from costmw import CostmwError
    from costmw._config import load_config_file

    try:
        data: Any = load_config_file(config)
    except CostmwError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None
    spec = data.get("ledger") if isinstance(data, dict) else None
    found = spec.get("url") or spec.get("path") if isinstance(spec, dict) else spec
    if not isinstance(found, str) or not found:
        raise typer.BadParameter(f"{str(config)!r} names no ledger (`ledger:` with a path or URL)",
                                 param_hint="--config")
    return found


@db_app.command("upgrade")
def upgrade(
    url: str = typer.Option(None, "--url", envvar="COSTMW_LEDGER",
                            help="The ledger: a postgresql:// URL (or a SQLite path)."),
    config: Path = typer.Option(None, "--config", "-c", help="Read the ledger from this config's `ledger:`."),
) -> None:
    """Create the ledger's tables or apply the migrations it lacks. Safe to run again, and from
    several hosts at once."""
    from costmw import CostmwError
    from costmw._ledger import Ledger, ledger_kind

    where = _where(url, config)
    try:
        kind = ledger_kind(where)
        if kind == "postgresql":
            from costmw._ledger_pg import SCHEMA_VERSION, display_url
            from costmw._ledger_pg import upgrade as pg_upgrade

            applied = pg_upgrade(where)
            done = f"applied migrations {applied}" if applied else "already up to date"
            typer.echo(f"ledger {display_url(where)}: schema version {SCHEMA_VERSION} ({done})")
            return
        if kind == "memory":
            raise typer.BadParameter("an in-memory ledger has no schema to upgrade")
        Ledger(where).close()  # a SQLite ledger makes and migrates its tables when it is opened
        typer.echo(f"ledger {where}: up to date")
    except CostmwError as exc:
        raise typer.BadParameter(str(exc)) from None


@db_app.command("version")
def version(
    url: str = typer.Option(None, "--url", envvar="COSTMW_LEDGER", help="The ledger's postgresql:// URL."),
    config: Path = typer.Option(None, "--config", "-c", help="Read the ledger from this config's `ledger:`."),
) -> None:
    """Print the schema version of a PostgreSQL ledger, and the one this costmw needs."""
    from costmw import CostmwError
    from costmw._ledger import ledger_kind

    where = _where(url, config)
    try:
        if ledger_kind(where) != "postgresql":
            raise typer.BadParameter("only a postgresql:// ledger has schema versions")
        from costmw._ledger_pg import SCHEMA_VERSION, _psycopg, display_url, schema_version

        psycopg = _psycopg()
        try:
            with psycopg.connect(where, connect_timeout=10) as conn:
                have = schema_version(conn)
        except psycopg.Error as exc:
            raise typer.BadParameter(f"cannot connect to {display_url(where)}: {exc}") from None
    except CostmwError as exc:
        raise typer.BadParameter(str(exc)) from None
    state = "up to date" if have >= SCHEMA_VERSION else "run `costmw db upgrade`"
    typer.echo(f"ledger {display_url(where)}: schema version {have}, this costmw needs {SCHEMA_VERSION} ({state})")
