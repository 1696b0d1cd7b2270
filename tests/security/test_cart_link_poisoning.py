"""Cart-link poisoning (finding 8): whoever learns a cart id cannot move the cart's CART events to a
contact of theirs. The first link is kept; another `smclient` for the same cart is a 409 that
changes nothing, the same one again a 200 that changes nothing. The preflight (and the POST) read
the stores' storefront columns only: no store's secrets are decrypted for a shopper's request.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.encryption import SecretBox
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.monitoring.models import CartLink
from smbc.realtime.models import WebhookDelivery
from smbc.web.app import create_app

SHOP = "https://shop.example.com"
CART = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SHOPPER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ATTACKER = "0b7e6a4c-2f44-4f37-9a41-4a2c0d1c9e11"


@pytest.fixture
def client(backend_settings: Settings) -> Iterator[TestClient]:
    if not backend_settings.is_sqlite:
        database = Database(backend_settings.database_url)
        database.upgrade()
        database.dispose()
    with TestClient(create_app(backend_settings, start_workers=False)) as test_client:
        with test_client.app.state.runtime.db.session() as s:
            for number in range(20):  # other tenants, each with secrets a careless read would decrypt
                s.add(
                    Store(
                        hash=f"other{number}",
                        status="installed",
                        access_token=f"token-{number}",
                        webhook_secret=f"webhook-{number}",
                        callback_secret=f"callback-{number}",
                        sites=[{"channel_id": 1, "url": f"https://shop{number}.example.net"}],
                        info={},
                    )
                )
            s.add(
                Store(
                    hash="abc123",
                    status="installed",
                    access_token="t",
                    webhook_secret="w",
                    callback_secret="c",
                    channels=[{"id": 1, "type": "storefront", "status": "active"}],
                    sites=[{"id": 1000, "channel_id": 1, "url": SHOP}],
                    info={},
                )
            )
        yield test_client


def link(client: TestClient, smclient: str) -> tuple[int, str]:
    response = client.post(
        "/storefront/cart-link?store=abc123",
        json={"store": "abc123", "channel_id": 1, "cart_id": CART, "smclient": smclient},
        headers={"Origin": SHOP},
    )
    return response.status_code, response.text


def state(client: TestClient) -> tuple[list[str], int]:
    """The contact ids linked to the cart, and how many rechecks of it were queued."""
    with client.app.state.runtime.db.session() as s:
        contacts = list(s.scalars(select(CartLink.contact_id).where(CartLink.cart_id == CART)))
        rechecks = s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.source == "cart-link")).all()
        return contacts, len(rechecks)


def test_the_first_link_is_kept_and_another_smclient_is_refused(client: TestClient) -> None:
    assert link(client, SHOPPER)[0] == 200
    assert state(client) == ([SHOPPER], 1)
    status, text = link(client, ATTACKER)
    assert status == 409 and "first link is kept" in text
    assert state(client) == ([SHOPPER], 1)  # still the shopper's, no new recheck
    assert link(client, SHOPPER)[0] == 200  # the same smclient again: a no-op
    assert state(client) == ([SHOPPER], 1)


class DecryptCounter:
    def __init__(self) -> None:
        self.calls = 0


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> DecryptCounter:
    counter = DecryptCounter()
    original = SecretBox.decrypt

    def counting(self: SecretBox, token: str) -> str:
        counter.calls += 1
        return original(self, token)

    monkeypatch.setattr(SecretBox, "decrypt", counting)
    return counter


def test_a_preflight_and_a_link_decrypt_no_secret(client: TestClient, decryptions: DecryptCounter) -> None:
    preflight = {"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    anonymous = client.options("/storefront/cart-link", headers=preflight)
    assert anonymous.status_code == 204 and anonymous.headers["access-control-allow-origin"] == SHOP
    named = client.options("/storefront/cart-link?store=abc123", headers=preflight)
    assert named.status_code == 204
    refused = client.options("/storefront/cart-link", headers={**preflight, "Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert link(client, SHOPPER)[0] == 200
    assert decryptions.calls == 0
