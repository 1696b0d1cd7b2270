"""Newsletter consent written back to BigCommerce, as queued rows on the engine (`engine.queue`).

A SALESmanago callback (or opt-in synchronization) records a `ConsentWriteBack` row and enqueues it;
a worker applies it to the subscribers with the BigCommerce client, with the same claim, retries,
backoff and call records as webhook deliveries. Before writing, the consent being written is put in
the contact ledger, so the `store/subscriber/updated` echo finds "nothing changed" and is not sent
back to SALESmanago. Only BigCommerce is called, so only a BigCommerce credentials pause holds the
rows back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.consent.double_opt_in import close_subscription_round
from smbc.consent.models import ConsentWriteBack
from smbc.consent.service import ACTIONS, OPT_IN, OPT_OUT, consents_after
from smbc.consent.subscriber_index import _index_insert
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine import queue
from smbc.engine.context import Result, RowStatus
from smbc.engine.ledgers import remember_contact
from smbc.engine.pausing import PauseReason, pause_reason_for, pause_store
from smbc.mapping import rules
from smbc.mapping.rules import NEWSLETTER
from smbc.settings.store_settings import StoreSettings, load_store_settings

log = logging.getLogger(__name__)


def record_write_back(
    session: Session,
    store_id: int,
    email: str,
    action: str,
    *,
    source: str,
    channel_id: int | None = None,
    subscriber_fields: dict[str, Any] | None = None,
) -> ConsentWriteBack:
    """Add a pending write-back row (the caller commits, then `enqueue_write_back`)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown consent action {action!r}")
    row = ConsentWriteBack(
        store_id=store_id,
        email=rules.normalize_email(email),
        action=action,
        source=source,
        channel_id=channel_id,
        subscriber_fields=dict(subscriber_fields or {}),
        status=RowStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    return row


@huey.task()
def write_back_task(write_back_id: int) -> None:
    apply_write_back(write_back_id)


def enqueue_write_back(write_back_id: int) -> None:
    """Ask a worker to apply the row now; if the queue is down, the sweep finds the row later."""
    queue.enqueue_or_leave(write_back_task, write_back_id, what="write-back")


@dataclass
class _Work:
    row: ConsentWriteBack
    store: Store | None
    settings: StoreSettings
    newer: int | None
    calls: CallBuffer = field(default_factory=CallBuffer)


def apply_write_back(write_back_id: int, *, db: Database | None = None) -> Result | None:
    """Apply one write-back row to BigCommerce (None: not due, or another worker has it)."""
    db = db or get_runtime().db
    now = utcnow()
    with db.session() as session:
        if not queue.claim(session, ConsentWriteBack, write_back_id, now):
            return None
    with db.session() as session:
        row = session.get(ConsentWriteBack, write_back_id)
        assert row is not None
        store = session.get(Store, row.store_id)
        settings = load_store_settings(session, row.store_id)
        newer = session.scalar(
            select(ConsentWriteBack.id)
            .where(
                ConsentWriteBack.store_id == row.store_id,
                ConsentWriteBack.email == row.email,
                ConsentWriteBack.id > row.id,
            )
            .order_by(ConsentWriteBack.id.desc())
            .limit(1)
        )
        session.expunge_all()
    work = _Work(row, store, settings, newer, CallBuffer(context=f"consent:{write_back_id}"))
    error: RemoteCallError | None = None
    if store is None or not store.installed:
        result = Result.skipped("store uninstalled")
    elif newer is not None:
        result = Result.done(f"superseded by write-back {newer}")  # the latest callback decides
    elif store.sync_paused_reason == PauseReason.BIGCOMMERCE_CREDENTIALS:
        result = Result.waiting(f"sync paused: {store.sync_paused_reason}")
    else:
        try:
            bc = bc_for_store(store, recorder=work.calls, context=work.calls.context)
            result = _write(db, bc, work)
        except RemoteCallError as exc:
            error = exc
            result = queue.result_for(exc)
        except Exception as exc:  # a bug must not lose the consent: retry later, keep the error
            log.exception("write-back %s failed", write_back_id)
            result = queue.result_for_unexpected(exc)
    return _finish(db, work, result, now, error)


def _write(db: Database, bc: BigCommerceClient, work: _Work) -> Result:
    row = work.row
    subscribers = [
        s
        for s in bc.subscribers(email=row.email).items()
        if rules.normalize_email(s.get("email")) == row.email
    ]
    if not subscribers and row.action == OPT_OUT:
        return Result.done("no subscriber with this e-mail: nothing to opt out")
    changes = [(s, consents_after(row.action, s.get("consents"))) for s in subscribers]
    changes = [(s, c) for s, c in changes if c is not None]
    if subscribers and not changes:
        return Result.done("already opted in" if row.action == OPT_IN else "already opted out")
    opted_in = row.action == OPT_IN
    # Echo suppression: the ledger holds the consent BigCommerce is about to report back, before the
    # write, so the `store/subscriber/*` echo is "nothing changed" and is not sent to SALESmanago.
    with db.session() as session:
        remember_contact(session, row.store_id, row.email, opted_in=opted_in)
        if not opted_in:
            close_subscription_round(session, row.store_id, row.email)
    if not subscribers:
        return _create_subscriber(db, bc, work)
    for subscriber, consents in changes:
        bc.set_subscriber_consents(int(subscriber["id"]), consents)
        _index_insert(db, row.store_id, int(subscriber["id"]), row.email, opted_in)
    ids = ", ".join(str(s["id"]) for s, _ in changes)
    return Result.done(f"subscriber {ids} {'opted in' if opted_in else 'opted out (consents emptied)'}")


def _create_subscriber(db: Database, bc: BigCommerceClient, work: _Work) -> Result:
    row = work.row
    channel_id = row.channel_id or work.settings.newsletter_channel
    fields = {
        k: v for k, v in (row.subscriber_fields or {}).items() if k in ("first_name", "last_name") and v
    }
    body = {
        "email": row.email,
        "channel_id": channel_id,
        "source": "custom",
        "consents": [NEWSLETTER],
        **fields,
    }
    try:
        created = bc.create_subscriber(body)
    except RemoteCallError as exc:
        if exc.status != 409:
            raise
        # Created meanwhile (by the shopper or another write-back): retry, which will update it.
        return Result.retry("a subscriber with this e-mail was created meanwhile", 1.0)
    if created.get("id"):
        _index_insert(db, row.store_id, int(created["id"]), row.email, True)
    return Result.done(f"subscriber {created.get('id')} created on channel {channel_id}, opted in")


def _finish(
    db: Database, work: _Work, result: Result, now: datetime, error: RemoteCallError | None
) -> Result:
    """Record the outcome, the calls made and a pause, in one transaction."""
    with db.session() as session:
        work.calls.flush(session)
        if work.store is not None and error is not None and error.outcome is Outcome.CREDENTIALS:
            pause_store(session, work.store.id, pause_reason_for(error))
        return queue.finish(session, ConsentWriteBack, work.row, result, now)


def due_write_back_ids(
    db: Database, now: datetime | None = None, limit: int = queue.SWEEP_LIMIT
) -> list[int]:
    """Rows a worker should apply now: due retries, rows whose queue message was lost, rows held by a
    worker that died, and rows that waited for a BigCommerce credentials pause since lifted."""
    now = now or utcnow()
    with db.session() as session:
        not_paused = select(Store.id).where(
            Store.status == "installed",
            or_(
                Store.sync_paused_reason.is_(None),
                Store.sync_paused_reason != PauseReason.BIGCOMMERCE_CREDENTIALS,
            ),
        )
        return queue.due_row_ids(session, ConsentWriteBack, now, limit, resumable_stores=not_paused)


WRITE_BACKS = queue.register_queue(
    queue.QueueKind(
        "consent_write_backs", due_write_back_ids, enqueue_write_back, wake=queue.waking(ConsentWriteBack)
    )
)


def sweep_write_backs(db: Database | None = None, now: datetime | None = None) -> int:
    """Enqueue every write-back that is due (the periodic `engine.queue.sweep_queues_task` does this)."""
    return queue.sweep(WRITE_BACKS, db, now)
