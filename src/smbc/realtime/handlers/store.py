"""Store information, channels and the app's uninstall."""

from __future__ import annotations

from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.engine.context import Context, Result
from smbc.monitoring.scripts import install_on_new_channel
from smbc.realtime.handlers import Delivery


def handle_store_changed(ctx: Context, delivery: Delivery) -> Result:
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
    if delivery.scope == "store/channel/created" and delivery.resource_id:
        # After the commit above, with no transaction open: it reads and writes in its own.
        app_url = get_runtime().settings.app_url
        install_on_new_channel(ctx.db, ctx.store.id, int(delivery.resource_id), app_url=app_url, api=ctx.bc)
    return Result.done("store details refreshed")


def handle_app_uninstalled(ctx: Context, delivery: Delivery) -> Result:
    return Result.skipped("uninstall is handled by the uninstall callback")
