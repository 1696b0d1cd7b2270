"""A store with a history: real processing of deliveries against the in-memory BigCommerce and
SALESmanago port, on a controllable clock (for the retention, activity and privacy tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, save_settings
from sqlalchemy import func, select

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine.context import Result
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.settings.store_settings import StoreSettings

STORE_HASH = "hist123"
LINE_ITEMS = [{"id": 1, "product_id": 111, "variant_id": 5, "sku": "MUG", "name": "Mug", "quantity": 2}]


def order(order_id: int, email: str, *, customer_id: int = 0, status_id: int = 11, **extra: Any) -> dict:
    return {
        "id": order_id,
        "status_id": status_id,
        "customer_id": customer_id,
        "channel_id": 1,
        "cart_id": f"cart-{order_id}",
        "date_created": "Tue, 06 Jan 2026 10:00:00 +0000",
        "date_modified": "Tue, 06 Jan 2026 11:00:00 +0000",
        "total_inc_tax": "20.00",
        "currency_code": "USD",
        "payment_method": "Test Payment",
        "billing_address": {"first_name": "Bo", "last_name": "Buyer", "email": email, "country_iso2": "US"},
        "consignments": [{"shipping": [{"shipping_method": "Flat", "line_items": LINE_ITEMS}]}],
        "refunded_amount": "0.0000",
        **extra,
    }


def cart(cart_id: str, email: str, quantity: int = 1) -> dict:
    return {
        "id": cart_id,
        "customer_id": 0,
        "channel_id": 1,
        "email": email,
        "currency": {"code": "USD"},
        "cart_amount": 10.0 * quantity,
        "line_items": {
            "physical_items": [{"id": "li", "product_id": 111, "name": "Mug", "quantity": quantity}]
        },
        "redirect_urls": {"cart_url": f"https://shop.test/cart.php?id={cart_id}"},
    }


class StoreHistory:
    def __init__(self, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runtime = init_runtime(settings, migrate=True)
        self.db = self.runtime.db
        self.clock = clock
        self.bc = MiniBigCommerce()
        self.sm = FakeSalesmanagoPort()
        self.clients = fake_clients(self.bc, self.sm)
        monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
        with self.db.session() as s:
            store = Store(hash=STORE_HASH, access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            self.store_id = store.id
        save_settings(self.db, self.store_id, StoreSettings(contact_owner="owner@shop.test"))
        self._n = 0

    def deliver(self, scope: str, data: dict[str, Any]) -> int:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db, self.store_id, scope, data, created_at=1_700_000_000 + self._n, source="webhook"
        )
        assert delivery_id is not None
        return delivery_id

    def process(self, scope: str, data: dict[str, Any]) -> Result:
        delivery_id = self.deliver(scope, data)
        return dict(realtime.process_delivery(delivery_id, clients=self.clients))[delivery_id]

    def count(self, model: Any, *where: Any) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@contextmanager
def store_history(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreHistory]:
    """A `StoreHistory` on a FakeClock (each test module's `history` fixture opens one)."""
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield StoreHistory(settings, clock, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()
