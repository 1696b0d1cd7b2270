"""`smbc catalog list|sync`: the account's SALESmanago product catalogs, and a full sync of the
storefronts' products run here with a progress bar (the same sync the dashboard starts in the
background)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from smbc.cli.common import STORE, actor, fail, print_json, print_table, store_runtime

if TYPE_CHECKING:
    from smbc.catalog.models import CatalogSync
    from smbc.db.session import Database

catalog_app = typer.Typer(
    help="SALESmanago product catalogs and the storefronts' product sync", no_args_is_help=True
)


def _store_id(db: Database, store_hash: str) -> int:
    """The installed store's id; not installed ends the command in `store_runtime`."""
    from smbc.actions.store_lookup import installed_store

    with db.session() as session:
        return installed_store(session, store_hash).id


@catalog_app.command("list")
def catalog_list(
    store: str = STORE, as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")
) -> None:
    """The SALESmanago product catalogs of the store's account (id, name, currency, location)."""
    from smbc.account.catalog_access import NoCatalogKey
    from smbc.catalog import service
    from smbc.core.remote_calls import RemoteCallError

    with store_runtime(store) as (db, _settings):
        store_id = _store_id(db, store)
        try:
            catalogs = service.list_catalogs(db, store_id)
        except NoCatalogKey as exc:
            raise fail(str(exc)) from None
        except RemoteCallError as exc:
            raise fail(f"SALESmanago did not list the catalogs: {exc.message}") from None
        _, storefronts = service.catalog_status(db, store_id)
    used = {s.catalog_id: s.storefront.channel_id for s in storefronts if s.catalog_id}
    if as_json:
        print_json(
            [
                {
                    "id": c.catalog_id,
                    "name": c.name,
                    "currency": c.currency,
                    "location": c.location,
                    "channel": used.get(c.catalog_id),
                }
                for c in catalogs
            ]
        )
        return
    rows = [[c.catalog_id, c.name, c.currency, c.location, str(used.get(c.catalog_id, ""))] for c in catalogs]
    print_table(["id", "name", "currency", "location", "storefront"], rows)


@catalog_app.command("sync")
def catalog_sync(
    store: str = STORE,
    channel: list[int] = typer.Option(
        [], "--channel", help="storefront channel id (repeatable; default: all)"
    ),
) -> None:
    """Send every product of the storefront(s) to their catalog now, with a progress bar."""
    from smbc.account.catalog_access import NoCatalogKey
    from smbc.catalog import service

    with store_runtime(store) as (db, _settings):
        store_id = _store_id(db, store)
        try:
            ids = service.start_sync(db, store_id, list(channel) or None, actor=actor(), enqueue=False)
        except (service.CatalogProblem, NoCatalogKey) as exc:
            raise fail(str(exc)) from None
        finals = [_follow(db, sync) for sync in service.sync_rows(db, ids)]
    for final in finals:
        _summary(final)
    if any(f.status != service.SYNC_DONE for f in finals):
        raise typer.Exit(1)


def _follow(db: Database, queued: CatalogSync) -> CatalogSync:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from smbc.catalog import service
    from smbc.catalog.sync import run_sync
    from smbc.core.clock import get_clock, utcnow

    label = f"Storefront {queued.channel_id} -> catalog {queued.catalog_id}"
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} products read, {task.fields[sent]} sent, {task.fields[failed]} refused"),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(label, total=None, sent=0, failed=0)

        def on_page(row: CatalogSync) -> None:
            bar.update(task, completed=row.products_read, sent=row.sent, failed=row.failed)

        while True:
            status = run_sync(queued.id, db=db, time_slice=None, on_page=on_page, force=True)
            [row] = service.sync_rows(db, [queued.id])
            if status is None or not row.active:
                return row
            if row.next_attempt_at is not None:  # a retry is scheduled: say why, wait for it
                wait = max((row.next_attempt_at - utcnow()).total_seconds(), 0.0)
                typer.echo(f"Retrying in {wait:.0f} s: {row.last_error}", err=True)
                get_clock().sleep(wait)


def _summary(row: CatalogSync) -> None:
    typer.echo(
        f"Storefront {row.channel_id}: {row.status}; {row.products_read} products read, {row.sent} sent, "
        f"{row.gone} marked unavailable, {row.failed} refused."
    )
    for reason, count in sorted((row.reasons or {}).items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {count} refused: {reason}")
    if row.last_error:
        typer.echo(row.last_error, err=True)
