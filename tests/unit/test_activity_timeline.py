"""`entity_timeline`: everything about one order, customer, e-mail or cart, in time order, with why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from realtime_harness import save_settings
from store_history import STORE_HASH, StoreHistory, cart, order, store_history

from smbc.activity.timeline import entity_timeline
from smbc.consent.callbacks import accept_callback
from smbc.core.config import Settings
from smbc.core.remote_calls import Outcome
from smbc.db.models import Store
from smbc.settings.store_settings import StoreSettings

ANN = {"id": 7, "email": "Ann@Example.com", "first_name": "Ann", "last_name": "Lee", "addresses": []}


@pytest.fixture
def history(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreHistory]:
    with store_history(backend_settings, monkeypatch) as opened:
        yield opened


def _ann_history(h: StoreHistory) -> None:
    save_settings(
        h.db, h.store_id, StoreSettings(contact_owner="owner@shop.test", double_opt_in_enabled=True)
    )
    with h.db.session() as s:
        s.get(Store, h.store_id).callback_secret = "cb-token"
    h.bc.customers[7] = dict(ANN)
    h.process("store/customer/created", {"type": "customer", "id": 7})
    h.clock.advance(60)
    h.bc.subscribers[5] = {"id": 5, "email": "ann@example.com", "consents": ["marketing_newsletter"]}
    h.process("store/subscriber/created", {"type": "subscriber", "id": 5})
    h.clock.advance(60)
    h.bc.orders[50] = order(50, "ann@example.com", customer_id=7)
    h.process("store/order/created", {"type": "order", "id": 50})
    h.clock.advance(60)
    h.bc.carts["c-1"] = cart("c-1", "ann@example.com")
    h.process("store/cart/created", {"type": "cart", "id": "c-1"})
    h.clock.advance(60)
    assert accept_callback(h.db, "opt_out", STORE_HASH, "cb-token", "ann@example.com").status == 200


def test_an_order_shows_its_deliveries_calls_and_ledger_with_reasons(history: StoreHistory) -> None:
    _ann_history(history)
    history.clock.advance(60)
    history.process("store/order/updated", {"type": "order", "id": 50})  # delivered again
    history.bc.orders[51] = order(51, "bob@example.com", status_id=0)
    history.process("store/order/created", {"type": "order", "id": 51})

    timeline = entity_timeline(history.db, STORE_HASH, "order", "50")

    assert timeline.entity == "order 50"
    kinds = [(e.kind, e.what.split(" (")[0]) for e in timeline.entries]
    assert ("delivery", "store/order/created 50") in kinds and ("delivery", "store/order/updated 50") in kinds
    assert ("ledger", "PURCHASE of order 50") in kinds
    assert any(
        e.kind == "call" and "bigcommerce GET /v2/orders/50 for delivery:" in e.what for e in timeline.entries
    )
    assert [e.at for e in timeline.entries] == sorted(e.at for e in timeline.entries)
    reasons = [e.reason for e in timeline.entries if e.kind == "delivery"]
    assert reasons[0].startswith("PURCHASE sent (event ")
    assert reasons[1].startswith("PURCHASE already sent for 50")
    assert all("51" not in e.what for e in timeline.entries)
    assert timeline.consent == []


def test_an_email_shows_everything_about_the_person_and_the_consent_history(history: StoreHistory) -> None:
    _ann_history(history)
    timeline = entity_timeline(history.db, STORE_HASH, "email", " ANN@example.com ")

    scopes = {e.what.split(" ")[0] for e in timeline.entries if e.kind == "delivery"}
    assert scopes == {
        "store/customer/created",
        "store/subscriber/created",
        "store/order/created",
        "store/cart/created",
    }
    whats = " | ".join(e.what for e in timeline.entries if e.kind == "ledger")
    assert "contact ann@example.com" in whats and "PURCHASE of order 50" in whats
    assert "cart c-1 window" in whats and "double opt-in, subscription 1" in whats
    assert "opt-out from SALESmanago callback to BigCommerce" in whats
    requested, opted_out = timeline.consent
    assert (requested.source, requested.change) == ("bigcommerce", "double_opt_in_requested")
    assert requested.sent == "/api/contact/upsert: forceOptIn, useApiDoubleOptIn"
    assert (opted_out.source_label, opted_out.change_label) == ("SALESmanago callback", "opted out")
    assert opted_out.sent == f"BigCommerce subscriber to be opted out (write-back {opted_out.ref})"
    assert requested.at < opted_out.at
    subscribed = next(e for e in timeline.entries if e.what.startswith("store/subscriber/created"))
    assert requested.ref == subscribed.ref  # the delivery that sent it
    # The changes stand in the timeline too, in time order with the rest.
    changes = [e.what for e in timeline.entries if e.kind == "consent"]
    assert changes == [
        f"consent double opt-in requested, from BigCommerce ({requested.ref})",
        f"consent opted out, from SALESmanago callback ({opted_out.ref})",
    ]
    # The customer reaches the same person.
    by_customer = entity_timeline(history.db, STORE_HASH, "customer", "7")
    assert {e.ref for e in by_customer.entries} == {e.ref for e in timeline.entries}


def test_a_waiting_and_a_retried_delivery_say_why(history: StoreHistory) -> None:
    history.bc.carts["c-2"] = cart("c-2", "cy@example.com")
    history.sm.fail(Outcome.RETRY, "SALESmanago answered 503")
    history.process("store/cart/created", {"type": "cart", "id": "c-2"})
    history.deliver("store/cart/updated", {"type": "cart", "id": "c-2"})

    reasons = [
        e.reason
        for e in entity_timeline(history.db, STORE_HASH, "cart", "c-2").entries
        if e.kind == "delivery"
    ]

    assert reasons[0].startswith("waiting to be tried again at ") and reasons[0].endswith(
        "SALESmanago answered 503"
    )
    assert reasons[1] == "waiting for a worker"


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("order", "12a", "order: must be an order id"),
        ("email", "nobody", "email: must be an e-mail"),
        ("sku", "1", "search by"),
    ],
)
def test_bad_searches_are_refused_with_the_reason(
    history: StoreHistory, kind: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        entity_timeline(history.db, STORE_HASH, kind, value)
    with pytest.raises(LookupError, match="no store"):
        entity_timeline(history.db, "nope", "order", "1")
