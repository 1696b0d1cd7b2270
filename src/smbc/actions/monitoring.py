"""Restoring the storefront monitoring code (the Monitoring tab's Restore and `smbc monitoring
restore` alike): BigCommerce's scripts made to match the saved monitoring settings again, e.g. after
someone deleted the script in Script Manager."""

from __future__ import annotations

from smbc.actions.store_lookup import installed_store
from smbc.db.session import Database
from smbc.monitoring.scripts import SyncResult, sync_store


def restore_monitoring(db: Database, store_hash: str, *, app_url: str) -> SyncResult:
    """Create, update or remove the app's scripts so every storefront has what the settings say.
    The result says what changed, or why it could not. Raises StoreNotInstalled."""
    with db.session() as session:
        store_id = installed_store(session, store_hash).id
    return sync_store(db, store_id, app_url=app_url, refresh=False)
