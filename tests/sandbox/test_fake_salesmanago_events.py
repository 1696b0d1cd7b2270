"""External events on the fake SALESmanago: add, update, batch, the combined upsert, validation."""

from __future__ import annotations

from sm_helpers import *  # noqa: F403 - the fixtures
from sm_helpers import NOW_MS, NOW_S, SmSession

from smbc.core.clock import FakeClock
from smbc.sandbox.salesmanago import FakeSalesmanago

CART = {
    "contactExtEventType": "CART",
    "date": NOW_MS,
    "value": 99.9,
    "products": "11,12",
    "location": "sm_abc",
    "externalId": "cart-1",
    "description": "https://shop.example/cart/recover",
    "detail1": "Shoe,Sock",
    "detail3": "1/2",
}


def test_add_event_stores_every_field(session: SmSession, fake: FakeSalesmanago) -> None:
    contact_id = session.upsert("buyer@example.com")["contactId"]
    answer = session.add_event("buyer@example.com", **CART)
    assert answer["success"] is True
    event = fake.event(fake.NORMAL.client_id, answer["eventId"])
    assert event["type"] == "CART"
    assert event["contactId"] == contact_id
    assert event["email"] == "buyer@example.com"
    for key, value in CART.items():
        assert event[key] == value
    assert len(event["history"]) == 1


def test_add_event_by_contact_id(session: SmSession, fake: FakeSalesmanago) -> None:
    contact_id = session.upsert("anon@example.com")["contactId"]
    answer = session.call(
        "/api/v2/contact/addContactExtEvent", contactId=contact_id, contactEvent={**CART, "externalId": "c2"}
    )
    assert answer["success"] is True
    assert fake.events(fake.NORMAL.client_id)[0]["email"] == "anon@example.com"


def test_invalid_events_are_refused_and_store_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("buyer@example.com")
    cases = [
        ({"contactExtEventType": "purchase"}, "must be upper-case: PURCHASE, not purchase"),
        ({"contactExtEventType": "BUY"}, "is not a known event type"),
        ({"date": NOW_S}, "must be in milliseconds"),
        ({"date": "2026-03-01T12:00:00Z"}, "must be epoch milliseconds"),
        ({"detail1": "x" * 256}, "contactEvent.detail1 is too long (256 characters, at most 255)"),
        ({"products": "1," * 300}, "contactEvent.products is too long"),
        ({"description": "d" * 2049}, "contactEvent.description is too long"),
        ({"value": "12.50"}, "contactEvent.value must be a number"),
        ({"detail21": "x"}, "unknown fields: detail21"),
        ({"eventId": "e-1"}, "eventId is only allowed when updating"),
    ]
    for fields, expected in cases:
        answer = session.add_event("buyer@example.com", **fields)
        assert answer["success"] is False, fields
        assert any(expected in m for m in answer["message"]), (answer, expected)
    missing_date = session.call(
        "/api/v2/contact/addContactExtEvent",
        email="buyer@example.com",
        contactEvent={"contactExtEventType": "CART"},
    )
    assert "contactEvent.date is required (epoch milliseconds)" in missing_date["message"]
    assert session.add_event("nobody@example.com")["message"] == ["Contact not found: nobody@example.com"]
    no_contact = session.call("/api/v2/contact/addContactExtEvent", contactEvent=CART)
    assert no_contact["message"] == ["email or contactId is required"]
    assert fake.events(fake.NORMAL.client_id) == []


def test_update_event_changes_fields_and_keeps_history(
    session: SmSession, fake: FakeSalesmanago, clock: FakeClock
) -> None:
    session.upsert("buyer@example.com")
    event_id = session.add_event("buyer@example.com", **CART)["eventId"]
    clock.advance(60)
    answer = session.call(
        "/api/v2/contact/updateContactExtEvent",
        contactEvent={"eventId": event_id, "value": 120.0, "products": "11,12,13", "date": NOW_MS + 60_000},
    )
    assert answer == {"success": True, "message": [], "eventId": event_id}
    event = fake.event(fake.NORMAL.client_id, event_id)
    assert event["value"] == 120.0
    assert event["products"] == "11,12,13"
    assert event["externalId"] == "cart-1"
    assert [h["fields"].get("value") for h in event["history"]] == [99.9, 120.0]
    assert event["history"][1]["time"] == NOW_MS + 60_000
    assert len(fake.events(fake.NORMAL.client_id)) == 1


def test_update_event_validation(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("buyer@example.com")
    event_id = session.add_event("buyer@example.com", **CART)["eventId"]
    unknown = session.call(
        "/api/v2/contact/updateContactExtEvent", contactEvent={"eventId": "nope", "value": 1}
    )
    assert unknown["message"] == ["Event nope not found"]
    no_id = session.call("/api/v2/contact/updateContactExtEvent", contactEvent={"value": 1})
    assert "contactEvent.eventId is required to update an event" in no_id["message"]
    lower = session.call(
        "/api/v2/contact/updateContactExtEvent",
        contactEvent={"eventId": event_id, "contactExtEventType": "cart"},
    )
    assert lower["success"] is False
    assert fake.event(fake.NORMAL.client_id, event_id)["value"] == 99.9


def test_batch_add_events(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("a@example.com")
    session.upsert("b@example.com")
    events = [
        {
            "email": "a@example.com",
            "contactEvent": {**CART, "contactExtEventType": "PURCHASE", "externalId": "1"},
        },
        {
            "email": "b@example.com",
            "contactEvent": {**CART, "contactExtEventType": "PURCHASE", "externalId": "2"},
        },
    ]
    answer = session.call("/api/v2/contact/addBatchContactExtEvent", events=events)
    assert answer["success"] is True
    assert (answer["failedContacts"], answer["createdAmount"], answer["failedAmount"]) == ([], 2, 0)
    stored = fake.events(fake.NORMAL.client_id, type="PURCHASE")
    assert {e["externalId"]: e["email"] for e in stored} == {"1": "a@example.com", "2": "b@example.com"}


def test_batch_events_for_unknown_contacts_fail_alone_and_are_not_stored(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    session.upsert("known@example.com")
    # Accepted by the asynchronous batch, not applied yet: SALESmanago does not have it either.
    session.call("/api/contact/batchupsertv2", upsertDetails=[{"contact": {"email": "late@example.com"}}])
    events = [
        {"email": "known@example.com", "contactEvent": {**CART, "externalId": "1"}},
        {"email": "late@example.com", "contactEvent": {**CART, "externalId": "2"}},
        {"email": "ghost@example.com", "contactEvent": {**CART, "externalId": "3"}},
        {"email": "ghost@example.com", "contactEvent": {**CART, "externalId": "4"}},
    ]
    answer = session.call("/api/v2/contact/addBatchContactExtEvent", events=events)
    assert answer["success"] is True
    assert answer["failedContacts"] == ["late@example.com", "ghost@example.com"]
    assert (answer["createdAmount"], answer["failedAmount"]) == (1, 3)
    assert [e["externalId"] for e in fake.events(fake.NORMAL.client_id)] == ["1"]


def test_batch_add_with_one_bad_event_stores_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("a@example.com")
    events = [
        {"email": "a@example.com", "contactEvent": CART},
        {"email": "a@example.com", "contactEvent": {**CART, "date": NOW_S}},
        {"email": "ghost@example.com", "contactEvent": CART},
    ]
    answer = session.call("/api/v2/contact/addBatchContactExtEvent", events=events)
    assert answer["success"] is False
    assert answer["message"][0].startswith("[1] contactEvent.date must be in milliseconds")
    assert len(answer["message"]) == 1  # an unknown contact is a failed event, not a refused request
    assert fake.events(fake.NORMAL.client_id) == []


def test_integration_upsert_contact_and_event_together(session: SmSession, fake: FakeSalesmanago) -> None:
    answer = session.call(
        "/api/integration/upsert",
        contactUpsertRequest={
            "clientId": fake.NORMAL.client_id,
            "owner": fake.NORMAL.email,
            "contact": {"email": "guest@example.com", "name": "Guest"},
            "tags": ["BC_GUEST_PURCHASE"],
        },
        addContactExtEventRequest={
            "clientId": fake.NORMAL.client_id,
            "owner": fake.NORMAL.email,
            "email": "guest@example.com",
            "forceOptIn": False,
            "contactEvent": {**CART, "contactExtEventType": "PURCHASE", "externalId": "order-7"},
        },
    )
    assert answer["success"] is True
    contact = fake.contact(fake.NORMAL.client_id, "guest@example.com")
    assert answer["contactId"] == contact["contactId"]
    [event] = fake.events(fake.NORMAL.client_id, type="PURCHASE")
    assert event["eventId"] == answer["eventId"]
    assert event["contactId"] == contact["contactId"]
    assert contact["tags"] == ["BC_GUEST_PURCHASE"]


def test_integration_upsert_with_event_id_updates_the_cart(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("cart@example.com")
    first = session.call(
        "/api/integration/upsert",
        addContactExtEventRequest={
            "owner": fake.NORMAL.email,
            "email": "cart@example.com",
            "contactEvent": CART,
        },
    )
    second = session.call(
        "/api/integration/upsert",
        addContactExtEventRequest={
            "owner": fake.NORMAL.email,
            "email": "cart@example.com",
            "contactEvent": {**CART, "eventId": first["eventId"], "value": 5.0},
        },
    )
    assert second["eventId"] == first["eventId"]
    [event] = fake.events(fake.NORMAL.client_id, type="CART")
    assert event["value"] == 5.0
    assert len(event["history"]) == 2
    assert "contactId" not in second


def test_integration_upsert_refusals_change_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    assert session.call("/api/integration/upsert")["message"] == [
        "contactUpsertRequest or addContactExtEventRequest is required"
    ]
    bad_event = session.call(
        "/api/integration/upsert",
        contactUpsertRequest={"owner": fake.NORMAL.email, "contact": {"email": "new@example.com"}},
        addContactExtEventRequest={"email": "new@example.com", "contactEvent": {**CART, "date": NOW_S}},
    )
    assert bad_event["success"] is False
    assert bad_event["message"][0].startswith(
        "addContactExtEventRequest: contactEvent.date must be in milliseconds"
    )
    assert fake.contacts(fake.NORMAL.client_id) == []
    unknown_event = session.call(
        "/api/integration/upsert",
        contactUpsertRequest={"contact": {"email": "new@example.com"}},
        addContactExtEventRequest={
            "email": "new@example.com",
            "contactEvent": {**CART, "eventId": "missing"},
        },
    )
    assert unknown_event["message"] == ["Event missing not found"]
    assert fake.contacts(fake.NORMAL.client_id) == []
    event_only = session.call(
        "/api/integration/upsert",
        addContactExtEventRequest={"email": "ghost@example.com", "contactEvent": CART},
    )
    assert event_only["message"] == ["Contact not found: ghost@example.com"]
    assert fake.events(fake.NORMAL.client_id) == []


def test_events_filter_by_type(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("t@example.com")
    for kind in ("CART", "PURCHASE", "CANCELLATION", "RETURN"):
        assert session.add_event("t@example.com", contactExtEventType=kind)["success"] is True
    assert [e["type"] for e in fake.events(fake.NORMAL.client_id, type="RETURN")] == ["RETURN"]
    assert len(fake.events(fake.NORMAL.client_id)) == 4


def test_v1_event_paths_take_the_same_bodies(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert("v1@example.com")
    added = session.call("/api/contact/addContactExtEvent", email="v1@example.com", contactEvent=CART)
    updated = session.call(
        "/api/contact/updateContactExtEvent", contactEvent={"eventId": added["eventId"], "value": 1.0}
    )
    assert updated["eventId"] == added["eventId"]
    assert fake.event(fake.NORMAL.client_id, added["eventId"])["value"] == 1.0
