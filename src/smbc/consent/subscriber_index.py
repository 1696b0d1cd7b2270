"""Which BigCommerce subscriber ids carry which e-mail, and whether each consented: a deleted
subscriber's delivery carries no e-mail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.consent.models import KnownSubscriber
from smbc.core.clock import utcnow
from smbc.db.session import Database


def index_subscriber(
    session: Session, store_id: int, subscriber_id: int, email: str, consented: bool
) -> None:
    row = session.scalars(
        select(KnownSubscriber).where(
            KnownSubscriber.store_id == store_id, KnownSubscriber.subscriber_id == subscriber_id
        )
    ).first()
    if row is None:
        row = KnownSubscriber(store_id=store_id, subscriber_id=subscriber_id, email=email)
        session.add(row)
    row.email, row.consented, row.updated_at = email, consented, utcnow()


def _index_insert(db: Database, store_id: int, subscriber_id: int, email: str, consented: bool) -> None:
    try:
        with db.session() as session:
            index_subscriber(session, store_id, subscriber_id, email, consented)
    except IntegrityError:  # another worker indexed it first: update theirs
        with db.session() as session:
            index_subscriber(session, store_id, subscriber_id, email, consented)
