"""What a batch of deliveries needs of its store (the store row, its settings, its SALESmanago
credentials), kept per process and reused while the rows it came from are unchanged.

Building it costs a worker about a quarter of its CPU per delivery when done for every batch
(the settings validated, the credentials decrypted and the owner worked out, twice over). One
statement reads the rows as stored (secrets still encrypted, settings as saved JSON); when they
equal what the snapshot was built from, the snapshot is used again. Any change to the store, its
settings or its account (a save, a pause, a log-out, a new key) changes those rows, so the next batch
builds a new snapshot: nothing is ever used stale."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Text, bindparam, cast, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from smbc.account.credentials import store_credentials
from smbc.account.models import SalesmanagoAccount
from smbc.core.remote_calls import RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.db.types import EncryptedText
from smbc.salesmanago.client import SalesmanagoCredentials
from smbc.settings.models import StoreSettingsRow
from smbc.settings.store_settings import StoreSettings, load_store_settings

# Snapshots kept per process; past this many stores the cache starts again (a rebuild is one batch's cost).
MAX_SNAPSHOTS = 2048


@dataclass(frozen=True)
class StoreSnapshot:
    """A detached copy of the store, its settings and its SALESmanago credentials (or why there are
    none: the error the outcome table turns into a pause). Shared by threads: read, never changed."""

    store: Store
    settings: StoreSettings
    credentials: SalesmanagoCredentials | RemoteCallError


def _as_stored(column: Any) -> ColumnElement[Any]:
    """The column as stored: an encrypted one is compared as its ciphertext, never decrypted, and a
    JSON one as its text, never parsed (the fingerprint is only compared)."""
    if isinstance(column.type, EncryptedText):
        return type_coerce(column, Text)
    if isinstance(column.type, JSON):
        return cast(column, Text)
    return column


_ACCOUNT_COLUMNS = ("id", "endpoint", "client_id", "api_key", "sha", "login_email", "owners")
_STORES = Store.__table__
_SETTINGS = StoreSettingsRow.__table__
_ACCOUNTS = SalesmanagoAccount.__table__
# Core, on the tables, built once: no ORM loading, and SQLAlchemy's cache key is computed once.
_FINGERPRINT = (
    select(
        *(_as_stored(c) for c in _STORES.columns),
        _as_stored(_SETTINGS.c.data),
        *(_as_stored(_ACCOUNTS.c[name]) for name in _ACCOUNT_COLUMNS),
    )
    .select_from(_STORES)
    .outerjoin(_SETTINGS, _SETTINGS.c.store_id == _STORES.c.id)
    .outerjoin(_ACCOUNTS, _ACCOUNTS.c.store_id == _STORES.c.id)
    .where(_STORES.c.id == bindparam("store_id"))
)

# The store's, its settings' and its account's columns as stored: equal rows, equal snapshot.
Fingerprint = tuple[Any, ...]

_snapshots: dict[int, tuple[Fingerprint, StoreSnapshot]] = {}
_rebuilding: dict[int, threading.Lock] = {}
_lock = threading.Lock()


def store_snapshot(session: Session, store_id: int) -> StoreSnapshot | None:
    """The store's snapshot (None: no such store), rebuilt only when its rows changed."""
    row = session.execute(_FINGERPRINT, {"store_id": store_id}).first()
    if row is None:
        return None
    fingerprint = tuple(row)
    cached = _snapshots.get(store_id)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    store = session.get(Store, store_id)
    if store is None:
        return None
    settings = load_store_settings(session, store_id)
    try:
        credentials: SalesmanagoCredentials | RemoteCallError = store_credentials(session, store)
    except RemoteCallError as exc:  # not connected: the batch turns it into its outcome
        credentials = exc
    session.expunge(store)
    snapshot = StoreSnapshot(store, settings, credentials)
    with _lock:
        if len(_snapshots) >= MAX_SNAPSHOTS:
            _snapshots.clear()
        _snapshots[store_id] = (fingerprint, snapshot)
    return snapshot


def store_fingerprint(connection: Connection, store_id: int) -> Fingerprint | None:
    """The store's rows as stored (None: no such store): one statement, in the caller's transaction
    (a drain reads it in its claim's, so a batch costs no transaction of its own for it)."""
    row = connection.execute(_FINGERPRINT, {"store_id": store_id}).first()
    return None if row is None else tuple(row)


def snapshot_for(db: Database, store_id: int, fingerprint: Fingerprint | None = None) -> StoreSnapshot | None:
    """`store_snapshot` in transactions of its own: the usual case (the store's rows unchanged) is one
    statement on a bare connection, without a Session's bookkeeping (none when `fingerprint`, read
    by `store_fingerprint`, is given); a Session only to rebuild."""
    if fingerprint is None:
        with db.connection() as connection:
            fingerprint = store_fingerprint(connection, store_id)
    if fingerprint is None:
        return None
    cached = _snapshots.get(store_id)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with _lock:
        rebuilding = _rebuilding.setdefault(store_id, threading.Lock())
    # One thread rebuilds a store's snapshot; the others (a worker's threads starting together) wait
    # and take it, instead of each building the same one.
    with rebuilding:
        cached = _snapshots.get(store_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        with db.session() as session:
            return store_snapshot(session, store_id)


def known_store_hash(store_id: int) -> str | None:
    """The store's hash if this process has a snapshot of it (no database read)."""
    cached = _snapshots.get(store_id)
    return None if cached is None else cached[1].store.hash


def forget_snapshots() -> None:
    """Drop every snapshot (tests that rebuild the database under the same store ids)."""
    with _lock:
        _snapshots.clear()
