"""The contact ledger: what SALESmanago knows of each e-mail of a store (its contactId, the customer
it came from, the last consent sent, a hash of the last upsert), so an unchanged contact is not sent
again. A person forgotten (`smbc privacy forget`) stays under keyed hashes of the e-mail, never sent
twice. `smbc.engine.ledgers` re-exports these names (the ledgers' one place to import from)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Insert,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.orm import Session

from smbc.core.clock import utcnow
from smbc.core.encryption import KEYED_HASH_PREFIX, get_box
from smbc.db.session import StatementRunner, conflict_insert, insert_one_ignoring_conflict
from smbc.engine.models import SyncedContact


def ledger_email(email: str | None) -> str:
    """The contact ledger's key for an e-mail: trimmed and lower-cased (as SALESmanago matches it)."""
    return (email or "").strip().lower()


def ledger_keys(email: str | None) -> list[str]:
    """Every key the ledgers may hold an e-mail under: the e-mail itself, and its keyed hashes once
    the person was forgotten (`smbc privacy forget`), so a forgotten person is never sent twice."""
    email = ledger_email(email)
    return [email, *get_box().keyed_hashes(email)] if email else []


def forgotten(key: str | None) -> bool:
    """Whether a ledger's e-mail column holds a keyed hash (the person was forgotten)."""
    return bool(key) and str(key).startswith(KEYED_HASH_PREFIX)


def _known_again(row: SyncedContact | None, email: str | None, *, rekey: bool) -> SyncedContact | None:
    """A forgotten contact met again under its e-mail: a detached copy under that e-mail for a read
    (the ledger stays as the forget left it), or, with `rekey` (something about the person is being
    sent again), the row itself keyed by the e-mail again. Under another e-mail: not this contact."""
    if row is None or not forgotten(row.email):
        return row
    if not (email and row.email in ledger_keys(email)):
        return None
    if rekey:
        row.email = ledger_email(email)
        return row
    columns = {c.key: getattr(row, c.key) for c in SyncedContact.__table__.columns}
    return SyncedContact(**{**columns, "email": ledger_email(email)})


# The contact ledger's lookups, built once: SQLAlchemy computes a statement's cache key once per object.
_CONTACT_BY_CUSTOMER = (
    select(SyncedContact)
    .where(
        SyncedContact.store_id == bindparam("ledger_store"),
        SyncedContact.customer_id == bindparam("customer"),
    )
    .order_by(SyncedContact.updated_at.desc())
)
_CONTACT_BY_EMAIL = select(SyncedContact).where(
    SyncedContact.store_id == bindparam("ledger_store"),
    SyncedContact.email.in_(bindparam("emails", expanding=True)),
)


def contact_by(
    session: Session,
    store_id: int,
    *,
    email: str | None = None,
    customer_id: int | None = None,
    rekey: bool = False,
) -> SyncedContact | None:
    """What the ledger knows of a contact: by customer id first (the latest row), else by e-mail
    (a forgotten contact too, see `_known_again`)."""
    if customer_id:
        row = session.scalars(
            _CONTACT_BY_CUSTOMER, {"ledger_store": store_id, "customer": customer_id}
        ).first()
        if row is not None and (row := _known_again(row, email, rekey=rekey)) is not None:
            return row
    if email:
        return _known_again(
            session.scalars(
                _CONTACT_BY_EMAIL, {"ledger_store": store_id, "emails": ledger_keys(email)}
            ).first(),
            email,
            rekey=rekey,
        )
    return None


_CONTACTS = SyncedContact.__table__


@dataclass(frozen=True)
class KnownContact:
    """What the contact ledger knows of a contact, read without loading an ORM instance."""

    email: str
    customer_id: int | None
    contact_id: str | None
    opted_in: bool | None
    payload_hash: str


_KNOWN_COLUMNS = (
    _CONTACTS.c.email,
    _CONTACTS.c.customer_id,
    _CONTACTS.c.contact_id,
    _CONTACTS.c.opted_in,
    _CONTACTS.c.payload_hash,
)
_KNOWN_BY_CUSTOMER = (
    select(*_KNOWN_COLUMNS)
    .where(
        _CONTACTS.c.store_id == bindparam("ledger_store"), _CONTACTS.c.customer_id == bindparam("customer")
    )
    .order_by(_CONTACTS.c.updated_at.desc())
    .limit(1)
)


@functools.cache
def _known_by_email(key_count: int) -> Select[Any]:
    """By any of an e-mail's ledger keys, a parameter each (built once per number of keys: an
    expanding parameter made SQLAlchemy render the statement again at every call)."""
    keys = [bindparam(f"email_key_{n}", type_=String) for n in range(key_count)]
    return (
        select(*_KNOWN_COLUMNS)
        .where(_CONTACTS.c.store_id == bindparam("ledger_store"), _CONTACTS.c.email.in_(keys))
        .limit(1)
    )


def _known(row: ResultRow[Any] | None, email: str | None) -> KnownContact | None:
    """The row as a `KnownContact`; a forgotten one only when met again under its e-mail (as
    `_known_again` reads it: under that e-mail), else None."""
    if row is None:
        return None
    known = KnownContact(*row)
    if not forgotten(known.email):
        return known
    if not (email and known.email in ledger_keys(email)):
        return None
    return replace(known, email=ledger_email(email))


def known_contact(
    runner: StatementRunner, store_id: int, *, email: str | None = None, customer_id: int | None = None
) -> KnownContact | None:
    """`contact_by` for a read only, in Core statements: by customer id first (the latest row), else
    by e-mail (a forgotten contact too)."""
    if customer_id:
        row = runner.execute(_KNOWN_BY_CUSTOMER, {"ledger_store": store_id, "customer": customer_id}).first()
        if (known := _known(row, email)) is not None:
            return known
    if email:
        keys = ledger_keys(email)
        by_key = {f"email_key_{n}": key for n, key in enumerate(keys)}
        row = runner.execute(_known_by_email(len(keys)), {"ledger_store": store_id, **by_key}).first()
        return _known(row, email)
    return None


# What `remember_contact` writes, built once (Core, on the table): each value given replaces the
# row's, a missing one keeps it, else takes the moved e-mail's (`fallback_*`, None without a move).
_REMEMBERED_VALUES = {
    "contact_id": func.coalesce(
        bindparam("contact", type_=String),
        _CONTACTS.c.contact_id,
        bindparam("fallback_contact", type_=String),
    ),
    "customer_id": func.coalesce(
        bindparam("customer", type_=BigInteger),
        _CONTACTS.c.customer_id,
        bindparam("fallback_customer", type_=BigInteger),
    ),
    "opted_in": func.coalesce(
        bindparam("opted_in", type_=Boolean),
        _CONTACTS.c.opted_in,
        bindparam("fallback_opted_in", type_=Boolean),
    ),
    "payload_hash": func.coalesce(bindparam("payload_hash", type_=String), _CONTACTS.c.payload_hash),
    "deleted": False,
    "updated_at": bindparam("remembered_at", type_=_CONTACTS.c.updated_at.type),
}
_THIS_CONTACT = and_(
    _CONTACTS.c.store_id == bindparam("ledger_store"), _CONTACTS.c.email == bindparam("ledger_email")
)
_REMEMBER = update(_CONTACTS).where(_THIS_CONTACT).values(_REMEMBERED_VALUES)
_FORGOTTEN_CONTACT = select(_CONTACTS.c.id).where(
    _CONTACTS.c.store_id == bindparam("ledger_store"),
    _CONTACTS.c.email.in_(bindparam("hashes", expanding=True)),
)
_REKEY = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_row"))
    .values(email=bindparam("ledger_email"))
)


@functools.cache
def _upsert_unless_forgotten(dialect: str, hash_count: int) -> Insert:
    """`_REMEMBER`, or the row inserted when the e-mail has none, in one statement, built once per
    dialect (the `ON CONFLICT` clause is the dialect's) and number of keyed hashes (a parameter each:
    an expanding one made SQLAlchemy render the statement again at every call). Nothing at all when a
    forgotten row (one of the e-mail's keyed hashes) is there: that one is keyed by the e-mail again."""
    forgotten_row = select(_CONTACTS.c.id).where(
        _CONTACTS.c.store_id == bindparam("ledger_store"),
        _CONTACTS.c.email.in_([bindparam(f"hash_{n}", type_=String) for n in range(hash_count)]),
    )

    # Each parameter cast: PostgreSQL reads an untyped NULL parameter as text, and one parameter has
    # one type in a statement (the ON CONFLICT clause's uses of it too).
    def typed(name: str, type_: Any) -> Any:
        return cast(bindparam(name, type_=type_), type_)

    new_row = select(
        typed("ledger_store", Integer),
        typed("ledger_email", String),
        func.coalesce(typed("contact", String), typed("fallback_contact", String)),
        func.coalesce(typed("customer", BigInteger), typed("fallback_customer", BigInteger)),
        func.coalesce(typed("opted_in", Boolean), typed("fallback_opted_in", Boolean)),
        func.coalesce(bindparam("payload_hash", type_=String), ""),
        false(),
        bindparam("remembered_at", type_=_CONTACTS.c.updated_at.type),
    ).where(~forgotten_row.exists())
    columns = [
        "store_id",
        "email",
        "contact_id",
        "customer_id",
        "opted_in",
        "payload_hash",
        "deleted",
        "updated_at",
    ]
    return (
        conflict_insert(dialect, _CONTACTS)
        .from_select(columns, new_row)
        .on_conflict_do_update(index_elements=["store_id", "email"], set_=_REMEMBERED_VALUES)
        .returning(_CONTACTS.c.id)  # whether a row was written (psycopg gives no rowcount here)
    )


_MOVE_AWAY = (
    delete(_CONTACTS)
    .where(_CONTACTS.c.store_id == bindparam("ledger_store"), _CONTACTS.c.email == bindparam("moved_email"))
    .returning(_CONTACTS.c.contact_id, _CONTACTS.c.customer_id, _CONTACTS.c.opted_in)
)


def remember_contact(
    session: StatementRunner,
    store_id: int,
    email: str,
    *,
    contact_id: str | None = None,
    customer_id: int | None = None,
    previous_email: str | None = None,
    opted_in: bool | None = None,
    payload_hash: str | None = None,
) -> None:
    """Update the contact ledger (an e-mail change moves what was known to the new e-mail): one
    statement whether the e-mail is known or new (an upsert), unless a forgotten row of it is there."""
    email = ledger_email(email)
    params: dict[str, Any] = {
        "ledger_store": store_id,
        "ledger_email": email,
        "contact": contact_id or None,
        "customer": customer_id or None,
        "opted_in": opted_in,
        "payload_hash": payload_hash,
        "remembered_at": utcnow(),
        "fallback_contact": None,
        "fallback_customer": None,
        "fallback_opted_in": None,
    }
    if previous_email and ledger_email(previous_email) != email:
        moved = session.execute(
            _MOVE_AWAY, {"ledger_store": store_id, "moved_email": ledger_email(previous_email)}
        )
        old = moved.first()
        if old is not None:
            params.update(fallback_contact=old[0], fallback_customer=old[1], fallback_opted_in=old[2])
    hashes = get_box().keyed_hashes(email)
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    by_hash = {f"hash_{n}": keyed for n, keyed in enumerate(hashes)}
    upserted = session.execute(_upsert_unless_forgotten(dialect.name, len(hashes)), {**params, **by_hash})
    if upserted.first() is not None:
        return  # the usual case, known or new: one statement
    if session.execute(_REMEMBER, params).rowcount:  # type: ignore[attr-defined]
        return
    # Not under the e-mail: a forgotten row of it is keyed by the e-mail again, else one is inserted.
    forgotten_row = session.execute(_FORGOTTEN_CONTACT, {"ledger_store": store_id, "hashes": hashes}).first()
    if forgotten_row is not None:
        session.execute(_REKEY, {"contact_row": forgotten_row[0], "ledger_email": email})
    else:
        row_values = {
            "store_id": store_id,
            "email": email,
            "contact_id": params["contact"] or params["fallback_contact"],
            "customer_id": params["customer"] or params["fallback_customer"],
            "opted_in": opted_in if opted_in is not None else params["fallback_opted_in"],
            "payload_hash": payload_hash or "",
            "deleted": False,
            "updated_at": params["remembered_at"],
        }
        if insert_one_ignoring_conflict(session, SyncedContact, row_values, ["store_id", "email"]):
            return
    # Keyed by the e-mail again, or another worker inserted it first: updated as the first UPDATE would.
    session.execute(_REMEMBER, params)
