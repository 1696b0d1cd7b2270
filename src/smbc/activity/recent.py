"""Recent deliveries and calls of a store, for `smbc activity` (and the Activity tab)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.realtime.models import WebhookDelivery

FAILED_STATUSES = (RowStatus.FAILED.value, RowStatus.WAITING.value)


@dataclass(frozen=True)
class DeliveryLine:
    id: int
    received_at: datetime
    scope: str
    resource: str
    source: str
    status: str
    attempts: int
    detail: str


@dataclass(frozen=True)
class CallLine:
    created_at: datetime
    service: str
    method: str
    endpoint: str
    outcome: str
    status: int | None
    duration_ms: int
    message: str


def recent_activity(
    db: Database, store_hash: str, *, failed_only: bool = False, limit: int = 50
) -> tuple[list[DeliveryLine], list[CallLine]]:
    with db.session() as session:
        store = session.scalars(select(Store).where(Store.hash == store_hash)).first()
        if store is None:
            raise LookupError(f"no store with hash {store_hash!r}")
        query = select(WebhookDelivery).where(WebhookDelivery.store_id == store.id)
        if failed_only:
            query = query.where(WebhookDelivery.status.in_(FAILED_STATUSES))
        deliveries = [
            DeliveryLine(
                d.id,
                d.received_at,
                d.scope,
                d.resource_id,
                d.source,
                d.status,
                d.attempts,
                " — ".join(x for x in (d.reason, d.last_error) if x),
            )
            for d in session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))
        ]
        calls_query = select(RemoteCall).where(RemoteCall.store_id == store.id)
        if failed_only:
            calls_query = calls_query.where(RemoteCall.outcome != "success")
        calls = [
            CallLine(
                c.created_at, c.service, c.method, c.endpoint, c.outcome, c.status, c.duration_ms, c.message
            )
            for c in session.scalars(calls_query.order_by(RemoteCall.id.desc()).limit(limit))
        ]
    return deliveries, calls
