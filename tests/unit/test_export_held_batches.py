"""Batches waiting for their buyers' lead are held as the JSON they are sent as: what SALESmanago
receives is the same, and a buyer can still be upserted on its own from it."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import msgspec
import pytest

from smbc.core.clock import FakeClock
from smbc.export import buyers
from smbc.export.plans import OrderPlan, PlannedEvent, hold_encoded, payload_dict
from smbc.mapping.rules import EventKind
from smbc.salesmanago.client import SalesmanagoClient, SalesmanagoCredentials
from smbc.salesmanago.payload import clean_payload

CREDS = SalesmanagoCredentials.from_api_secret(
    "app3.salesmanago.com", "client123", "secret", "owner@shop.test", api_key="apikey-0123456789"
)


def planned_order(order_id: int, email: str) -> OrderPlan:
    event = clean_payload(
        {
            "email": email,
            "contactEvent": {
                "date": 1764547200000 + order_id,
                "contactExtEventType": "PURCHASE",
                "products": "11,12",
                "value": 129.99,
                "description": "Zamówienie — 2 × kubek «żółty»",
                "detail1": "0",
                "location": "shop_example_com",
                "externalId": str(order_id),
            },
        }
    )
    buyer = clean_payload(
        {"email": email, "name": "Zoë Ångström", "tags": ["BIGCOMMERCE_PURCHASE"], "forceOptIn": False}
    )
    return OrderPlan(
        order_id,
        events=[PlannedEvent(EventKind.PURCHASE, str(order_id), order_id, email, event)],
        contact=(email, buyer, None),
    )


def sent_body(batch: list[OrderPlan]) -> dict[str, Any]:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, json={"success": True, "message": []})

    client = SalesmanagoClient(CREDS, http=httpx.Client(transport=httpx.MockTransport(answer)))
    client.add_batch_events([event.item for plan in batch for event in plan.events])
    body: dict[str, Any] = json.loads(seen[0])
    return body


def test_a_held_batch_is_sent_exactly_as_planned(clock: FakeClock) -> None:
    planned = [planned_order(n, f"buyer{n}@example.com") for n in (101, 102, 103)]
    held = copy.deepcopy(planned)
    hold_encoded(held)
    assert all(isinstance(e.item, msgspec.Raw) for plan in held for e in plan.events)
    assert sent_body(held) == sent_body(planned)


def test_a_held_buyer_is_the_same_dict_when_upserted_on_its_own() -> None:
    planned = planned_order(7, "zoe@example.com")
    held = copy.deepcopy(planned)
    hold_encoded([held])
    assert planned.contact is not None and held.contact is not None
    assert isinstance(held.contact[1], msgspec.Raw)
    assert payload_dict(held.contact[1]) == planned.contact[1]
    assert payload_dict(planned.contact[1]) is planned.contact[1]


def test_only_batches_that_wait_for_a_lead_are_held(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_buyers = {"new@example.com"}

    def upsert_ahead(job: Any, contacts: dict[str, Any]) -> tuple[set[str], bool]:
        return set(contacts), bool(new_buyers & set(contacts))

    monkeypatch.setattr(buyers, "upsert_ahead", upsert_ahead)
    batches = [
        [planned_order(1, "known@example.com")],  # nothing waits: sent at once, as planned
        [planned_order(2, "new@example.com")],  # waits for its buyer's lead
        [planned_order(3, "known@example.com")],  # waits behind it, in order
    ]
    out = list(buyers.buyers_ahead(object(), batches))  # type: ignore[arg-type]
    assert [batch[0].order_id for batch, _ in out] == [1, 2, 3]
    held = [isinstance(batch[0].events[0].item, msgspec.Raw) for batch, _ in out]
    assert held == [False, True, True]
    assert clock.monotonic() >= buyers.BUYERS_LEAD_S  # the new buyer's lead was waited out
