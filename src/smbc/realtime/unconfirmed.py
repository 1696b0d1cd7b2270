"""Sending an unconfirmed event again on purpose (`smbc deliveries resend` and the Activity tab's
Send again, through `actions.deliveries.resend_unconfirmed`).

A delivery whose PURCHASE, CANCELLATION or RETURN was interrupted while being sent (a read timeout,
a worker killed before it recorded the answer) ends done with its event `unconfirmed`: SALESmanago
may have it and cannot be asked, so the app never sends it again by itself. A merchant who checked
that SALESmanago lacks it sends it again here: the delivery's unconfirmed ledger rows are released
and the delivery is queued again in the same transaction, so its next run claims and sends them."""

from __future__ import annotations

from sqlalchemy import select

from smbc.core.clock import utcnow
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.engine.ledgers import SentEvent, release_unconfirmed_events
from smbc.realtime import processing
from smbc.realtime.models import WebhookDelivery

FINISHED = (RowStatus.DONE.value, RowStatus.FAILED.value, RowStatus.SKIPPED.value)


def unconfirmed_deliveries(db: Database, store_id: int, delivery_ids: list[int]) -> set[int]:
    """Which of these deliveries hold an unconfirmed event (one query): those offer Send again."""
    if not delivery_ids:
        return set()
    owners = {f"delivery:{delivery_id}": delivery_id for delivery_id in delivery_ids}
    with db.session() as session:
        held = session.scalars(
            select(SentEvent.claimed_by).where(
                SentEvent.store_id == store_id,
                SentEvent.claimed_by.in_(list(owners)),
                SentEvent.state == "unconfirmed",
            )
        )
        return {owners[owner] for owner in held}


def resend_unconfirmed(db: Database, store_id: int, delivery_id: int) -> int:
    """Release the unconfirmed events of a finished delivery of the store and queue it again, with a
    fresh count of attempts. Returns how many events will be sent again (0: nothing changed)."""
    with db.session() as session:
        row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None or row.store_id != store_id or row.status not in FINISHED:
            return 0
        released = release_unconfirmed_events(session, store_id, f"delivery:{delivery_id}")
        if not released:
            return 0
        row.status, row.next_attempt_at, row.attempts = RowStatus.PENDING.value, utcnow(), 0
        row.reason = f"{released} unconfirmed event(s) to be sent again on request"
        row.last_error = ""
    processing.enqueue_delivery(delivery_id)
    return released
