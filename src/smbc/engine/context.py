"""What one unit of queued work runs with (Context: the store, its settings and clients) and what
became of the row (Result)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import STALE_LOCK
from smbc.mapping import records as mapping
from smbc.realtime.models import DeliveryStatus
from smbc.settings.store_settings import StoreSettings


class SalesmanagoPort(Protocol):
    """What real time needs from `smbc.salesmanago.client.SalesmanagoClient`."""

    def upsert_contact(self, payload: dict[str, Any]) -> str: ...

    def integration_upsert(
        self, contact_payload: dict[str, Any], event: dict[str, Any]
    ) -> tuple[str, str]: ...

    def add_event(self, event: dict[str, Any]) -> str: ...

    def update_event(self, event: dict[str, Any]) -> str: ...

    def delete_contact(self, email: str) -> Any: ...

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]: ...


@dataclass
class Result:
    status: DeliveryStatus
    reason: str = ""
    error: str = ""
    retry_after: float | None = None
    exact: bool = False  # retry after exactly `retry_after` (a short wait for another worker)

    @classmethod
    def done(cls, reason: str = "") -> Result:
        return cls(DeliveryStatus.DONE, reason)

    @classmethod
    def skipped(cls, reason: str) -> Result:
        return cls(DeliveryStatus.SKIPPED, reason)

    @classmethod
    def retry(cls, error: str, after: float | None = None, *, exact: bool = False) -> Result:
        return cls(DeliveryStatus.PENDING, error=error, retry_after=after, exact=exact)


@dataclass
class Context:
    db: Database
    store: Store  # detached snapshot
    settings: StoreSettings
    bc: BigCommerceClient
    sm: SalesmanagoPort
    calls: CallBuffer
    now: datetime
    prefetched: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.settings.contact_owner

    def location(self, channel_id: int | None) -> str:
        return mapping.channel_location(self.settings, self.store.sites or [], int(channel_id or 1))


RETRY_BASE = timedelta(seconds=30)


RETRY_CAP = timedelta(hours=2)


GIVE_UP_AFTER = timedelta(hours=24)


NEVER_TRIED_GRACE = timedelta(seconds=60)  # fresh rows are in the queue already


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the ceiling plus a random half (30 s, 1 min, ... 2 h)."""
    ceiling = min(RETRY_CAP.total_seconds(), RETRY_BASE.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + (rng or random).uniform(0, ceiling / 2))


def due_row_ids(
    session: Session,
    model: Any,
    now: datetime,
    limit: int,
    *,
    resumable_stores: Any,
    runnable_stores: Any = None,
) -> list[int]:
    """The outbox sweep shared by every table of queued work (deliveries, consent write-backs).

    Waiting rows of `resumable_stores` go back to pending (a pause lifted without resume_store()),
    rows held by a worker that died are freed, and pending rows that are due (or whose queue message
    was lost) are returned, oldest first; `runnable_stores` narrows those to stores allowed to run."""
    session.execute(
        update(model)
        .where(model.status == DeliveryStatus.WAITING.value, model.store_id.in_(resumable_stores))
        .values(status=DeliveryStatus.PENDING.value, next_attempt_at=now, reason="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(model)
        .where(model.status == DeliveryStatus.PROCESSING.value, model.locked_at < now - STALE_LOCK)
        .values(status=DeliveryStatus.PENDING.value, locked_at=None, next_attempt_at=now)
    )
    due = select(model.id).where(
        model.status == DeliveryStatus.PENDING.value,
        or_(
            model.next_attempt_at <= now,
            and_(model.next_attempt_at.is_(None), model.received_at <= now - NEVER_TRIED_GRACE),
        ),
    )
    if runnable_stores is not None:
        due = due.where(model.store_id.in_(runnable_stores))
    return list(session.scalars(due.order_by(model.id).limit(limit)).all())
