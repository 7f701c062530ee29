"""``costmw serve`` (the OpenAI-compatible gateway) and ``costmw keys`` (its virtual keys)."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["app_from_env", "keys_app", "serve"]

_CONFIG_ENV = "COSTMW_SERVE_CONFIG"


def _freeze_startup_objects() -> None:
    """Move what startup made (modules, the chain, the models) out of the garbage collector's
    reach, so its full collections walk only what requests make: shorter pauses, a better p99."""
    gc.collect()
    gc.freeze()


def app_from_env() -> Any:
    """The app for one uvicorn worker, built from the config named in ``$COSTMW_SERVE_CONFIG``."""
    from costmw.server import create_app, load_gateway

    app = create_app(load_gateway(os.environ[_CONFIG_ENV]))
    _freeze_startup_objects()
    return app


def serve(
    config: Path = typer.Option(..., "--config", "-c", help="Chain config (YAML/TOML/JSON) with a `server:` section."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (they share keys, ledger and cache "
                                               "through the configured stores)."),
    log_level: str = typer.Option("warning", help="uvicorn's log level."),
) -> None:
    """Serve the chain as an OpenAI-compatible API: point any OpenAI client's base_url here."""
    try:
        import uvicorn
    except ImportError:
        raise typer.BadParameter("costmw serve needs the server extra: pip install 'costmw[server]'") from None
    from costmw import CostmwError
    from costmw.server import load_gateway

    config = config.resolve()
    try:  # fail here, with the config's own error, rather than in every worker
        gateway = load_gateway(config)
    except CostmwError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None
    os.environ[_CONFIG_ENV] = str(config)
    if workers == 1:
        from costmw.server import create_app

        app = create_app(gateway)
        _freeze_startup_objects()
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    else:  # each worker builds its own gateway: this process keeps no connection open meanwhile
        gateway.chain.close()
        if gateway.keys is not None:
            gateway.keys.close()
        uvicorn.run("costmw.cli._serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False)


keys_app = typer.Typer(help="Manage the gateway's virtual API keys.", no_args_is_help=True)
_STORE = typer.Option(..., "--store", "-s", envvar="COSTMW_KEYS",
                      help="Key store: a SQLite path or postgresql:// URL (the config's server.keys).")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option(..., help="The tenant the key's calls are booked to."),
    store: str = _STORE,
    name: str = typer.Option("", help="A label for people."),
    budget_day: float = typer.Option(None, help="USD per UTC day."),
    budget_month: float = typer.Option(None, help="USD per UTC month."),
    budget_total: float = typer.Option(None, help="USD in all."),
    rpm: int = typer.Option(None, help="Requests per minute."),
    tpm: int = typer.Option(None, help="Tokens per minute."),
    model: list[str] = typer.Option(None, "--model", help="A model the key may use (repeat; default all)."),
) -> None:
    """Make a key; its secret is printed once and never stored."""
    from costmw import CostmwError
    from costmw.server import KeyStore

    try:
        secret, key = KeyStore(store).create(tenant, name=name, budget_day_usd=budget_day,
                                             budget_month_usd=budget_month, budget_total_usd=budget_total,
                                             rpm=rpm, tpm=tpm, models=model or None)
    except CostmwError as exc:
        raise typer.BadParameter(str(exc)) from None
    Console(stderr=True).print(f"key {key.id} for tenant {key.tenant!r} (the secret is shown only now):")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(store: str = _STORE) -> None:
    """List keys (ids, tenants, limits; never secrets)."""
    from costmw.server import KeyStore

    table = Table(title="costmw gateway keys")
    for col in ("id", "tenant", "name", "starts", "status", "budgets (day/month/total)", "rpm", "tpm", "models"):
        table.add_column(col, overflow="fold")
    for k in KeyStore(store).list():
        budgets = "/".join("-" if b is None else f"${b:g}" for b in (k.budget_day_usd, k.budget_month_usd,
                                                                      k.budget_total_usd))
        table.add_row(k.id, k.tenant, k.name, k.shown, "active" if k.active else "revoked", budgets,
                      str(k.rpm or "-"), str(k.tpm or "-"), ", ".join(k.models) if k.models else "all")
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (key_...)."), store: str = _STORE) -> None:
    """Revoke a key: every gateway sharing the store refuses it within seconds."""
    from costmw.server import KeyStore

    if not KeyStore(store).revoke(key_id):
        raise typer.BadParameter(f"no active key with id {key_id!r}")
    typer.echo(f"revoked {key_id}")
