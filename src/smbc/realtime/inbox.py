"""The real-time inbox: a verified webhook delivery becomes one `WebhookDelivery` row and a queue
message. Nothing here calls a remote API: BigCommerce blocks a whole domain when fewer than 90 % of
deliveries succeed, so the receiver answers fast and the workers do the rest."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from smbc.bigcommerce.webhook_payloads import InvalidDelivery, parse_delivery, payload_digest, resource_id
from smbc.core.clock import get_clock
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime.models import WebhookDelivery
from smbc.realtime.processing import enqueue_delivery

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024

DELIVERIES = Counter(
    "smbc_webhook_deliveries_total",
    "Webhook deliveries received, by result",
    ["result"],  # accepted | duplicate | dropped_unknown_store | dropped_uninstalled | unauthorized | ...
)


@dataclass
class Accepted:
    status: int
    result: str
    message: str = ""
    delivery_id: int | None = None


def accept_delivery(db: Database, body: bytes, secret: str | None) -> Accepted:
    """Verify and record one delivery; never calls a remote API. Enqueueing is the caller's job."""
    try:
        envelope = parse_delivery(body)
    except InvalidDelivery as exc:
        return Accepted(400, "invalid", str(exc))
    try:
        with db.session() as session:  # one short transaction: look the store up, insert the row
            found = session.execute(
                select(Store.id, Store.status, Store.webhook_secret).where(Store.hash == envelope.store_hash)
            ).first()
            if found is None:  # counted (smbc_webhook_deliveries_total) and logged: no store to file it under
                log.info("webhook %s for unknown store %s dropped", envelope.scope, envelope.store_hash)
                return Accepted(200, "dropped_unknown_store")
            store_pk, status, expected = found.id, found.status, found.webhook_secret or ""
            installed = status == "installed"
            if installed and not (expected and hmac.compare_digest(expected, secret or "")):
                return Accepted(401, "unauthorized", "missing or wrong webhook secret")
            if not installed:
                log.info("webhook %s for uninstalled store %s dropped", envelope.scope, envelope.store_hash)
                return Accepted(200, "dropped_uninstalled")
            row = WebhookDelivery(
                store_id=store_pk,
                scope=envelope.scope,
                hash=envelope.hash,
                created_at=envelope.created_at,
                resource_id=resource_id(envelope.scope, envelope.data),
                payload=envelope.model_dump(),
                source="webhook",
            )
            session.add(row)
            session.flush()
            delivery_id = row.id
    except IntegrityError:
        return Accepted(200, "duplicate")
    return Accepted(200, "accepted", delivery_id=delivery_id)


def accept_and_enqueue(db: Database, body: bytes, secret: str | None) -> Accepted:
    outcome = accept_delivery(db, body, secret)
    if outcome.delivery_id is not None:
        enqueue_delivery(outcome.delivery_id)
    return outcome


def record_synthetic(
    db: Database, store_id: int, scope: str, data: dict[str, Any], *, created_at: int, source: str
) -> int | None:
    """An inbox row made by this app (reconciliation): deduplicated like a real delivery."""
    payload = {"scope": scope, "data": data, "created_at": created_at, "source": source}
    row = WebhookDelivery(
        store_id=store_id,
        scope=scope,
        hash=payload_digest({"scope": scope, "data": data, "at": created_at}),
        created_at=created_at,
        resource_id=resource_id(scope, data),
        payload=payload,
        source=source,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def recheck_cart(db: Database, store_id: int, cart_id: str, contact_id: str) -> None:
    """A cart just got (or changed) its contact: have the real-time processing look at it again, so
    a CART event skipped for want of a contact (the webhook came first) is sent now. Recorded as an
    inbox row like a delivery; no remote call here."""
    data = {"type": "cart", "id": cart_id, "contact_id": contact_id}  # a new contact: a new row
    now = int(get_clock().time())
    delivery_id = record_synthetic(
        db, store_id, "store/cart/updated", data, created_at=now, source="cart-link"
    )
    if delivery_id is not None:
        enqueue_delivery(delivery_id)
