"""Full catalog syncs as rows: one per storefront and run, its cursor (the last product id handled),
counts, refusals with reasons, and who runs it now.

`active_slot` is `"<store_id>:<channel_id>"` while a sync is queued or running and NULL once it ended:
its unique constraint keeps one running sync per storefront."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class SyncStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SyncPhase(StrEnum):
    PRODUCTS = "products"  # every visible product of the channel, by id
    GONE = "gone"  # products sent before and not seen now: sent as unavailable


ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class CatalogSync(Base):
    __tablename__ = "catalog_syncs"
    __table_args__ = (Index("ix_catalog_syncs_store_channel", "store_id", "channel_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(Integer)
    catalog_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.QUEUED.value, index=True)
    active_slot: Mapped[str | None] = mapped_column(String(64), unique=True)
    phase: Mapped[str] = mapped_column(String(16), default=SyncPhase.PRODUCTS.value)
    after_id: Mapped[int] = mapped_column(Integer, default=0)  # the cursor: last product id handled
    products_read: Mapped[int] = mapped_column(Integer, default=0)  # BigCommerce products
    sent: Mapped[int] = mapped_column(Integer, default=0)  # SALESmanago products accepted
    failed: Mapped[int] = mapped_column(Integer, default=0)  # SALESmanago products refused
    gone: Mapped[int] = mapped_column(Integer, default=0)  # sent as unavailable
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # refusal reason -> count
    refused: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the last few, with ids
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.status in {s.value for s in ACTIVE_STATUSES}
