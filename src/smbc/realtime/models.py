"""Real-time tables: what was received (the inbox of webhook deliveries) and cart event windows.

A cart window is unique per cart and contact, so two workers racing on one cart cannot both open
one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smbc.db.base import Base
from smbc.db.types import UTCDateTime
from smbc.engine.queue import QueuedRow


class WebhookDelivery(QueuedRow, Base):
    """One delivery from BigCommerce (or one change found by reconciliation): the inbox row."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("store_id", "scope", "hash", "created_at"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_store_status", "store_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(96))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)  # the delivery's own unix timestamp
    # The resource the delivery is about (customer/order/cart/subscriber id), for coalescing reads.
    resource_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook | reconcile


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
