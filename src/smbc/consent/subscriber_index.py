"""Which BigCommerce subscriber ids carry which e-mail, and whether each consented: a deleted
subscriber's delivery carries no e-mail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, update

from smbc.consent.models import KnownSubscriber
from smbc.core.clock import utcnow
from smbc.db.session import Database, StatementRunner, insert_one_ignoring_conflict

# Built once (Core, on the table): SQLAlchemy computes a statement's cache key once per object.
_SUBSCRIBERS = KnownSubscriber.__table__
_INDEX_UPDATE = (
    update(_SUBSCRIBERS)
    .where(
        and_(
            _SUBSCRIBERS.c.store_id == bindparam("index_store"),
            _SUBSCRIBERS.c.subscriber_id == bindparam("index_subscriber"),
        )
    )
    .values(
        email=bindparam("index_email"),
        consented=bindparam("index_consented"),
        updated_at=bindparam("index_at", type_=_SUBSCRIBERS.c.updated_at.type),
    )
)


def index_subscriber(
    session: StatementRunner, store_id: int, subscriber_id: int, email: str, consented: bool
) -> None:
    """Record the subscriber's e-mail and consent: one UPDATE when it is known, else an insert (one
    another worker made first is updated)."""
    params: dict[str, Any] = {
        "index_store": store_id,
        "index_subscriber": subscriber_id,
        "index_email": email,
        "index_consented": consented,
        "index_at": utcnow(),
    }
    if session.execute(_INDEX_UPDATE, params).rowcount:  # type: ignore[attr-defined]
        return
    row = {
        "store_id": store_id,
        "subscriber_id": subscriber_id,
        "email": email,
        "consented": consented,
        "updated_at": params["index_at"],
    }
    if not insert_one_ignoring_conflict(session, KnownSubscriber, row, ["store_id", "subscriber_id"]):
        session.execute(_INDEX_UPDATE, params)  # another worker inserted it first: ours is newer


def _index_insert(db: Database, store_id: int, subscriber_id: int, email: str, consented: bool) -> None:
    with db.connection() as connection:
        index_subscriber(connection, store_id, subscriber_id, email, consented)
