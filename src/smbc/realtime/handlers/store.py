"""Store information, channels and the app's uninstall."""

from __future__ import annotations

from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.engine.context import Context, Result
from smbc.monitoring.scripts import sync_store
from smbc.realtime.models import WebhookDelivery


def handle_store_changed(ctx: Context, delivery: WebhookDelivery) -> Result:
    """Channels, sites and store information feed locations and languages: refresh them. A new
    storefront gets the monitoring code when the merchant chose "all storefronts"."""
    info = ctx.bc.store_info()
    channels = ctx.bc.channels()
    sites = ctx.bc.sites()
    with ctx.db.session() as session:
        store = session.get(Store, ctx.store.id)
        if store is None:
            return Result.skipped("store no longer exists")
        store.info = info or store.info
        store.channels = channels
        store.sites = sites
    if delivery.scope != "store/channel/created" or not _monitors_every_storefront(ctx):
        return Result.done("store details refreshed")
    # After the commit above: the monitoring sync reads the refreshed channels in its own transactions.
    synced = sync_store(ctx.db, ctx.store.id, app_url=get_runtime().settings.app_url)
    if synced.failure is not None and synced.failure.outcome.retryable:
        raise synced.failure  # the delivery is tried again later
    if synced.error:
        return Result.done(f"store details refreshed; monitoring code not added: {synced.error}")
    return Result.done("store details refreshed; monitoring code synced")


def _monitors_every_storefront(ctx: Context) -> bool:
    return ctx.settings.monitoring_enabled and ctx.settings.monitoring_channels == "all"


def handle_app_uninstalled(ctx: Context, delivery: WebhookDelivery) -> Result:
    return Result.skipped("uninstall is handled by the uninstall callback")
