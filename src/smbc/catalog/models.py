"""Full catalog syncs as rows: one per storefront and run, its cursor (the last product id handled),
counts, refusals with reasons, and who runs it now.

`active_slot` is `"<store_id>:<channel_id>"` while a sync is queued or running and NULL once it ended:
its unique constraint keeps one running sync per storefront."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smbc.db.base import Base
from smbc.engine.long_jobs import LongJobColumns


class SyncStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SyncPhase(StrEnum):
    PRODUCTS = "products"  # every visible product of the channel, by id
    GONE = "gone"  # products sent before and not seen now: sent as unavailable


ACTIVE_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class CatalogSync(LongJobColumns, Base):
    __tablename__ = "catalog_syncs"
    __table_args__ = (Index("ix_catalog_syncs_store_channel", "store_id", "channel_id", "created_at"),)

    channel_id: Mapped[int] = mapped_column(Integer)
    catalog_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16), default=SyncPhase.PRODUCTS.value)
    after_id: Mapped[int] = mapped_column(Integer, default=0)  # the cursor: last product id handled
    products_read: Mapped[int] = mapped_column(Integer, default=0)  # BigCommerce products
    sent: Mapped[int] = mapped_column(Integer, default=0)  # SALESmanago products accepted
    failed: Mapped[int] = mapped_column(Integer, default=0)  # SALESmanago products refused
    gone: Mapped[int] = mapped_column(Integer, default=0)  # sent as unavailable
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # refusal reason -> count
    refused: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the last few, with ids

    @property
    def active(self) -> bool:
        return self.status in {s.value for s in ACTIVE_STATUSES}
