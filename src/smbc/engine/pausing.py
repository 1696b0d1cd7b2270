"""Why a store's sync is paused, pausing it, and resuming it.

One enum, stored as its value in `stores.sync_paused_reason`. While a store is paused its queued
rows wait (`RowStatus.WAITING`); resuming makes them due again in every registered queue."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from smbc.core.clock import utcnow
from smbc.core.metrics import STORE_PAUSES
from smbc.core.remote_calls import RemoteCallError, Service
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.queue import QUEUES, sweep_all


class PauseReason(StrEnum):
    SALESMANAGO_CREDENTIALS = "credentials"  # SALESmanago refused the stored credentials
    BIGCOMMERCE_CREDENTIALS = "bigcommerce_credentials"  # BigCommerce refused the store's token
    LOGGED_OUT = "logged_out"  # the merchant logged out of SALESmanago
    UNINSTALLED = "uninstalled"
    # An uninstall callback came but BigCommerce could not be asked yet whether the app is gone.
    UNINSTALL_UNCONFIRMED = "uninstall_unconfirmed"

    @property
    def lifted_by_login(self) -> bool:
        return self in (PauseReason.SALESMANAGO_CREDENTIALS, PauseReason.LOGGED_OUT)


# Reasons that a later success (a login, a new token) lifts; an uninstalled store stays paused.
RESUMABLE = (PauseReason.SALESMANAGO_CREDENTIALS, PauseReason.BIGCOMMERCE_CREDENTIALS, PauseReason.LOGGED_OUT)
# Reasons a successful SALESmanago login lifts by itself.
LIFTED_BY_LOGIN = tuple(reason for reason in PauseReason if reason.lifted_by_login)


def pause_reason_for(exc: RemoteCallError) -> PauseReason:
    """The pause a CREDENTIALS outcome calls for: whose credentials were refused."""
    if exc.service is Service.BIGCOMMERCE:
        return PauseReason.BIGCOMMERCE_CREDENTIALS
    return PauseReason.SALESMANAGO_CREDENTIALS


def pause_store(session: Session, store_id: int, reason: PauseReason) -> bool:
    """Pause the store's sync for `reason`, unless it is paused already (the first reason stays).
    Returns whether this call paused it."""
    result = session.execute(
        update(Store)
        .where(Store.id == store_id, Store.sync_paused_reason.is_(None))
        .values(sync_paused_reason=reason.value)
    )
    paused = result.rowcount == 1  # type: ignore[attr-defined]
    if paused:
        STORE_PAUSES.labels(reason.value).inc()
    return paused


def resume_store(
    store_id: int, *, db: Database | None = None, reasons: Iterable[PauseReason] = RESUMABLE
) -> int:
    """Lift a pause for one of `reasons` (after a login, or once the store's token works again),
    make the rows that waited due in every registered queue, and sweep the queues so they run now.
    Returns how many waiting rows were made due (0 when the store stays paused for another reason)."""
    db = db or get_runtime().db
    now = utcnow()
    lifted = {reason.value for reason in reasons}
    woken = 0
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            return 0
        if store.sync_paused_reason in lifted:
            store.sync_paused_reason = None
        if store.sync_paused_reason:
            return 0  # paused for another reason (logged out, uninstalled): not ours to lift
        for kind in QUEUES.values():
            if kind.wake is not None:
                woken += len(kind.wake(session, store_id, now))
    sweep_all(db, now)
    return woken
