"""Consent in delivery processing with an in-memory BigCommerce and SALESmanago port: a double
opt-in claim held by one delivery stops every other one (the order of a guest checkout included)
from opting the contact in, and an echo of what was sent sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, save_settings
from sqlalchemy import select

from smbc.consent import double_opt_in as claims
from smbc.consent import write_back
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine.context import Result
from smbc.engine.ledgers import SyncedContact
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.settings.store_settings import StoreSettings

ITEMS = [{"id": 1, "product_id": 111, "variant_id": 5, "sku": "MUG", "name": "Mug", "quantity": 1}]


@dataclass
class ConsentPort(FakeSalesmanagoPort):
    """The harness's port plus `/api/contact/basic` answers from `known` (e-mail -> opted in)."""

    known: dict[str, bool] = field(default_factory=dict)

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]:
        self._call("basic", {"email": emails})
        return [{"email": e, "optedOut": not self.known[e]} for e in emails if e in self.known]


class World:
    def __init__(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db = init_runtime(settings, migrate=True).db
        self.bc = MiniBigCommerce()
        self.sm = ConsentPort()
        self.clients = fake_clients(self.bc, self.sm)
        monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
        monkeypatch.setattr(write_back, "enqueue_write_back", lambda write_back_id: None)
        with self.db.session() as s:
            store = Store(hash="abc123", access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            self.store_id = store.id
        self.settings = StoreSettings(contact_owner="owner@shop.test", double_opt_in_enabled=True)
        self._n = 0

    @property
    def settings(self) -> StoreSettings:
        return self._settings

    @settings.setter
    def settings(self, value: StoreSettings) -> None:
        """Saved, so the processing reads them like any store's."""
        self._settings = value
        save_settings(self.db, self.store_id, value)

    def run(self, delivery_id: int) -> list[tuple[int, Result]]:
        return realtime.process_delivery(delivery_id, clients=self.clients)

    def process(self, scope: str, data: dict[str, Any]) -> Result:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db, self.store_id, scope, data, created_at=1_700_000_000 + self._n, source="webhook"
        )
        assert delivery_id is not None
        return dict(self.run(delivery_id))[delivery_id]

    def ledger(self, email: str) -> bool | None:
        with self.db.session() as s:
            return s.scalar(select(SyncedContact.opted_in).where(SyncedContact.email == email))

    def contact_sends(self) -> list[dict[str, Any]]:
        sends = [p for n, p in self.sm.calls if n == "upsert"]
        return sends + [p["contact"] for n, p in self.sm.calls if n == "integration"]


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    previous = set_clock(FakeClock())
    try:
        yield World(settings, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()


def guest_order(order_id: int, email: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "status_id": 11,
        "customer_id": 0,
        "channel_id": 1,
        "is_email_opt_in": True,
        "date_created": "Tue, 06 Jan 2026 10:00:00 +0000",
        "total_inc_tax": "20.00",
        "billing_address": {"first_name": "Gu", "last_name": "Est", "email": email},
        "consignments": [{"shipping": [{"shipping_method": "Flat", "line_items": ITEMS}]}],
    }


def test_a_held_confirmation_claim_stops_every_other_opt_in(world: World) -> None:
    email = "guest@example.com"
    now = FakeClock().now()
    assert claims.claim_double_opt_in(world.db, world.store_id, email, owner="delivery:999", now=now) is None
    world.bc.orders[1] = guest_order(1, email)
    world.bc.subscribers[5] = {"id": 5, "email": email, "consents": ["marketing_newsletter"]}
    assert world.process("store/order/created", {"type": "order", "id": 1}).reason.startswith("PURCHASE sent")
    subscriber = world.process("store/subscriber/created", {"type": "subscriber", "id": 5})
    assert subscriber.reason == "confirmation e-mail being requested by delivery:999"
    assert all(not p["forceOptIn"] and "useApiDoubleOptIn" not in p for p in world.contact_sends())
    assert world.ledger(email) is None  # nothing was opted in: a later retry still may
    # The holder gave up (its send failed): the next delivery asks for the e-mail, once.
    claims.release_double_opt_in(world.db, world.store_id, email, "delivery:999")
    world.process("store/subscriber/updated", {"type": "subscriber", "id": 5})
    world.process("store/subscriber/updated", {"type": "subscriber", "id": 5})
    doi = [p for p in world.contact_sends() if p.get("useApiDoubleOptIn")]
    assert len(doi) == 1 and doi[0]["forceOptIn"] is True
    assert world.ledger(email) is True


def test_already_opted_in_in_salesmanago_gets_no_confirmation(world: World) -> None:
    world.sm.known["fan@example.com"] = True
    world.bc.subscribers[6] = {"id": 6, "email": "fan@example.com", "consents": ["marketing_newsletter"]}
    assert world.process("store/subscriber/created", {"type": "subscriber", "id": 6}).reason == "opted in"
    [sent] = world.contact_sends()
    assert sent["forceOptIn"] is True and "useApiDoubleOptIn" not in sent
    # The same state again (an echo, a reconciliation): nothing changed, nothing sent.
    again = world.process("store/subscriber/updated", {"type": "subscriber", "id": 6})
    assert again.reason == "newsletter consent unchanged" and len(world.contact_sends()) == 1
