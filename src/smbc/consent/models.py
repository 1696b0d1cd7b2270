"""Newsletter-consent tables: write-backs to BigCommerce (from SALESmanago callbacks and opt-in
synchronization), double opt-in claims (one confirmation e-mail per subscription), the
subscriber -> e-mail index (a deleted subscriber can no longer be read from BigCommerce) and the
consent history (one row per consent change the app makes or learns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime
from smbc.engine.queue import QueuedRow


class ConsentWriteBack(QueuedRow, Base):
    """One newsletter consent to apply to BigCommerce's subscribers (`action` opt_in | opt_out).

    Recorded by the callback handler (or opt-in synchronization) and applied by a worker with the
    same queue columns, statuses and backoff as a webhook delivery (`smbc.engine.queue.QueuedRow`)."""

    __tablename__ = "consent_write_backs"
    __table_args__ = (
        Index("ix_consent_write_backs_due", "status", "next_attempt_at"),
        Index("ix_consent_write_backs_store_email", "store_id", "email"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))  # lower-cased
    action: Mapped[str] = mapped_column(String(16))  # opt_in | opt_out
    source: Mapped[str] = mapped_column(String(16))  # callback | opt_in_sync
    # For a subscriber created by an opt-in: channel (None: setting `newsletter_channel`) and names.
    channel_id: Mapped[int | None] = mapped_column(Integer)
    subscriber_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DoubleOptInClaim(Base):
    """The confirmation e-mail of one subscription of one e-mail address: inserted before the send,
    unique, so only one delivery (of however many) asks SALESmanago for it. An opt-out closes the
    open round; the next subscription is round + 1."""

    __tablename__ = "double_opt_in_claims"
    __table_args__ = (UniqueConstraint("store_id", "email", "round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    round: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="claimed")  # claimed | sent
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KnownSubscriber(Base):
    """A BigCommerce subscriber seen by the app: its e-mail and newsletter consent."""

    __tablename__ = "known_subscribers"
    __table_args__ = (UniqueConstraint("store_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320), index=True)
    consented: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConsentHistoryEntry(Base):
    """One consent change of one e-mail, written in the transaction that makes or learns it
    (`smbc.consent.history`). The e-mail is only ever held as its keyed hash, so the history, which
    is evidence of consent and kept, names nobody once the person is forgotten."""

    __tablename__ = "consent_history"
    __table_args__ = (Index("ix_consent_history_store_email", "store_id", "email_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    email_hash: Mapped[str] = mapped_column(String(80))  # `SecretBox.keyed_hash` of the e-mail
    source: Mapped[str] = mapped_column(String(24))  # a `history.ConsentSource`
    change: Mapped[str] = mapped_column(String(32))  # a `history.ConsentChangeKind`
    sent: Mapped[str] = mapped_column(String(500))  # what was sent, and where; never an e-mail or secret
    ref: Mapped[str] = mapped_column(
        String(64)
    )  # the work it came from: "delivery:42", "consent:7", "export:3"
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
