"""What the Product Catalog tab and `smbc catalog` call: the account's catalogs (listed live), create
one for a storefront, pick one, start a full sync, and each storefront's sync status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.account.catalog_access import NoCatalogKey, catalog_api, has_catalog_key
from smbc.account.credentials import Storefront, effective_locations, storefronts
from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.catalog.models import ACTIVE_STATUSES, CatalogSync, SyncStatus
from smbc.catalog.sync import enqueue_sync
from smbc.core.remote_calls import RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime import catalog_ledger as ledger
from smbc.salesmanago.catalog import Catalog
from smbc.salesmanago.client import record_calls_into
from smbc.settings.store_settings import load_store_settings, save_store_settings

CATALOG_NAME_MAX = 64
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


class CatalogProblem(ValueError):
    """What the merchant did cannot be done (no catalog chosen, a bad name, no v3 key)."""


@dataclass(frozen=True)
class StorefrontCatalogStatus:
    """One storefront as the tab shows it."""

    storefront: Storefront
    location: str
    catalog_id: str
    paused: str | None
    last: CatalogSync | None  # the latest sync (running or ended)

    @property
    def running(self) -> bool:
        return self.last is not None and self.last.active


def _store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise CatalogProblem("Unknown store.")
    return store


def catalog_status(db: Database, store_id: int) -> tuple[bool, list[StorefrontCatalogStatus]]:
    """(the account has a v3 key, each storefront's catalog and latest sync)."""
    with db.session() as session:
        store = _store(session, store_id)
        settings = load_store_settings(session, store_id)
        locations = effective_locations(store, settings)
        out = []
        for storefront in storefronts(store):
            last = session.scalar(
                select(CatalogSync)
                .where(CatalogSync.store_id == store_id, CatalogSync.channel_id == storefront.channel_id)
                .order_by(CatalogSync.id.desc())
                .limit(1)
            )
            if last is not None:
                session.expunge(last)
            out.append(
                StorefrontCatalogStatus(
                    storefront=storefront,
                    location=locations.get(storefront.channel_id, ""),
                    catalog_id=settings.catalogs.get(storefront.channel_id, ""),
                    paused=ledger.paused_message(
                        session,
                        store_id,
                        storefront.channel_id,
                        settings.catalogs.get(storefront.channel_id, ""),
                    ),
                    last=last,
                )
            )
        return has_catalog_key(session, store_id), out


def list_catalogs(db: Database, store_id: int) -> list[Catalog]:
    """The account's catalogs, asked from SALESmanago now. NoCatalogKey without a v3 key."""
    calls = CallBuffer(context="catalog:list")
    with db.session() as session:
        store = _store(session, store_id)
        api = catalog_api(session, store, recorder=record_calls_into(calls, store_id), context=calls.context)
    try:
        return api.catalogs()
    finally:
        with db.session() as session:
            calls.flush(session)


def create_catalog(
    db: Database, store_id: int, channel_id: int, name: str, *, recommendations: bool, actor: str
) -> str:
    """Create a catalog for a storefront (its default currency and location) and pick it."""
    name = "_".join(name.split())  # SALESmanago's own plugins turn spaces into _
    if not name or len(name) > CATALOG_NAME_MAX or not _NAME_RE.match(name):
        raise CatalogProblem(f"Name the catalog with 1 to {CATALOG_NAME_MAX} letters, digits or _.")
    calls = CallBuffer(context="catalog:create")
    with db.session() as session:
        store = _store(session, store_id)
        settings = load_store_settings(session, store_id)
        if channel_id not in {s.channel_id for s in storefronts(store)}:
            raise CatalogProblem(f"This store has no storefront channel {channel_id}.")
        location = effective_locations(store, settings)[channel_id]
        api = catalog_api(session, store, recorder=record_calls_into(calls, store_id), context=calls.context)
        bc = bc_for_store(store, recorder=calls, context=calls.context)
        store_currency = str((store.info or {}).get("currency") or "USD")
    try:
        currency = bc_catalog.default_currency(bc, channel_id) or store_currency
        catalog_id = api.create_catalog(name, currency, location, set_as_default=recommendations)
    finally:
        with db.session() as session:
            calls.flush(session)
    choose_catalog(db, store_id, channel_id, catalog_id, actor=actor)
    return catalog_id


def choose_catalog(db: Database, store_id: int, channel_id: int, catalog_id: str, *, actor: str) -> None:
    """Point a storefront at a catalog (empty: stop syncing it); the `catalog.<channel_id>` setting.
    A storefront paused because its catalog was deleted goes on with the new one."""
    with db.session() as session:
        store = _store(session, store_id)
        channel_ids = {s.channel_id for s in storefronts(store)}
        save_store_settings(
            session, store_id, {f"catalog.{channel_id}": catalog_id}, actor, channel_ids=channel_ids
        )


def start_sync(
    db: Database,
    store_id: int,
    channel_ids: list[int] | None = None,
    *,
    actor: str = "",
    enqueue: bool = True,
) -> list[int]:
    """A full sync of each storefront that has a catalog (or of `channel_ids`): the ids of the sync
    rows, an already running one kept. CatalogProblem when nothing can be synced, with the reason."""
    with db.session() as session:
        store = _store(session, store_id)
        if not has_catalog_key(session, store_id):
            raise NoCatalogKey()
        settings = load_store_settings(session, store_id)
        known = [s.channel_id for s in storefronts(store)]
        wanted = channel_ids or [
            c
            for c in known
            if settings.catalogs.get(c)
            and not ledger.paused_message(session, store_id, c, settings.catalogs[c])
        ]  # all storefronts: the paused ones wait for another catalog, the others go on
        problems = []
        for channel_id in wanted:
            if channel_id not in known:
                problems.append(f"This store has no storefront channel {channel_id}.")
            elif not settings.catalogs.get(channel_id):
                problems.append(
                    f"Storefront {channel_id} has no catalog: pick one first (catalog.{channel_id})."
                )
            elif paused := ledger.paused_message(
                session, store_id, channel_id, settings.catalogs[channel_id]
            ):
                problems.append(paused)
        if problems or not wanted:
            raise CatalogProblem(
                " ".join(problems) or "No storefront has a catalog to sync: pick or create one first."
            )
        catalogs = {c: settings.catalogs[c] for c in wanted}
    ids = [
        _sync_row(db, store_id, channel_id, catalog_id, actor) for channel_id, catalog_id in catalogs.items()
    ]
    if enqueue:
        for sync_id in ids:
            enqueue_sync(sync_id)
    return ids


def _sync_row(db: Database, store_id: int, channel_id: int, catalog_id: str, actor: str) -> int:
    slot = f"{store_id}:{channel_id}"
    try:
        with db.session() as session:
            row = CatalogSync(
                store_id=store_id,
                channel_id=channel_id,
                catalog_id=catalog_id,
                active_slot=slot,
                actor=actor[:320],
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:  # one is queued or running already: that one it is
        with db.session() as session:
            running = session.scalar(select(CatalogSync.id).where(CatalogSync.active_slot == slot))
            if running is None:
                raise
            return running


def sync_rows(db: Database, ids: list[int]) -> list[CatalogSync]:
    with db.session() as session:
        rows = list(
            session.scalars(select(CatalogSync).where(CatalogSync.id.in_(ids)).order_by(CatalogSync.id))
        )
        session.expunge_all()
    return rows


def start_due_syncs(db: Database | None = None, now: datetime | None = None) -> int:
    """The background full sync: every installed store's storefronts with a catalog, not running."""
    db = db or get_runtime().db
    started = 0
    with db.session() as session:
        store_ids = list(session.scalars(select(Store.id).where(Store.status == "installed")))
    for store_id in store_ids:
        try:
            before = _active_ids(db, store_id)
            started += len(set(start_sync(db, store_id, actor="schedule")) - before)
        except (CatalogProblem, NoCatalogKey, RemoteCallError):
            continue
    return started


def _active_ids(db: Database, store_id: int) -> set[int]:
    with db.session() as session:
        return set(
            session.scalars(
                select(CatalogSync.id).where(
                    CatalogSync.store_id == store_id,
                    CatalogSync.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
            )
        )


SYNC_DONE = SyncStatus.DONE.value
