"""Saving a store's settings (dashboard tabs and `smbc settings set` alike): the dashboard's
validation, one change-log row per changed key, a new callback token when a manager was removed,
and once committed the storefront monitoring code re-synced when a monitoring setting changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from smbc.account.credentials import get_account, storefronts
from smbc.actions.account import queue_monitoring_sync
from smbc.actions.store_lookup import installed_store
from smbc.db.session import Database
from smbc.monitoring.scripts import SyncResult, sync_store
from smbc.settings.store_settings import (
    StoreSettings,
    load_store_settings,
    save_store_settings,
    settings_to_keys,
)
from smbc.stores.access import rotate_if_managers_removed


@dataclass(frozen=True)
class SettingsSaved:
    settings: StoreSettings
    before: dict[str, str]
    after: dict[str, str]
    # The storefront code made to match, when the change was saved with `app_url` and touched it.
    monitoring: SyncResult | None = field(default=None)

    @property
    def changed(self) -> list[str]:
        """The keys whose value changed (a key that disappeared counts as changed)."""
        keys = [k for k in self.after if self.before.get(k, "") != self.after[k]]
        return keys + [k for k in self.before if k not in self.after]

    @property
    def monitoring_changed(self) -> bool:
        return any(key.startswith("monitoring") for key in self.changed)


def save_settings(
    db: Database, store_hash: str, changes: dict[str, object], actor: str, *, app_url: str | None = None
) -> SettingsSaved:
    """Validate and save `changes` ({key: value}); the contact owner is checked against the account's
    owners and locations against the store's storefronts. Who may change which key is the caller's
    check (`smbc.stores.access`). Raises SettingsInvalid (nothing saved) or StoreNotInstalled.

    With `app_url`, changes naming a `monitoring.*` key make the storefronts match at once (the
    result in `monitoring`), as the Monitoring tab and `smbc settings set` show it; without it, a
    changed monitoring setting queues that sync."""
    with db.session() as session:
        store = installed_store(session, store_hash)
        account = get_account(session, store.id)
        previous = load_store_settings(session, store.id)
        before = settings_to_keys(previous)
        updated = save_store_settings(
            session,
            store.id,
            changes,
            actor,
            owners=account.owners if account else None,
            channel_ids={shop.channel_id for shop in storefronts(store)},
        )
        rotate_if_managers_removed(session, store, previous, updated, actor)
        store_id = store.id
    saved = SettingsSaved(settings=updated, before=before, after=settings_to_keys(updated))
    if app_url is not None and any(key.startswith("monitoring") for key in changes):
        synced = sync_store(db, store_id, app_url=app_url, refresh=True)
        return SettingsSaved(saved.settings, saved.before, saved.after, monitoring=synced)
    if saved.monitoring_changed:
        queue_monitoring_sync(store_id)  # the live storefront code follows the saved settings
    return saved
