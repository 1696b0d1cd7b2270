"""Real-time tables: what was received (inbox), what was sent (ledgers), and cart event windows.

Uniqueness constraints carry the "once, ever" rules: a worker claims a ledger row by inserting it
first, so two workers racing on one order (or one cart window) cannot both send.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker (next_attempt_at says when)
    PROCESSING = "processing"  # a worker holds it (locked_at says since when)
    DONE = "done"  # sent, or nothing needed sending
    FAILED = "failed"  # SALESmanago refused the data, or retries ran out after 24 h
    SKIPPED = "skipped"  # nothing to send, `reason` says why (ignored domain, no contact, ...)
    WAITING = "waiting"  # the store's sync is paused (credentials); resumed at the next login


class WebhookDelivery(Base):
    """One delivery from BigCommerce (or one change found by reconciliation): the inbox row."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("store_id", "scope", "hash", "created_at"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_store_status", "store_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(96))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)  # the delivery's own unix timestamp
    # The resource the delivery is about (customer/order/cart/subscriber id), for coalescing reads.
    resource_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook | reconcile
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# "unconfirmed": the request went out and no answer came back (a kill -9, a read timeout). SALESmanago
# offers no way to read events back, so it counts as sent (never sent twice by itself) until the
# merchant asks for it again from the Export Data tab (`export.resend_unconfirmed`).
SENT_STATES = ("sent", "unconfirmed")


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
    state: Mapped[str] = mapped_column(String(16), default="claimed")  # claimed | one of SENT_STATES
    claimed_by: Mapped[str] = mapped_column(String(64), default="")  # "delivery:42", "export:3"
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CartWindow(Base):
    """The open CART event of one cart and contact. `event_id` is updated while the window lasts
    (setting `cart_event_window`); `lease_until` serialises workers on one cart."""

    __tablename__ = "cart_windows"
    __table_args__ = (UniqueConstraint("store_id", "cart_id", "contact_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    cart_id: Mapped[str] = mapped_column(String(64))
    contact_key: Mapped[str] = mapped_column(String(320))  # lower-cased e-mail or "id:<contactId>"
    event_id: Mapped[str | None] = mapped_column(String(64))
    events_sent: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_update: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64), default="")  # what was last sent
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_reason: Mapped[str] = mapped_column(String(64), default="")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


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


class ReconcileState(Base):
    """Per store: how far reconciliation has read (watermark) and when it last ran."""

    __tablename__ = "reconcile_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), unique=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str] = mapped_column(Text, default="")
