"""`POST /storefront/cart-link` over HTTP: only installed stores, their storefront origins, well formed
ids and a bounded number of requests; a refused request stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer
from smbc.core.runtime import Runtime
from smbc.db.models import Store
from smbc.monitoring.models import CartLink
from smbc.realtime.cart_links import linked_contact_id
from smbc.realtime.models import WebhookDelivery
from smbc.web.app import create_app
from smbc.web.storefront import CART_LINK_LIMIT, CART_LINK_WINDOW

SHOP = "https://shop.example.com"
CART = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
CONTACT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@dataclass
class Running:
    url: str
    runtime: Runtime
    store_id: int
    app: FastAPI

    def rechecks(self) -> list[str]:
        """Carts the real-time processing was asked to look at again (inbox rows of ours)."""
        with self.runtime.db.session() as s:
            rows = s.scalars(select(WebhookDelivery).where(WebhookDelivery.source == "cart-link"))
            return [row.resource_id for row in rows]

    def limiter(self):
        return self.app.state.cart_link_limiter

    def links(self) -> int:
        with self.runtime.db.session() as s:
            return s.scalar(select(func.count()).select_from(CartLink)) or 0


@pytest.fixture
def app_server(backend_settings: Settings) -> Iterator[Running]:
    app = create_app(backend_settings, start_workers=False)
    with BackgroundServer(app) as server:
        runtime = app.state.runtime
        if not backend_settings.is_sqlite:
            runtime.db.upgrade()
        with runtime.db.session() as s:
            store = Store(
                hash="abc123",
                status="installed",
                access_token="t",
                channels=[
                    {"id": 1, "type": "storefront", "status": "active"},
                    {"id": 2, "type": "storefront", "status": "active"},
                ],
                sites=[
                    {"id": 1000, "channel_id": 1, "url": SHOP},
                    {"id": 1001, "channel_id": 2, "url": "https://de.shop.example.com"},
                ],
                info={},
            )
            gone = Store(hash="gone1", status="uninstalled", sites=[{"channel_id": 1, "url": SHOP}])
            s.add_all([store, gone])
            s.flush()
            store_id = store.id
        yield Running(server.url, runtime, store_id, app)


def post(
    running: Running,
    body: object,
    origin: str | None = SHOP,
    store: str | None = "abc123",
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    params = {"store": store} if store else {}
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return httpx.post(
        f"{running.url}/storefront/cart-link", params=params, content=content, headers=headers, timeout=10
    )


def body(**changes: object) -> dict[str, object]:
    return {"store": "abc123", "channel_id": 1, "cart_id": CART, "smclient": CONTACT, **changes}


def test_a_storefront_links_its_cart_and_the_realtime_side_can_read_it(app_server: Running) -> None:
    response = post(app_server, body())
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SHOP
    # The real-time side is asked to look at the cart again (its webhook may have come first) ...
    assert app_server.rechecks() == [CART]
    # ... once: the same link posted again (another tab) changes nothing.
    assert post(app_server, body()).status_code == 200
    assert app_server.rechecks() == [CART]
    with app_server.runtime.db.session() as s:
        assert linked_contact_id(s, app_server.store_id, CART) == CONTACT
        assert linked_contact_id(s, app_server.store_id, CART.upper()) == CONTACT
        assert linked_contact_id(s, app_server.store_id, "00000000-0000-4000-8000-000000000000") is None
    # Another contact for the same cart is refused: the first link is kept, still one row.
    other = "0b7e6a4c-2f44-4f37-9a41-4a2c0d1c9e11"
    moved = post(app_server, body(smclient=other, channel_id=2), origin="https://de.shop.example.com")
    assert moved.status_code == 409 and "first link is kept" in moved.json()["error"]
    with app_server.runtime.db.session() as s:
        assert linked_contact_id(s, app_server.store_id, CART) == CONTACT
    assert app_server.links() == 1
    assert app_server.rechecks() == [CART]


def test_preflight_is_answered_only_for_the_store_s_origins(app_server: Running) -> None:
    def preflight(origin: str, store: str = "abc123") -> httpx.Response:
        return httpx.options(
            f"{app_server.url}/storefront/cart-link",
            params={"store": store},
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    ok = preflight(SHOP)
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"].lower()
    # Without the store in the address, any installed store's storefront origin passes the preflight
    # (the POST's body names the store and is checked against that store's origins).
    anonymous = httpx.options(
        f"{app_server.url}/storefront/cart-link",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert anonymous.status_code == 204 and anonymous.headers["access-control-allow-origin"] == SHOP
    elsewhere = httpx.options(
        f"{app_server.url}/storefront/cart-link",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert elsewhere.status_code == 403
    assert post(app_server, body(), store=None).status_code == 200  # the contract's plain route
    assert app_server.links() == 1
    for refused in (
        preflight("https://evil.example.com"),
        preflight(SHOP, store="gone1"),
        preflight(SHOP, store="nope"),
    ):
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers


BAD_REQUESTS = [
    ({"body": body(store="nope"), "store": "nope"}, 404, "store"),
    ({"body": body(store="gone1"), "store": "gone1"}, 404, "store"),
    ({"body": body(), "origin": "https://evil.example.com"}, 403, "Origin"),
    ({"body": body(), "origin": None}, 403, "Origin"),
    ({"body": body(), "origin": "http://shop.example.com"}, 403, "Origin"),
    ({"body": body(cart_id="1234")}, 400, "cart_id"),
    ({"body": body(smclient="<img src=x>")}, 400, "smclient"),
    ({"body": body(channel_id="1")}, 400, "channel_id"),
    ({"body": body(channel_id=7)}, 422, "channel_id"),
    ({"body": b"{not json"}, 400, "JSON"),
    ({"body": [1, 2]}, 400, "JSON object"),
    ({"body": b"x" * 5000}, 413, "too large"),
    ({"body": body(), "store": "other"}, 400, "store"),
]


def test_bad_requests_are_refused_with_a_message_and_store_nothing(app_server: Running) -> None:
    for kwargs, status, message in BAD_REQUESTS:
        response = post(app_server, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, (kwargs, response.text)
        assert message in response.json()["error"], kwargs
        assert "access-control-allow-origin" not in response.headers
    assert app_server.links() == 0 and app_server.rechecks() == []


def test_a_flood_is_cut_off_and_stores_nothing_more(app_server: Running) -> None:
    clock = FakeClock(datetime.now(UTC))  # the window moves only when the test says so
    previous = set_clock(clock)
    try:
        carts = [f"3f2504e0-4f89-41d3-9a0c-{i:012d}" for i in range(CART_LINK_LIMIT + 5)]
        statuses = [post(app_server, body(cart_id=cart)).status_code for cart in carts]
        assert statuses[:CART_LINK_LIMIT] == [200] * CART_LINK_LIMIT
        assert set(statuses[CART_LINK_LIMIT:]) == {429}
        assert app_server.links() == CART_LINK_LIMIT
        limited = post(app_server, body(cart_id=carts[-1]))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many" in limited.json()["error"]
        # Another shopper (address) is not affected ... (the test client is always 127.0.0.1, so the
        # limiter is asked directly for a second address).
        assert app_server.limiter().allow(("203.0.113.9", "abc123"))[0]
        # ... and the same one may post again once the window has passed.
        clock.advance(CART_LINK_WINDOW + 1)
        assert post(app_server, body(cart_id=carts[-1])).status_code == 200
        assert app_server.links() == CART_LINK_LIMIT + 1
    finally:
        set_clock(previous)
