"""Every scope the app handles, one line each: a webhook fixture (tests/fixtures/webhooks/<name>.json)
goes through the inbox and the processing, and SALESmanago receives exactly the calls listed.

The in-memory BigCommerce holds the resources the fixtures name (customer 41, order 118 with refund
6, subscriber 12, the cart, channel 2); `BEFORE` lists the fixtures processed first where a scope
only means something after another one (a deletion after a creation), `MEANWHILE` what changes in
BigCommerce in between."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from realtime_harness import (
    FakeSalesmanagoPort,
    MiniBigCommerce,
    fake_clients,
    placed_order,
    salesmanago_requests,
)

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.context import Result
from smbc.realtime import inbox, processing
from smbc.realtime.clients import Clients
from smbc.settings.store_settings import save_store_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
STORE_HASH = "abc123"
SECRET = "hook-secret"
CART_ID = "5d8a6c1e-2b4f-4e0a-9a51-2f1d3c4b5a60"
# (fixture, what SALESmanago receives). An integration upsert (PURCHASE, RETURN, a new CART) is a
# contact upsert with all consent flags false and the event, in one request.
EXPECTED: list[tuple[str, list[str]]] = [
    ("store_customer_created", ["contact/upsert"]),
    ("store_customer_updated", ["contact/upsert"]),
    ("store_customer_address_created", ["contact/upsert"]),
    ("store_customer_address_updated", ["contact/upsert"]),
    ("store_customer_address_deleted", ["contact/upsert"]),
    ("store_customer_deleted", ["contact/delete"]),
    ("store_subscriber_created", ["contact/upsert forceOptIn"]),
    ("store_subscriber_updated", ["contact/upsert forceOptIn"]),
    ("store_subscriber_deleted", ["contact/upsert forceOptOut"]),
    ("store_order_created", ["contact/upsert", "addContactExtEvent PURCHASE"]),
    ("store_order_statusUpdated", ["contact/upsert", "addContactExtEvent PURCHASE"]),
    ("store_order_refund_created", ["contact/upsert", "addContactExtEvent RETURN"]),
    ("store_cart_created", ["contact/upsert", "addContactExtEvent CART"]),
    ("store_cart_updated", ["updateContactExtEvent CART"]),
    ("store_cart_converted", []),
    ("store_cart_deleted", []),
    ("store_channel_created", []),
    ("store_channel_updated", []),
    ("store_information_updated", []),
    ("store_app_uninstalled", []),
    # Products go to a storefront's catalog (API v3), and this store has none: nothing is sent.
    ("store_product_created", []),
    ("store_product_updated", []),
    ("store_product_deleted", []),
    ("store_product_inventory_updated", []),
    ("store_product_inventory_order_updated", []),
    ("store_sku_inventory_updated", []),
    ("store_sku_inventory_order_updated", []),
]

# Fixtures processed (and their calls forgotten) before the one under test.
BEFORE: dict[str, list[str]] = {
    "store_customer_deleted": ["store_customer_created"],
    "store_subscriber_deleted": ["store_subscriber_created"],
    "store_cart_updated": ["store_cart_created"],
}


def add_a_mug(bc: MiniBigCommerce) -> None:
    cart = bc.carts[CART_ID]
    cart["line_items"]["physical_items"][0]["quantity"] = 2
    cart["cart_amount"] = 20.0


def delete_customer(bc: MiniBigCommerce) -> None:
    del bc.customers[41]  # a deletion is acted on only once BigCommerce no longer has the customer


# What changes in BigCommerce between the earlier fixtures and the one under test.
MEANWHILE: dict[str, Callable[[MiniBigCommerce], None]] = {
    "store_cart_updated": add_a_mug,
    "store_customer_deleted": delete_customer,
}


def fixture_body(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_text().replace("{store_hash}", STORE_HASH).encode()


def bigcommerce_with_the_fixtures_resources() -> MiniBigCommerce:
    bc = MiniBigCommerce()
    bc.customers[41] = {"id": 41, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    bc.subscribers[12] = {"id": 12, "email": "sub@example.com", "consents": ["marketing_newsletter"]}
    bc.orders[118] = placed_order(118, email="buyer@example.com", refunded_amount="5.0000")
    bc.refunds = [{"id": 6, "order_id": 118, "total_amount": 5.0, "created": "2026-01-07T10:00:00Z"}]
    bc.carts[CART_ID] = {
        "id": CART_ID,
        "customer_id": 0,
        "channel_id": 1,
        "email": "shopper@example.com",
        "currency": {"code": "USD"},
        "cart_amount": 10.0,
        "line_items": {"physical_items": [{"id": "li", "product_id": 111, "name": "Mug", "quantity": 1}]},
        "redirect_urls": {"cart_url": f"https://shop.test/cart.php?id={CART_ID}"},
    }
    bc.channels.append({"id": 2, "type": "storefront", "platform": "bigcommerce", "status": "active"})
    return bc


class Shop:
    """One installed store, its saved settings, and the fakes its processing talks to."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.bc = bigcommerce_with_the_fixtures_resources()
        self.sm = FakeSalesmanagoPort()
        self.clients: Clients = fake_clients(self.bc, self.sm)
        with db.session() as s:
            store = Store(hash=STORE_HASH, store_id="1025646", access_token="token", webhook_secret=SECRET)
            s.add(store)
            s.flush()
            # The monitoring code is left out: it has its own suite (tests/integration).
            settings = {"delete_contact_on_customer_delete": True, "monitoring.enabled": False}
            save_store_settings(s, store.id, settings, "test")

    def deliver(self, name: str) -> Result:
        accepted = inbox.accept_delivery(self.db, fixture_body(name), SECRET)
        assert accepted.delivery_id is not None, accepted
        [(_, result)] = processing.process_delivery(accepted.delivery_id, db=self.db, clients=self.clients)
        return result


@pytest.fixture
def shop(settings: Settings) -> Iterator[Shop]:
    previous = set_clock(FakeClock())
    try:
        yield Shop(init_runtime(settings, migrate=True).db)
    finally:
        set_clock(previous)
        close_runtime()


def test_every_fixture_has_a_line() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(name for name, _ in EXPECTED)


@pytest.mark.parametrize(("name", "calls"), EXPECTED, ids=[name for name, _ in EXPECTED])
def test_webhook_sends_exactly(shop: Shop, name: str, calls: list[str]) -> None:
    for earlier in BEFORE.get(name, []):
        assert shop.deliver(earlier).status.value == "done"
    MEANWHILE.get(name, lambda bc: None)(shop.bc)
    shop.sm.calls.clear()
    result = shop.deliver(name)
    assert result.status.value in ("done", "skipped"), result
    assert salesmanago_requests(shop.sm.calls) == calls, result.reason
