""" "What happened to order 1234 / customer 42 / x@y / cart …?": every delivery, call and ledger row
about one entity of a store, in time order, each with the reason for its decision; for an e-mail
(or a customer) also its newsletter consent history, every change with its source, time and what
was sent (`consent.history`). `smbc activity --order N` and the Activity tab's search both call
`entity_timeline`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from smbc.consent.history import CHANGE_LABELS, SOURCE_LABELS
from smbc.consent.models import ConsentHistoryEntry
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.engine.ledgers import INTERRUPTED, SENT_STATES, forgotten
from smbc.engine.queue import QueuedRow
from smbc.realtime.entity_records import Entity, EntityRecords, find_entity_records

WRITE_BACK_SOURCES = {
    "callback": "SALESmanago callback",
    "opt_in_sync": "BigCommerce registration (opt-in kept from SALESmanago)",
}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # delivery | call | ledger | consent
    what: str
    status: str
    reason: str  # sent …, skipped because …, waiting because …
    ref: str  # the row: "delivery:42", "call:7", "sent_event:3", ...


@dataclass(frozen=True)
class ConsentChange:
    at: datetime
    source: str  # a `ConsentSource`: bigcommerce, salesmanago_callback, export
    change: str  # a `ConsentChangeKind`: opted_in, opted_out, double_opt_in_requested
    sent: str  # what the app sent about it, and where
    ref: str  # the work it came from: "delivery:42", "consent:7", "export:3"

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def change_label(self) -> str:
        return CHANGE_LABELS.get(self.change, self.change)


@dataclass(frozen=True)
class EntityTimeline:
    entity: str
    entries: list[TimelineEntry]
    consent: list[ConsentChange]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "entries": [asdict(e) for e in self.entries],
            "consent_history": [asdict(c) for c in self.consent],
        }


def queued_row_decision(row: QueuedRow) -> str:
    """Why a queued row (delivery, write-back) stands where it does, in words."""
    status, reason, error = row.status, row.reason, row.last_error
    if status == RowStatus.DONE.value:
        return reason or "done"
    if status == RowStatus.SKIPPED.value:
        return f"skipped because {reason or 'there was nothing to send'}"
    if status == RowStatus.WAITING.value:
        return f"waiting because {reason or 'the store is paused'}"
    if status == RowStatus.PROCESSING.value:
        return (
            f"being processed since {row.locked_at:%Y-%m-%d %H:%M:%S}" if row.locked_at else "being processed"
        )
    if status == RowStatus.PENDING.value:
        if not row.attempts:
            return "waiting for a worker"
        when = f" at {row.next_attempt_at:%Y-%m-%d %H:%M:%S}" if row.next_attempt_at else ""
        return f"waiting to be tried again{when} because {error or reason or 'the last attempt failed'}"
    return "failed: " + " — ".join(x for x in (reason, error) if x)


def _resend_hint(owner: str) -> str:
    """How the merchant sends an unconfirmed event again, once SALESmanago is checked to lack it."""
    if owner.startswith("delivery:"):
        delivery_id = owner.removeprefix("delivery:")
        return f"to send it again: Send again on the Activity tab or `smbc deliveries resend {delivery_id}`"
    return "to send it again: Send unconfirmed again on the Export Data tab"


def _entries(found: EntityRecords) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for d in found.deliveries:
        what = f"{d.scope} {d.resource_id} ({d.source}, {d.attempts} attempt{'s' if d.attempts != 1 else ''})"
        entries.append(
            TimelineEntry(
                d.received_at, "delivery", what, d.status, queued_row_decision(d), f"delivery:{d.id}"
            )
        )
    for c in found.calls:
        status = f"{c.outcome}" + (f" (HTTP {c.status})" if c.status is not None else "")
        what = f"{c.service} {c.method} {c.endpoint} for {c.context}"
        reason = c.message or ("answered" if c.outcome == "success" else c.outcome)
        entries.append(TimelineEntry(c.created_at, "call", what, status, reason, f"call:{c.id}"))
    for e in found.sent_events:
        if e.state == "sent":
            reason = f"sent (event {e.event_id}) by {e.claimed_by}"
        elif e.state in SENT_STATES:
            reason = f"{INTERRUPTED} (sent by {e.claimed_by}); {_resend_hint(e.claimed_by)}"
        elif e.state == "sending":
            reason = f"leaving for SALESmanago, sent by {e.claimed_by}"
        else:
            reason = f"being sent by {e.claimed_by}"
        what = f"{e.kind} of order {e.order_id}" + (f", refund {e.key}" if e.kind == "RETURN" else "")
        entries.append(
            TimelineEntry(e.sent_at or e.claimed_at, "ledger", what, e.state, reason, f"sent_event:{e.id}")
        )
    for contact in found.contacts:
        consent = {True: "opted in", False: "opted out", None: "never said"}[contact.opted_in]
        who = "a forgotten person" if forgotten(contact.email) else contact.email
        what = f"contact {who} (SALESmanago {contact.contact_id or 'id unknown'})"
        status = "deleted" if contact.deleted else "synced"
        reason = f"last newsletter consent sent: {consent}"
        entries.append(
            TimelineEntry(contact.updated_at, "ledger", what, status, reason, f"contact:{contact.id}")
        )
    for w in found.cart_windows:
        status = "closed" if w.closed else "open"
        reason = (
            f"closed by {w.closed_reason or 'a newer window'}"
            if w.closed
            else f"CART event {w.event_id} open, {w.events_sent} event(s) sent"
        )
        at = w.last_update or w.opened_at
        if at is not None:
            entries.append(
                TimelineEntry(at, "ledger", f"cart {w.cart_id} window", status, reason, f"cart_window:{w.id}")
            )
    for link in found.cart_links:
        reason = f"linked to visitor contact {link.contact_id} (storefront cookie), its CART events go there"
        entries.append(
            TimelineEntry(
                link.created_at,
                "ledger",
                f"cart {link.cart_id} link",
                "linked",
                reason,
                f"cart_link:{link.id}",
            )
        )
    for claim in found.double_opt_in:
        reason = (
            "confirmation e-mail requested"
            if claim.state == "sent"
            else f"being requested by {claim.claimed_by}"
        )
        what = f"double opt-in, subscription {claim.round}" + (
            " (closed by an opt-out)" if claim.closed else ""
        )
        entries.append(
            TimelineEntry(
                claim.sent_at or claim.claimed_at,
                "ledger",
                what,
                claim.state,
                reason,
                f"double_opt_in:{claim.id}",
            )
        )
    for w in found.write_backs:
        what = (
            f"{w.action.replace('_', '-')} from {WRITE_BACK_SOURCES.get(w.source, w.source)} to BigCommerce"
        )
        entries.append(
            TimelineEntry(w.received_at, "ledger", what, w.status, queued_row_decision(w), f"consent:{w.id}")
        )
    for row in found.consent_history:
        c = _consent_change(row)
        what = f"consent {c.change_label}, from {c.source_label} ({c.ref})"
        entries.append(TimelineEntry(c.at, "consent", what, c.change, c.sent, f"consent_change:{row.id}"))
    return sorted(entries, key=_in_order)


_RANKS = {"delivery": 0, "call": 1, "ledger": 2, "consent": 3}


def _in_order(entry: TimelineEntry) -> tuple[datetime, int, int]:
    """Time order; at one instant a delivery, then its calls, then what it left in the ledgers."""
    return entry.at, _RANKS[entry.kind], int(entry.ref.rsplit(":", 1)[1])


def _consent_change(row: ConsentHistoryEntry) -> ConsentChange:
    return ConsentChange(row.at, row.source, row.change, row.sent, row.ref)


def _consent_history(found: EntityRecords) -> list[ConsentChange]:
    """The consent history of the e-mail (or of the customer's e-mails), oldest first."""
    return [_consent_change(row) for row in found.consent_history]


def entity_timeline(db: Database, store_hash: str, kind: str, value: str) -> EntityTimeline:
    """Everything about one entity of the store, in time order. LookupError: no such store;
    ValueError: the entity is not a valid order/customer id, e-mail or cart id."""
    entity = Entity.parse(kind, value)
    with db.session() as session:
        store_id = session.scalar(select(Store.id).where(Store.hash == store_hash))
        if store_id is None:
            raise LookupError(f"no store with hash {store_hash!r}")
        found = find_entity_records(session, store_id, entity)
        return EntityTimeline(str(entity), _entries(found), _consent_history(found))
