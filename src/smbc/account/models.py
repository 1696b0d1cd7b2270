"""The SALESmanago account a store is connected to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import EncryptedText, UTCDateTime


class SalesmanagoAccount(Base):
    """The SALESmanago account a store is connected to (one per store; deleted on log out)."""

    __tablename__ = "salesmanago_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), unique=True)
    endpoint: Mapped[str] = mapped_column(String(255))  # normalised base URL
    client_id: Mapped[str] = mapped_column(String(64))
    api_key: Mapped[str] = mapped_column(EncryptedText)
    sha: Mapped[str] = mapped_column(EncryptedText)
    token: Mapped[str | None] = mapped_column(EncryptedText)  # login token (email+password login only)
    smapp: Mapped[str | None] = mapped_column(String(32))
    login_email: Mapped[str] = mapped_column(String(320))
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)
    v3_key: Mapped[str | None] = mapped_column(EncryptedText)
    auth_mode: Mapped[str] = mapped_column(String(16))  # login | credentials
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    owners_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
