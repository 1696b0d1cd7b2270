"""The `smbc` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from smbc.cli.common import STORE, cli_settings, print_json, print_table
from smbc.core.config import ConfigError, Settings, load_settings
from smbc.core.process_memory import settle_process

HELP = """SALESmanago for BigCommerce

Listings (`stores`, `activity`, `settings show`) print a table on a terminal and whole values, one
tab-separated line per row, when piped; `--json` prints JSON.

\b
Exit codes:
  0    done
  1    the action failed: no such store, login refused, invalid setting values (nothing saved),
       reconcile or export not completed, keys left unreadable, confirmation declined
  2    bad usage or configuration: unknown or conflicting options, a read-only setting, an invalid
       export range, missing or invalid SMBC_* settings
  130  an export interrupted with Ctrl-C (it resumes with `smbc worker`)
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands", no_args_is_help=True)
app.add_typer(db_app, name="db")
stores_app = typer.Typer(help="Installed stores: list (no sub-command) or purge", invoke_without_command=True)
app.add_typer(stores_app, name="stores")

DEMO_VAR_DIR = Path("var/demo")
DEMO_CLIENT_ID = "smbc-demo-client"
DEMO_CLIENT_SECRET = "smbc-demo-client-secret"  # noqa: S105 (only valid against the local sandbox)
DEMO_BC_PORT, DEMO_SM_PORT = 8100, 8200  # as `smbc sandbox`
DEMO_CUSTOMERS, DEMO_ORDERS = 25, 60
# The demo's fakes: the demo app's own credentials, the store seeded as `smbc sandbox` seeds it.
DEMO_SANDBOX: dict[str, Any] = {
    "client_id": DEMO_CLIENT_ID,
    "client_secret": DEMO_CLIENT_SECRET,
    "customers": DEMO_CUSTOMERS,
    "orders": DEMO_ORDERS,
}

from smbc.cli.account import sm_app  # noqa: E402 - registered right below
from smbc.cli.keys import keys_app  # noqa: E402
from smbc.cli.settings import settings_app  # noqa: E402

app.add_typer(sm_app, name="sm")
app.add_typer(settings_app, name="settings")
app.add_typer(keys_app, name="keys")

from smbc.cli.activity import activity_command  # noqa: E402 - registered right below
from smbc.cli.catalog import catalog_app  # noqa: E402 - registered right below
from smbc.cli.deliveries import deliveries_app  # noqa: E402
from smbc.cli.export import export_app  # noqa: E402
from smbc.cli.monitoring import monitoring_app  # noqa: E402
from smbc.cli.privacy import privacy_app  # noqa: E402

app.add_typer(export_app, name="export")
app.add_typer(monitoring_app, name="monitoring")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(catalog_app, name="catalog")
app.command("activity")(activity_command)
app.add_typer(privacy_app, name="privacy")


def _logging(settings: Settings) -> None:
    from smbc.core.logging_config import configure_logging

    configure_logging(settings.log_level)


def settle_garbage_collector() -> None:
    """`smbc serve` and `smbc worker`, before they start their threads (`settle_process`)."""
    settle_process()


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from smbc.web.app import create_app

    web_app = create_app(settings)
    settle_garbage_collector()
    # log_config=None: uvicorn's loggers go through our JSON-lines, redacting handler. No access log
    # unless its logger would write it: uvicorn formats a line's arguments before the logger drops it.
    access_log = logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO)
    uvicorn.run(web_app, host=host, port=port, log_config=None, proxy_headers=True, access_log=access_log)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the web app (and inline workers when SMBC_WORKERS=inline)."""
    settings = cli_settings()
    if not settings.bc_client_id or not settings.bc_client_secret:
        typer.echo(
            "SMBC_BC_CLIENT_ID and SMBC_BC_CLIENT_SECRET must be set (the app's credentials from the "
            "BigCommerce Developer Portal); without them no request from BigCommerce can be verified.",
            err=True,
        )
        raise typer.Exit(2)
    _logging(settings)
    _serve(settings, host, port)


@app.command()
def worker(
    threads: int = typer.Option(None, help="worker threads (default SMBC_INLINE_WORKER_THREADS)"),
) -> None:
    """Run a queue consumer and the periodic scheduler (for SMBC_WORKERS=external)."""
    from smbc.core import jobs
    from smbc.core.runtime import get_runtime, init_runtime
    from smbc.engine.queue import LeaseReclaimer

    settings = cli_settings()
    _logging(settings)
    init_runtime(settings, migrate=False)
    jobs.import_tasks()
    consumer = jobs.huey.create_consumer(
        workers=threads or settings.inline_worker_threads, worker_type="thread", periodic=True, **jobs.POLLING
    )
    # Rows of a worker that died (no lease renewed) are taken over within a lease and a half.
    reclaimer = LeaseReclaimer(lambda: get_runtime().db).start()
    settle_garbage_collector()
    try:
        consumer.run()  # until SIGINT/SIGTERM
    finally:
        reclaimer.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    from smbc.core.runtime import init_runtime

    init_runtime(cli_settings(), migrate=True)
    typer.echo("database is up to date")


@app.command()
def sandbox(
    ctx: typer.Context,
    host: str = "127.0.0.1",
    bc_port: int = DEMO_BC_PORT,
    sm_port: int = DEMO_SM_PORT,
    customers: int = DEMO_CUSTOMERS,
    orders: int = DEMO_ORDERS,
    app_url: str = "http://127.0.0.1:8000",
    client_id: str = "sandbox-client-id",
    client_secret: str = "sandbox-client-secret",  # noqa: S107 - the sandbox app's own
) -> None:
    """Run only the fake BigCommerce and fake SALESmanago servers, seeded, until Ctrl-C."""
    from smbc.sandbox.runner import run_sandbox

    run_sandbox(echo=typer.echo, **ctx.params)  # every option above is one of the sandbox's


@stores_app.callback()
def stores(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of the stores"),
) -> None:
    """List installed stores and their state."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import func, select

    from smbc.core.runtime import init_runtime
    from smbc.db.models import Store, StoreUser

    runtime = init_runtime(cli_settings(), migrate=False)
    with runtime.db.session() as db:
        members = dict(
            db.execute(select(StoreUser.store_id, func.count()).group_by(StoreUser.store_id)).all()
        )
        listed = [
            {
                "hash": store.hash,
                "name": str((store.info or {}).get("name") or ""),
                "status": store.status,
                "setup_completed": store.setup_completed_at is not None,
                "users": members.get(store.id, 0),
                "sync_paused_reason": store.sync_paused_reason,
                "installed_at": store.installed_at,
                "uninstalled_at": store.uninstalled_at,
            }
            for store in db.scalars(select(Store).order_by(Store.hash))
        ]
    if as_json:
        print_json(listed)
    elif not listed:
        typer.echo("No stores yet: install the app from a BigCommerce control panel.")
    else:
        print_table(
            ("store", "name", "status", "set up", "users", "sync", "installed", "uninstalled"),
            [
                (
                    s["hash"],
                    s["name"],
                    s["status"],
                    "yes" if s["setup_completed"] else "no",
                    str(s["users"]),
                    f"paused: {s['sync_paused_reason']}" if s["sync_paused_reason"] else "on",
                    f"{s['installed_at']:%Y-%m-%d %H:%M}",
                    f"{s['uninstalled_at']:%Y-%m-%d %H:%M}" if s["uninstalled_at"] else "",
                )
                for s in listed
            ],
        )


@stores_app.command("purge")
def stores_purge(
    store_hash: str = typer.Argument(..., metavar="HASH"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Delete EVERYTHING of a store (settings, ledgers, history). Cannot be undone."""
    from smbc.core.runtime import init_runtime
    from smbc.stores.installation import purge_store

    runtime = init_runtime(cli_settings(), migrate=False)
    if not yes:
        typer.confirm(f"Delete every record of store {store_hash}? This cannot be undone", abort=True)
    with runtime.db.session() as db:
        counts = purge_store(db, store_hash)
    if counts is None:
        typer.echo(f"no store {store_hash}", err=True)
        raise typer.Exit(1)
    deleted = ", ".join(f"{table}: {n}" for table, n in sorted(counts.items()) if n)
    typer.echo(f"purged store {store_hash} ({deleted})")


@app.command()
def demo(
    port: int = typer.Option(8000, help="port of the app"),
    bc_port: int = typer.Option(DEMO_BC_PORT, help="port of the fake BigCommerce (control panel)"),
    sm_port: int = typer.Option(DEMO_SM_PORT, help="port of the fake SALESmanago"),
) -> None:
    """The whole product on this machine, with the sandbox store and SALESmanago account, seeded."""
    from smbc.sandbox import Sandbox  # only demo, `smbc sandbox` and tests start the sandbox

    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url, bc_port=bc_port, sm_port=sm_port, **DEMO_SANDBOX) as sb:
        try:
            settings = load_settings(
                database_url=f"sqlite:///{DEMO_VAR_DIR / 'smbc.db'}",
                queue_url=f"sqlite:///{DEMO_VAR_DIR / 'queue.db'}",
                var_dir=DEMO_VAR_DIR,
                workers="inline",
                **{**sb.app_settings(), "app_url": app_url},
            )
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        typer.echo("")
        typer.echo(f"  Open the BigCommerce control panel:  {sb.control_panel_url}")
        typer.echo(f"  (the app runs at {app_url}; fake SALESmanago at {sb.sm_url}/sandbox)")
        typer.echo("  Press Ctrl-C to stop.")
        typer.echo("")
        from smbc.core.logging_config import configure_logging

        configure_logging("WARNING")  # keep the URLs above readable; problems still show
        _serve(settings, "127.0.0.1", port)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


@app.command()
def reconcile(store: str = STORE) -> None:
    """Read changes missed by webhooks now, send them, and repair the store's hooks."""
    import json

    from sqlalchemy import select

    from smbc.core.runtime import init_runtime
    from smbc.db.models import Store
    from smbc.reconcile.service import reconcile_store

    runtime = init_runtime(cli_settings(), migrate=cli_settings().is_sqlite)
    with runtime.db.session() as session:
        store_id = session.scalars(select(Store.id).where(Store.hash == store)).first()
    if store_id is None:
        typer.echo(f"no store with hash {store!r}", err=True)
        raise typer.Exit(1)
    report = reconcile_store(store_id, process_inline=True)
    typer.echo(json.dumps(report.summary(), indent=2))
    if report.error:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
