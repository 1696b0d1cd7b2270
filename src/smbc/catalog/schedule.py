"""The background full sync: once a day, every storefront with a catalog (real time keeps it current
in between; the daily run catches what webhooks lost and products gone since)."""

from __future__ import annotations

from huey import crontab

from smbc.catalog.service import start_due_syncs
from smbc.core.jobs import huey


@huey.periodic_task(crontab(hour="2", minute="47"))
def daily_catalog_sync_task() -> None:
    start_due_syncs()
