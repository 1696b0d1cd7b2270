"""The ledgers: what was sent to SALESmanago, once per store and key (events) or e-mail (contacts).

Uniqueness constraints carry the "once, ever" rules: a worker claims a ledger row by inserting it
first, so two workers racing on one order cannot both send.

An event's row says how far its send went (`SentEvent.state`), because SALESmanago offers no way to
read events back: a send whose answer was never seen cannot be checked, only not repeated.

    claimed  --mark_sending-->  sending  --mark_sent-->  sent
       |                           |
    release_event               release_event (the request certainly never arrived: no connection,
       |                           |           or SALESmanago answered with an error)
    (deleted: another           mark_unconfirmed_event / claim_event's takeover
     attempt claims again)         (no answer: a read timeout, or the worker died) --> unconfirmed

- `claimed`: a worker holds the event; nothing has left for SALESmanago yet, so a takeover (the
  same delivery after its worker died, or a stale claim) simply sends it.
- `sending`: committed immediately before the request leaves (after the BigCommerce reads and the
  consent plan). From here on SALESmanago may have it, so a takeover never sends it again: it records
  it `unconfirmed` instead. The window between this commit and the request is one statement.
- `unconfirmed`: counted as sent everywhere (`SENT_STATES`); only someone who checked SALESmanago
  sends it again on purpose (`release_unconfirmed_events` for real time, the export's own
  `resend_unconfirmed` for an export's events)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.db.base import Base
from smbc.db.session import Database, StatementRunner, insert_one_ignoring_conflict
from smbc.engine.contacts import (  # noqa: F401  (the contact ledger, imported by callers from here)
    KnownContact,
    SyncedContact,
    contact_by,
    forgotten,
    known_contact,
    ledger_email,
    ledger_keys,
    remember_contact,
)
from smbc.engine.models import SentEvent
from smbc.engine.queue import STALE_LOCK

# "unconfirmed": the request went out and no answer came back (a kill -9, a read timeout). SALESmanago
# offers no way to read events back, so it counts as sent (never sent twice by itself) until the
# merchant asks for it again (`release_unconfirmed_events`, or the Export Data tab's
# `export.resend_unconfirmed` for an export's events).
SENT_STATES = ("sent", "unconfirmed")
INTERRUPTED = "interrupted while sending to SALESmanago; it may have it; not sent again to avoid a duplicate"
Row = TypeVar("Row")


def claim_by_inserting(
    db: Database, claim: Base, holder: Select[tuple[Row]], held: Callable[[Row | None], str | None]
) -> str | None:
    """Insert-first claim: None when `claim` went in (a unique constraint lets one worker win);
    otherwise `held` judges the row that `holder` finds, in a transaction of its own (it may take
    the claim over and return None)."""
    try:
        with db.session() as session:
            session.add(claim)
        return None
    except IntegrityError:
        pass
    with db.session() as session:
        return held(session.scalars(holder).first())


_EVENTS = SentEvent.__table__
# The event ledger's hot statements, built once (Core, on the table): no ORM object is loaded, and
# SQLAlchemy computes each statement's cache key once.
_THIS_EVENT = and_(
    _EVENTS.c.store_id == bindparam("event_store"),
    _EVENTS.c.kind == bindparam("event_kind"),
    _EVENTS.c.key == bindparam("event_key"),
)
_EVENT_HOLDER = select(
    _EVENTS.c.id, _EVENTS.c.state, _EVENTS.c.claimed_by, _EVENTS.c.claimed_at, _EVENTS.c.event_id
).where(_THIS_EVENT)
_TAKE_OVER = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_row"))
    .values(
        claimed_by=bindparam("owner"),
        claimed_at=bindparam("now", type_=_EVENTS.c.claimed_at.type),
        state=bindparam("new_state"),
        sent_at=func.coalesce(bindparam("new_sent_at", type_=_EVENTS.c.sent_at.type), _EVENTS.c.sent_at),
    )
)


def _owned(*states: str) -> ColumnElement[bool]:
    """Our claim of the event, in one of `states` (fixed in the statement: an expanding parameter
    made SQLAlchemy render the statement again at every call)."""
    return and_(_THIS_EVENT, _EVENTS.c.claimed_by == bindparam("owner"), _EVENTS.c.state.in_(states))


_MARK_SENDING = update(_EVENTS).where(_owned("claimed")).values(state="sending")
_RELEASE = delete(_EVENTS).where(_owned("claimed", "sending"))
_KEEP_FOR_RETRY = update(_EVENTS).where(_owned("claimed", "sending")).values(state="claimed")
_MARK_UNCONFIRMED = (
    update(_EVENTS)
    .where(_owned("sending"))
    .values(state="unconfirmed", sent_at=bindparam("now", type_=_EVENTS.c.sent_at.type))
)
_MARK_SENT = (
    update(_EVENTS)
    .where(_THIS_EVENT)
    .values(
        state="sent",
        event_id=bindparam("sent_event_id", type_=String),
        contact_id=bindparam("sent_contact_id", type_=String),
        email=bindparam("sent_email", type_=String),
        sent_at=bindparam("now", type_=_EVENTS.c.sent_at.type),
    )
)
_EVENT_SENT = select(_EVENTS.c.id).where(_THIS_EVENT, _EVENTS.c.state.in_(SENT_STATES))


def _event(store_id: int, kind: str, key: str) -> dict[str, Any]:
    return {"event_store": store_id, "event_kind": str(kind), "event_key": key}


def _sent_reason(row: ResultRow[Any], kind: str, key: str) -> str:
    """Why an event the ledger has in `SENT_STATES` is not sent again."""
    if row.state == "unconfirmed":
        return f"{kind} for {key} unconfirmed: {INTERRUPTED}"
    return f"{kind} already sent for {key} (event {row.event_id})"


def sent_reason(runner: StatementRunner, store_id: int, kind: str, key: str) -> str | None:
    """Why (store, kind, key) is not to be sent again, as `claim_event` says it, when it was sent or
    may have been (`SENT_STATES`); None otherwise (not claimed, or claimed and not sent yet)."""
    row = runner.execute(_EVENT_HOLDER, _event(store_id, kind, key)).first()
    return _sent_reason(row, kind, key) if row is not None and row.state in SENT_STATES else None


def claim_event(
    db: Database, store_id: int, kind: str, key: str, *, owner: str, order_id: int | None, now: datetime
) -> str | None:
    """Insert-first claim of (store, kind, key). None: ours to send; otherwise why not.

    A claim our own earlier attempt left (the delivery taken over after its worker died), or a dead
    worker's stale one, is taken over: sent if it was only `claimed`, recorded `unconfirmed` (and not
    sent) if it was `sending`, since SALESmanago may have it."""
    event = _event(store_id, kind, key)
    # One transaction and no exception when the row exists: deliveries about an order already sent
    # (created, updated, status changed) are most of them, and a failed INSERT costs a second one.
    with db.connection() as connection:
        claim = {
            "store_id": store_id,
            "kind": str(kind),
            "key": key,
            "order_id": order_id,
            "state": "claimed",
            "claimed_by": owner,
            "claimed_at": now,
        }
        if insert_one_ignoring_conflict(connection, _EVENTS, claim, ["store_id", "kind", "key"]):
            return None
        row = connection.execute(_EVENT_HOLDER, event).first()
        if row is None:
            return "claimed and released by another worker; retry"
        if row.state in SENT_STATES:
            return _sent_reason(row, kind, key)
        stale = now - row.claimed_at > STALE_LOCK and row.claimed_by.startswith("delivery:")
        if row.claimed_by != owner and not stale:  # an export's claim is its own to resume or release
            return f"{kind} for {key} is being sent by {row.claimed_by}"
        # Our own earlier attempt, or a dead worker's: ours now; one that was `sending` may have arrived.
        interrupted = row.state == "sending"
        connection.execute(
            _TAKE_OVER,
            {
                "event_row": row.id,
                "owner": owner,
                "now": now,
                "new_state": "unconfirmed" if interrupted else row.state,
                "new_sent_at": now if interrupted else None,
            },
        )
        return f"{kind} for {key} unconfirmed: {INTERRUPTED}" if interrupted else None


def mark_sending(db: Database, store_id: int, kind: str, key: str, owner: str) -> bool:
    """Committed immediately before the request for our claimed event leaves: from now on a takeover
    records it unconfirmed instead of sending it. False: the claim is no longer ours (send nothing)."""
    with db.connection() as connection:
        marked = connection.execute(_MARK_SENDING, {**_event(store_id, kind, key), "owner": owner})
        return bool(marked.rowcount)


def release_event(db: Database, store_id: int, kind: str, key: str, owner: str) -> None:
    """Give up our claim of (store, kind, key) when nothing arrived (nothing left yet, or the request
    certainly did not arrive: no connection, an error answer): another attempt may send."""
    with db.connection() as connection:
        connection.execute(_RELEASE, {**_event(store_id, kind, key), "owner": owner})


def keep_for_retry(db: Database, store_id: int, kind: str, key: str, owner: str) -> None:
    """The request certainly did not arrive and our delivery will try again: it keeps the claim, back
    at `claimed`, so other deliveries about the same order do not each send (and retry) it too while
    SALESmanago is failing. A claim left past `STALE_LOCK` is taken over by any later delivery."""
    with db.connection() as connection:
        connection.execute(
            _KEEP_FOR_RETRY,
            {**_event(store_id, kind, key), "owner": owner},
        )


def mark_unconfirmed_event(
    db: Database, store_id: int, kind: str, key: str, owner: str, now: datetime
) -> str:
    """Our request left and no answer came back (a read timeout): SALESmanago may have it, so it is
    recorded unconfirmed, never sent again by itself. Returns the reason to show."""
    with db.connection() as connection:
        connection.execute(
            _MARK_UNCONFIRMED,
            {**_event(store_id, kind, key), "owner": owner, "now": now},
        )
    return f"{kind} for {key} unconfirmed: {INTERRUPTED}"


def release_unconfirmed_events(session: Session, store_id: int, owner: str) -> int:
    """Forget `owner`'s unconfirmed events (someone checked SALESmanago lacks them), so that its next
    attempt sends them; returns how many."""
    released = session.execute(
        delete(SentEvent).where(
            SentEvent.store_id == store_id,
            SentEvent.claimed_by == owner,
            SentEvent.state == "unconfirmed",
        )
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


def mark_sent(
    session: StatementRunner,
    store_id: int,
    kind: str,
    key: str,
    *,
    event_id: str | None,
    contact_id: str | None,
    email: str | None,
    now: datetime,
) -> None:
    """The claimed event was sent (in the caller's transaction, with the rest of the outcome)."""
    session.execute(
        _MARK_SENT,
        {
            **_event(store_id, kind, key),
            "sent_event_id": event_id,
            "sent_contact_id": contact_id,
            "sent_email": email,
            "now": now,
        },
    )


def event_sent(session: StatementRunner, store_id: int, kind: str, key: str) -> bool:
    """Whether (store, kind, key) was sent, or may have been (`SENT_STATES`)."""
    return session.execute(_EVENT_SENT, _event(store_id, kind, key)).first() is not None
