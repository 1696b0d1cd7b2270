"""The merchant's SALESmanago account actions (dashboard and CLI alike): log in with e-mail and
password, log in with API credentials, log out, refresh the owners list, rotate the callback token.
A login or logout commits the account change, then starts what follows from it: deliveries that
waited are resumed, and the storefront monitoring code is queued to follow the account (installed
with the new client ID, or removed). No transaction is open while SALESmanago is called."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Concatenate, ParamSpec

import httpx

from smbc.account import login as account_login
from smbc.account.credentials import callback_urls
from smbc.account.login import LoginResult, LogoutResult, OwnersRefresh
from smbc.actions.store_lookup import installed_store
from smbc.core.config import Settings
from smbc.db.session import Database
from smbc.engine.pausing import resume_store
from smbc.monitoring.scripts import monitoring_sync_task
from smbc.stores.access import rotate_callback_token as rotate_token

log = logging.getLogger(__name__)
P = ParamSpec("P")


def _by_store_hash(
    login: Callable[Concatenate[Database, int, P], LoginResult],
) -> Callable[Concatenate[Database, str, P], LoginResult]:
    """The account login for a store named by its hash; once the login is committed, what follows
    from it starts. Raises LoginFailed (nothing saved) or StoreNotInstalled."""

    def action(db: Database, store_hash: str, /, *args: P.args, **kwargs: P.kwargs) -> LoginResult:
        result = login(db, _installed_store_id(db, store_hash), *args, **kwargs)
        _after_login(db, result.account.store_id)
        return result

    action.__name__ = action.__qualname__ = login.__name__
    action.__doc__ = login.__doc__
    return action


# Connect the store with the merchant's SALESmanago e-mail and password.
login_with_password = _by_store_hash(account_login.login_with_password)
# Connect the store with API credentials (users with two-factor authentication).
login_with_api_credentials = _by_store_hash(account_login.login_with_api_credentials)


def logout(
    db: Database, store_hash: str, *, settings: Settings, actor: str, http: httpx.Client | None = None
) -> LogoutResult:
    """Revoke the v3 key, forget the credentials and pause syncing; the monitoring code comes off the
    storefronts. Raises StoreNotInstalled."""
    store_id = _installed_store_id(db, store_hash)
    result = account_login.logout(db, store_id, settings=settings, actor=actor, http=http)
    if result.was_connected:
        queue_monitoring_sync(store_id)
    return result


def refresh_owners(db: Database, store_hash: str, *, http: httpx.Client | None = None) -> OwnersRefresh:
    """Read the account's users again (the contact owners to choose from). Raises LoginFailed or
    StoreNotInstalled."""
    return account_login.refresh_owners(db, _installed_store_id(db, store_hash), http=http)


def rotate_callback_token(db: Database, store_hash: str, *, actor: str, app_url: str) -> dict[str, str]:
    """A new callback token: the opt-in/opt-out callback URLs change and the old ones stop working
    (the merchant pastes the new ones into SALESmanago). Logged in the change log. Returns the new
    URLs ({"opt_in": ..., "opt_out": ...}). Raises StoreNotInstalled."""
    with db.session() as session:
        store = installed_store(session, store_hash)
        rotate_token(session, store, actor, "by a user")
        return callback_urls(app_url, store)


def _installed_store_id(db: Database, store_hash: str) -> int:
    """A short read of its own: the SALESmanago calls that follow run with no transaction open."""
    with db.session() as session:
        return installed_store(session, store_hash).id


def _after_login(db: Database, store_id: int) -> None:
    """Once the login is committed: the deliveries that waited while logged out or while the
    credentials were broken are re-queued (the real-time sweep would also find them within a minute),
    and the monitoring code is installed with the new client ID."""
    try:
        resume_store(store_id, db=db)
    except Exception:  # the login itself succeeded; the periodic sweep catches up
        log.warning("could not resume syncing for store %s after login", store_id, exc_info=True)
    queue_monitoring_sync(store_id)


def queue_monitoring_sync(store_id: int) -> None:
    """Queue the storefront code to follow the committed account or settings change."""
    try:
        monitoring_sync_task(store_id)
    except Exception:  # the change stands; the merchant can save or restore on the Monitoring tab
        log.warning("could not queue the monitoring code sync for store %s", store_id, exc_info=True)
