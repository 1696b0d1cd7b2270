"""What each storefront's SALESmanago catalog holds, as far as this app sent it, and whether syncing
to it is paused.

`CatalogProduct` is one row per (store, channel, productId): what was last sent (enough to mark it
unavailable once it is gone from BigCommerce), whether it was available, and the full sync that last
saw it. Real time and the full sync both write it; the full sync uses it to find products gone since
the last sync. `CatalogPause` says a storefront's catalog sync waits (the catalog was deleted in
SALESmanago) until the merchant picks or creates another one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class CatalogProduct(Base):
    __tablename__ = "catalog_products"
    __table_args__ = (
        UniqueConstraint("store_id", "channel_id", "product_key", name="uq_catalog_products_key"),
        Index("ix_catalog_products_bc_product", "store_id", "channel_id", "bc_product_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(Integer)
    product_key: Mapped[str] = mapped_column(String(255))  # SALESmanago productId
    bc_product_id: Mapped[int] = mapped_column(Integer)
    catalog_id: Mapped[str] = mapped_column(String(64))
    last_sent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    available: Mapped[bool] = mapped_column(default=True)
    seen_sync: Mapped[int] = mapped_column(Integer, default=0)  # the full sync that last saw it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogPause(Base):
    __tablename__ = "catalog_pauses"
    __table_args__ = (UniqueConstraint("store_id", "channel_id", name="uq_catalog_pauses_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(Integer)
    catalog_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- pauses ------------------------------------------------------------------------------------------


def gone_catalog_message(catalog_id: str) -> str:
    return (
        f"The SALESmanago catalog {catalog_id} no longer exists (deleted in SALESmanago?). This storefront's "
        "products are not synced until you pick or create a catalog in the Product Catalog tab."
    )


def paused_message(session: Session, store_id: int, channel_id: int, catalog_id: str) -> str | None:
    """Why syncing the storefront to `catalog_id` is paused, or None (another catalog chosen since,
    by the tab or `smbc settings set`, goes on at once)."""
    pause = session.scalar(
        select(CatalogPause).where(
            CatalogPause.store_id == store_id,
            CatalogPause.channel_id == channel_id,
            CatalogPause.catalog_id == catalog_id,
        )
    )
    return pause.message if pause is not None else None


def pause_catalog(session: Session, store_id: int, channel_id: int, catalog_id: str, message: str) -> None:
    """Pause a storefront's sync to a catalog (one pause per storefront: the latest catalog's)."""
    unpause_catalog(session, store_id, channel_id)
    session.add(
        CatalogPause(store_id=store_id, channel_id=channel_id, catalog_id=catalog_id, message=message)
    )


def unpause_catalog(session: Session, store_id: int, channel_id: int) -> None:
    session.execute(
        delete(CatalogPause).where(CatalogPause.store_id == store_id, CatalogPause.channel_id == channel_id)
    )


# -- the ledger --------------------------------------------------------------------------------------


def record_sent(
    session: Session,
    store_id: int,
    channel_id: int,
    catalog_id: str,
    sent: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    seen_sync: int | None = None,
) -> None:
    """Remember products accepted by SALESmanago: (BigCommerce product id, what was sent)."""
    if not sent:
        return
    keys = [str(item["productId"]) for _, item in sent]
    existing = {
        row.product_key: row
        for row in session.scalars(
            select(CatalogProduct).where(
                CatalogProduct.store_id == store_id,
                CatalogProduct.channel_id == channel_id,
                CatalogProduct.product_key.in_(keys),
            )
        )
    }
    now = utcnow()
    for bc_product_id, item in sent:
        key = str(item["productId"])
        row = existing.get(key)
        if row is None:
            row = CatalogProduct(store_id=store_id, channel_id=channel_id, product_key=key, seen_sync=0)
            session.add(row)
            existing[key] = row
        row.bc_product_id = int(bc_product_id)
        row.catalog_id = catalog_id
        row.last_sent = dict(item)
        row.available = bool(item.get("available", True)) and bool(item.get("active", True))
        row.updated_at = now
        if seen_sync is not None:
            row.seen_sync = seen_sync


def products_of(
    session: Session, store_id: int, channel_id: int, catalog_id: str, bc_product_ids: Iterable[int]
) -> list[CatalogProduct]:
    """The ledger rows of some BigCommerce products (every variant's, by `product_identifier`)."""
    ids = sorted({int(i) for i in bc_product_ids})
    if not ids:
        return []
    return list(
        session.scalars(
            select(CatalogProduct).where(
                CatalogProduct.store_id == store_id,
                CatalogProduct.channel_id == channel_id,
                CatalogProduct.catalog_id == catalog_id,
                CatalogProduct.bc_product_id.in_(ids),
            )
        )
    )


def unseen_available(
    session: Session, store_id: int, channel_id: int, catalog_id: str, sync_id: int, limit: int
) -> list[CatalogProduct]:
    """Products still available in the catalog that full sync `sync_id` did not see."""
    return list(
        session.scalars(
            select(CatalogProduct)
            .where(
                CatalogProduct.store_id == store_id,
                CatalogProduct.channel_id == channel_id,
                CatalogProduct.catalog_id == catalog_id,
                CatalogProduct.available.is_(True),
                CatalogProduct.seen_sync != sync_id,
            )
            .order_by(CatalogProduct.id)
            .limit(limit)
        )
    )


def mark_seen(
    session: Session, row_ids: Sequence[int], sync_id: int, *, available: bool | None = None
) -> None:
    values: dict[str, Any] = {"seen_sync": sync_id, "updated_at": utcnow()}
    if available is not None:
        values["available"] = available
    session.execute(update(CatalogProduct).where(CatalogProduct.id.in_(list(row_ids))).values(**values))


def mark_keys_seen(
    session: Session, store_id: int, channel_id: int, keys: Sequence[str], sync_id: int
) -> None:
    """Products SALESmanago refused this time are still in BigCommerce: not "gone"."""
    if keys:
        session.execute(
            update(CatalogProduct)
            .where(
                CatalogProduct.store_id == store_id,
                CatalogProduct.channel_id == channel_id,
                CatalogProduct.product_key.in_(list(keys)),
            )
            .values(seen_sync=sync_id)
        )
