"""The ledgers' tables: what was sent to SALESmanago, once per store and e-mail (`SyncedContact`) or
store and key (`SentEvent`). Their statements and rules live in `smbc.engine.contacts` and
`smbc.engine.ledgers`, which callers import them from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class SyncedContact(Base):
    """What SALESmanago knows of one e-mail of a store: its contactId, the customer it came from, the
    last consent sent, and a hash of the last upsert (an unchanged contact is not sent again)."""

    __tablename__ = "synced_contacts"
    __table_args__ = (UniqueConstraint("store_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))  # lower-cased
    customer_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    contact_id: Mapped[str | None] = mapped_column(String(64))
    # Newsletter consent as last sent: True opted in, False opted out, None never said.
    opted_in: Mapped[bool | None] = mapped_column(Boolean)
    payload_hash: Mapped[str] = mapped_column(String(64), default="")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SentEvent(Base):
    """An external event sent (or being sent) to SALESmanago: PURCHASE / CANCELLATION per order,
    RETURN per refund. Inserted before the send; unique, so one worker wins."""

    __tablename__ = "sent_events"
    # Ledger reads go by (store, order) and a batch finds its own claims by (store, claimed_by):
    # with the store's index alone, each read scanned every event the store ever sent.
    __table_args__ = (
        UniqueConstraint("store_id", "kind", "key"),
        Index("ix_sent_events_store_order", "store_id", "order_id"),
        Index("ix_sent_events_store_claimed_by", "store_id", "claimed_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: the three above start with it.
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))  # PURCHASE | CANCELLATION | RETURN
    key: Mapped[str] = mapped_column(String(64))  # order id, or refund id for RETURN
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    # claimed | sending | one of SENT_STATES (the states are described in smbc.engine.ledgers)
    state: Mapped[str] = mapped_column(String(16), default="claimed")
    claimed_by: Mapped[str] = mapped_column(String(64), default="")  # "delivery:42", "export:3"
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
