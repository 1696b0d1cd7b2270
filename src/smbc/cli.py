"""The `smbc` command line."""

from __future__ import annotations

import sys

import typer

from smbc.config import ConfigError, get_settings

app = typer.Typer(help="SALESmanago for BigCommerce", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings():
    try:
        return get_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the web app (and inline workers when SMBC_WORKERS=inline)."""
    import uvicorn

    from smbc.app import create_app

    uvicorn.run(create_app(_settings()), host=host, port=port, log_level="info")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    from smbc.runtime import init_runtime

    init_runtime(_settings(), migrate=True)
    typer.echo("database is up to date")


@app.command()
def sandbox(
    host: str = "127.0.0.1",
    bc_port: int = 8100,
    sm_port: int = 8200,
    customers: int = 25,
    orders: int = 60,
    app_url: str = "http://127.0.0.1:8000",
    client_id: str = "sandbox-client-id",
    client_secret: str = "sandbox-client-secret",  # noqa: S107 - the sandbox app's own
) -> None:
    """Run only the fake BigCommerce and fake SALESmanago servers, seeded, until Ctrl-C."""
    from smbc.sandbox.runner import run_sandbox

    run_sandbox(
        echo=typer.echo,
        host=host,
        bc_port=bc_port,
        sm_port=sm_port,
        customers=customers,
        orders=orders,
        app_url=app_url,
        client_id=client_id,
        client_secret=client_secret,
    )


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


@app.command()
def reconcile(store: str = typer.Option(..., "--store", help="store hash")) -> None:
    """Read changes missed by webhooks now, send them, and repair the store's hooks."""
    import json

    from sqlalchemy import select

    from smbc.db.models import Store
    from smbc.runtime import init_runtime
    from smbc.sync.reconcile import reconcile_store

    runtime = init_runtime(_settings(), migrate=_settings().is_sqlite)
    with runtime.db.session() as session:
        store_id = session.scalars(select(Store.id).where(Store.hash == store)).first()
    if store_id is None:
        typer.echo(f"no store with hash {store!r}", err=True)
        raise typer.Exit(1)
    report = reconcile_store(store_id, process_inline=True)
    typer.echo(json.dumps(report.summary(), indent=2))
    if report.error:
        raise typer.Exit(1)


@app.command()
def activity(
    store: str = typer.Option(..., "--store", help="store hash"),
    failed: bool = typer.Option(False, "--failed", help="only failed or waiting deliveries and failed calls"),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
) -> None:
    """Recent webhook deliveries and remote calls of a store."""
    from smbc.runtime import init_runtime
    from smbc.sync.activity import recent_activity, render_activity

    runtime = init_runtime(_settings(), migrate=_settings().is_sqlite)
    try:
        deliveries, calls = recent_activity(runtime.db, store, failed_only=failed, limit=limit)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    render_activity(deliveries, calls)
