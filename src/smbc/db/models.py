"""Foundation tables: stores, users and who may open which store.

Each feature area keeps its tables in its own module (imported at the bottom so Alembic sees all)
and its own migration; see db/migrations/versions/.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import EncryptedText, UTCDateTime


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Numeric store id as webhooks send it (`store_id`), read from /v2/store during set-up.
    store_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="installed")  # installed | uninstalled
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    scopes: Mapped[str] = mapped_column(Text, default="")
    owner_bc_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_email: Mapped[str | None] = mapped_column(String(320))
    account_uuid: Mapped[str | None] = mapped_column(String(64))
    # Sent by BigCommerce in a custom header on every webhook delivery.
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText)
    # The `token` of the SALESmanago opt-in/opt-out callback URLs.
    callback_secret: Mapped[str | None] = mapped_column(EncryptedText)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sites: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Non-null while syncing is paused (logged out of SALESmanago, credentials broken, uninstalled).
    sync_paused_reason: Mapped[str | None] = mapped_column(String(64))
    setup_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    members: Mapped[list[StoreUser]] = relationship(back_populates="store", cascade="all, delete-orphan")

    @property
    def installed(self) -> bool:
        return self.status == "installed"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bc_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    email: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoreUser(Base):
    __tablename__ = "store_users"
    __table_args__ = (UniqueConstraint("store_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | user
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    store: Mapped[Store] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


def _import_feature_models() -> None:
    """Every feature's tables, so metadata (and Alembic autogenerate) sees the whole schema."""
    import importlib

    for name in FEATURE_MODEL_MODULES:
        importlib.import_module(name)


# Feature areas append their model modules here.
FEATURE_MODEL_MODULES: list[str] = [
    "smbc.core.remote_calls",
    "smbc.settings.models",
    "smbc.account.models",
    "smbc.monitoring.models",
    "smbc.engine.models",
    "smbc.realtime.models",
    "smbc.export.models",
    "smbc.consent.models",
    "smbc.reconcile.models",
    "smbc.engine.rate_limit",
    "smbc.stores.trust",
    "smbc.stores.uninstall",
    "smbc.realtime.catalog_ledger",
    "smbc.catalog.models",
]
