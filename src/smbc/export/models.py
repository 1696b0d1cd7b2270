"""Export jobs as rows: what to export, how far it got (cursor), its counts, and who runs it now.

`active_slot` is `"<store_id>:<kind>"` while an export is queued, running or cancelling and NULL once
it ended; its unique constraint is the "one running export per store and kind" rule (NULLs never
collide, in SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smbc.db.base import Base
from smbc.db.types import UTCDateTime
from smbc.engine.long_jobs import LongJobColumns


class ExportKind(StrEnum):
    CONTACTS = "contacts"
    EVENTS = "events"


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"  # stops after the batch in hand
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


ACTIVE_STATUSES = (ExportStatus.QUEUED, ExportStatus.RUNNING, ExportStatus.CANCELLING)
# The `failed` reason of events SALESmanago reported as failed (its batch answer's failedContacts)
# and that failed again when sent once more after their contact was upserted.
FAILED_EVENTS_REASON = "SALESmanago reported the event failed"


class Export(LongJobColumns, Base):
    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_store_created", "store_id", "created_at"),)

    kind: Mapped[str] = mapped_column(String(16))
    # The range as the merchant chose it (whole days in `timezone`) and its UTC bounds (inclusive).
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    from_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    to_utc: Mapped[datetime] = mapped_column(UTCDateTime)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    batch_size: Mapped[int] = mapped_column(Integer, default=400)
    page_size: Mapped[int] = mapped_column(Integer, default=250)
    # Progress: `total` records in the range (None until known), `done` records handled so far.
    total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    # Sent while the worker stopped, answer never seen; not sent again (see export.py).
    unconfirmed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # reason -> count
    failed: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # reason -> count
    messages: Mapped[list[str]] = mapped_column(JSON, default=list)  # the last few problems
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    batches: Mapped[int] = mapped_column(Integer, default=0)  # batches committed (also batch ids)

    @property
    def active(self) -> bool:
        return self.status in {s.value for s in ACTIVE_STATUSES}

    @property
    def failed_events(self) -> int:
        """Events SALESmanago reported failed and that were not stored in the end (not marked sent:
        a later export sends them again)."""
        return int((self.failed or {}).get(FAILED_EVENTS_REASON, 0))


class ExportSubscriber(Base):
    """Newsletter state of the store's subscribers, read once per contacts export (BigCommerce has no
    `email:in` filter on subscribers), so memory stays flat: rows are deleted when the export ends."""

    __tablename__ = "export_subscribers"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    opted_in: Mapped[bool] = mapped_column(default=False)
