"""Tables of the monitoring-code area: the scripts we installed, and carts linked to a visitor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class MonitoringScript(Base):
    """One storefront script we created with the Scripts API (one per channel).

    A row whose script BigCommerce no longer lists was deleted by the merchant in Script Manager."""

    __tablename__ = "monitoring_scripts"
    __table_args__ = (UniqueConstraint("store_id", "channel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(Integer)
    script_uuid: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the html we sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CartLink(Base):
    """A storefront cart and the SALESmanago contact id (`smclient` cookie) of the visitor who owns it.

    CART events for a cart without an e-mail are sent with this `contactId`."""

    __tablename__ = "cart_links"
    __table_args__ = (UniqueConstraint("store_id", "cart_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    cart_id: Mapped[str] = mapped_column(String(36))
    channel_id: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, index=True)
