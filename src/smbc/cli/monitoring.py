"""`smbc monitoring restore`: the Monitoring tab's Restore from the command line."""

from __future__ import annotations

import typer

from smbc.cli.common import STORE, fail, store_runtime

monitoring_app = typer.Typer(
    help="The SALESmanago monitoring code on a store's storefronts", no_args_is_help=True
)


@monitoring_app.command("restore")
def monitoring_restore(store: str = STORE) -> None:
    """Put the monitoring code back as the settings say (e.g. after it was deleted in Script Manager)."""
    from smbc.actions.monitoring import restore_monitoring

    with store_runtime(store) as (db, settings):
        result = restore_monitoring(db, store, app_url=settings.app_url)
    if not result.ok:
        raise fail(f"Not restored: {result.error}")
    channels = sorted(str(script.get("channel_id")) for script in result.live)
    where = f"on storefront channel(s) {', '.join(channels)}" if channels else "on no storefront"
    typer.echo(
        f"The monitoring code was restored: {result.created} created, {result.updated} updated, "
        f"{result.deleted} removed; it is live {where}."
    )
