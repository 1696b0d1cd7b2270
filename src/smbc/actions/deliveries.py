"""Trying a webhook delivery again (the Activity tab's Retry and `smbc deliveries retry` alike), and
sending its unconfirmed events again (Send again and `smbc deliveries resend`)."""

from __future__ import annotations

from sqlalchemy import select

from smbc.actions.store_lookup import installed_store
from smbc.db.session import Database
from smbc.realtime import processing, unconfirmed
from smbc.realtime.models import WebhookDelivery


class DeliveryNotFound(LookupError):
    """No delivery with this id in this store (another store's id answers the same way)."""

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"No delivery {delivery_id} in this store.")
        self.delivery_id = delivery_id


def _store_of_delivery(db: Database, store_hash: str, delivery_id: int) -> int:
    """The id of the installed store owning the delivery. Raises StoreNotInstalled or DeliveryNotFound."""
    with db.session() as session:
        store = installed_store(session, store_hash)
        owned = session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.store_id == store.id
            )
        )
        store_id = store.id
    if owned is None:
        raise DeliveryNotFound(delivery_id)
    return store_id


def retry_delivery(db: Database, store_hash: str, delivery_id: int) -> bool:
    """Queue a failed or skipped delivery again, with a fresh count of attempts. False when it is
    neither (nothing changes). Raises StoreNotInstalled or DeliveryNotFound."""
    _store_of_delivery(db, store_hash, delivery_id)
    return processing.retry_delivery(delivery_id, db=db)


def resend_unconfirmed(db: Database, store_hash: str, delivery_id: int) -> int:
    """Send a delivery's unconfirmed events again (the merchant checked SALESmanago lacks them): how
    many will be sent, 0 when it holds none (nothing changes). Raises StoreNotInstalled or
    DeliveryNotFound."""
    store_id = _store_of_delivery(db, store_hash, delivery_id)
    return unconfirmed.resend_unconfirmed(db, store_id, delivery_id)


def retried_message(delivery_id: int, queued: bool) -> str:
    """What the CLI and the Activity tab say after `retry_delivery`."""
    if queued:
        return f"Delivery {delivery_id} was queued again."
    return f"Delivery {delivery_id} is not failed or skipped, so it was not retried."


def resent_message(delivery_id: int, released: int) -> str:
    """What the CLI and the Activity tab say after `resend_unconfirmed`."""
    if released:
        return f"Delivery {delivery_id} was queued again to send {released} unconfirmed event(s)."
    return f"Delivery {delivery_id} has no unconfirmed event, so nothing was sent again."
