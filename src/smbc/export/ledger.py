"""The export's writes to the shared ledgers: its claims in `sent_events` (claim, release, mark
unconfirmed) and a whole batch of contacts into `synced_contacts`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, bindparam, delete, select, update
from sqlalchemy.orm import Session

from smbc.core.clock import utcnow
from smbc.db.driver_statements import rows_by_keys, run_on_driver_cursor
from smbc.engine.ledgers import SentEvent, SyncedContact

# The batch statements below run on the driver's cursor as one executemany of tuples: SQLAlchemy's
# executemany built and processed every row's parameters (half the CPU of the export's ledger writes).
_CLAIM = """INSERT INTO sent_events (store_id, kind, key, order_id, state, claimed_by, claimed_at, email)
VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?) ON CONFLICT (store_id, kind, key) DO NOTHING"""
_INSERT_CONTACT = """INSERT INTO synced_contacts (store_id, email, contact_id, customer_id, opted_in,
    payload_hash, deleted, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
_UPDATE_CONTACT = """UPDATE synced_contacts SET contact_id = ?, customer_id = ?, opted_in = ?,
    payload_hash = ?, deleted = ?, updated_at = ? WHERE id = ?"""


def claim_events(
    session: Session,
    store_id: int,
    owner: str,
    claimed_at: datetime,
    events: Iterable[tuple[str, str, int, str]],
) -> None:
    """Insert `owner`'s claims of these (kind, key, order id, e-mail) events; one another worker (or
    real time) holds already is left alone."""
    connection = session.connection()
    at = _stored_datetime(connection.dialect)(claimed_at)
    rows = [(store_id, kind, key, order_id, owner, at, email) for kind, key, order_id, email in events]
    _execute_many(connection, _CLAIM, rows)


def _execute_many(connection: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """`statement` (in `?` style) for each row on the driver's cursor (IntegrityError: `commit_batch`
    tries again)."""
    if rows:
        paramstyle = connection.dialect.paramstyle
        run_on_driver_cursor(
            connection, statement if paramstyle == "qmark" else statement.replace("?", "%s"), rows, many=True
        )


@functools.lru_cache(maxsize=8)  # one per engine's dialect
def _stored_datetime(dialect: Dialect) -> Callable[[datetime], Any]:
    """A UTC datetime as the dialect's driver is given it (SQLite: SQLAlchemy's text)."""
    processor = SentEvent.__table__.c.claimed_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


def orders_ledger(session: Session, store_id: int, order_ids: list[int]) -> dict[tuple[str, str], str]:
    """The ledger's (kind, key) -> state for these orders' events."""
    if not order_ids:
        return {}
    rows = rows_by_keys(
        session,
        "SELECT kind, key, state FROM sent_events WHERE store_id = ? AND order_id {keys}",
        store_id,
        order_ids,
    )
    if rows is None:
        rows = session.execute(
            select(SentEvent.kind, SentEvent.key, SentEvent.state).where(
                SentEvent.store_id == store_id, SentEvent.order_id.in_(order_ids)
            )
        ).all()
    return {(kind, key): state for kind, key, state in rows}


def release_claims(session: Session, store_id: int, owner: str) -> None:
    """Forget `owner`'s claims that were never sent: the events can be planned again."""
    session.execute(
        delete(SentEvent).where(
            SentEvent.store_id == store_id,
            SentEvent.claimed_by == owner,
            SentEvent.state == "claimed",
        )
    )


def release_events(session: Session, store_id: int, owner: str, keys: Sequence[tuple[str, str]]) -> None:
    """Forget some of `owner`'s claims ((kind, key) pairs): SALESmanago did not store those events,
    so they are not sent, and a later export plans them again."""
    for kind, key in keys:
        session.execute(
            delete(SentEvent).where(
                SentEvent.store_id == store_id,
                SentEvent.claimed_by == owner,
                SentEvent.kind == kind,
                SentEvent.key == key,
                SentEvent.state == "claimed",
            )
        )


def known_contacts(session: Session, store_id: int, emails: Sequence[str]) -> set[str]:
    """The e-mails the contact ledger has (and not as deleted): SALESmanago was sent them before."""
    if not emails:
        return set()
    rows = rows_by_keys(
        session,
        "SELECT email FROM synced_contacts WHERE store_id = ? AND email {keys} AND NOT deleted",
        store_id,
        list(emails),
    )
    if rows is not None:
        return {email for (email,) in rows}
    return set(
        session.scalars(
            select(SyncedContact.email).where(
                SyncedContact.store_id == store_id,
                SyncedContact.email.in_(list(emails)),
                SyncedContact.deleted.is_(False),
            )
        )
    )


def mark_unconfirmed(session: Session, store_id: int, owner: str, now: datetime) -> None:
    """A batch's claims whose send may have arrived: sent for every purpose, never re-sent by itself."""
    session.execute(
        update(SentEvent)
        .where(SentEvent.store_id == store_id, SentEvent.claimed_by == owner, SentEvent.state == "claimed")
        .values(state="unconfirmed", sent_at=now)
    )


_EVENTS = SentEvent.__table__


def mark_sent_by_id(
    session: Session,
    store_id: int,
    owner: str,
    sent: Sequence[tuple[str, str, str]],
    contact_ids: Mapping[str, str],
    sent_at: datetime,
) -> None:
    """`owner`'s claims of these (kind, key, e-mail) events marked sent one by one, each with its
    buyer's contact id when learnt (some of its claims stay, to be marked unconfirmed)."""
    ids = {
        (kind, key): row_id
        for row_id, kind, key in session.execute(
            select(_EVENTS.c.id, _EVENTS.c.kind, _EVENTS.c.key).where(
                _EVENTS.c.store_id == store_id, _EVENTS.c.claimed_by == owner
            )
        )
    }
    rows = [
        {"row_id": ids[(kind, key)], "row_contact_id": contact_ids.get(email)}
        for kind, key, email in sent
        if (kind, key) in ids
    ]
    if rows:  # one executemany by primary key (Core: the ORM's bulk update costs more per row)
        session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.id == bindparam("row_id"))
            .values(state="sent", sent_at=sent_at, contact_id=bindparam("row_contact_id")),
            rows,
        )


def mark_all_sent(
    session: Session,
    store_id: int,
    owner: str,
    emails: Iterable[str],
    contact_ids: Mapping[str, str],
    sent_at: datetime,
) -> None:
    """Every claim `owner` still holds is sent (the failed ones were released): one update, then the
    contact ids learnt (the new buyers') by e-mail; the other claims have none to keep."""
    mine = (_EVENTS.c.store_id == store_id) & (_EVENTS.c.claimed_by == owner)
    session.execute(update(_EVENTS).where(mine).values(state="sent", sent_at=sent_at))
    learnt = [
        {"row_email": email, "row_contact_id": contact_ids[email]}
        for email in dict.fromkeys(emails)
        if email in contact_ids
    ]
    if learnt:
        session.execute(
            update(_EVENTS)
            .where(mine, _EVENTS.c.email == bindparam("row_email"))
            .values(contact_id=bindparam("row_contact_id")),
            learnt,
        )


def release_unconfirmed(session: Session, store_id: int, export_id: int) -> int:
    """Forget the unconfirmed events of an export, so that they are sent again; returns how many."""
    released = session.execute(
        delete(SentEvent).where(
            SentEvent.store_id == store_id,
            SentEvent.claimed_by.startswith(f"export:{export_id}:", autoescape=True),
            SentEvent.state == "unconfirmed",
        )
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


_CONTACT_COLUMNS = ("contact_id", "customer_id", "opted_in", "payload_hash")


@dataclass(frozen=True)
class ContactSent:
    email: str
    contact_id: str | None
    customer_id: int | None
    opted_in: bool | None
    payload_hash: str | None = None


def remember_contacts(session: Session, store_id: int, sent: Sequence[ContactSent]) -> None:
    """Real time's contact ledger (`SyncedContact`, as `smbc.engine.ledgers.remember_contact` keeps it) for a
    whole batch: one read, one executemany insert and one executemany update (no ORM objects: this
    runs for every record of an export)."""
    if not sent:
        return
    columns = _CONTACT_COLUMNS
    emails = list(dict.fromkeys(c.email for c in sent))
    rows = rows_by_keys(
        session,
        "SELECT id, email, contact_id, customer_id, opted_in, payload_hash FROM synced_contacts"
        " WHERE store_id = ? AND email {keys}",
        store_id,
        emails,
    )
    if rows is None:
        rows = session.execute(
            select(
                SyncedContact.id, SyncedContact.email, *(getattr(SyncedContact, c) for c in columns)
            ).where(SyncedContact.store_id == store_id, SyncedContact.email.in_(emails))
        ).all()
    current = {row.email: row for row in rows}
    connection = session.connection()
    now = _stored_datetime(connection.dialect)(utcnow())
    merged: dict[str, dict[str, Any]] = {}
    for contact in sent:  # a value this batch does not know keeps what the ledger had
        before = merged.get(contact.email)
        if before is None:
            row = current.get(contact.email)
            before = merged[contact.email] = {
                "id": row.id if row is not None else None,
                **{c: (getattr(row, c) if row is not None else None) for c in columns},
            }
            if before["opted_in"] is not None:  # SQLite's driver gives the stored 0 or 1
                before["opted_in"] = bool(before["opted_in"])
        if contact.contact_id:
            before["contact_id"] = contact.contact_id
        if contact.customer_id:
            before["customer_id"] = contact.customer_id
        if contact.opted_in is not None:
            before["opted_in"] = contact.opted_in
        if contact.payload_hash is not None:
            before["payload_hash"] = contact.payload_hash
    inserts, updates = [], []
    for email, values in merged.items():
        changed = (values["contact_id"], values["customer_id"], values["opted_in"])
        if values["id"] is None:
            inserts.append((store_id, email, *changed, values["payload_hash"] or "", False, now))
        else:
            updates.append((*changed, values["payload_hash"], False, now, values["id"]))
    _execute_many(connection, _INSERT_CONTACT, inserts)
    _execute_many(connection, _UPDATE_CONTACT, updates)
