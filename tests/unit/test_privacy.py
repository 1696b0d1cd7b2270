"""`privacy export` shows everything held on a person; `privacy forget` erases it: nothing readable
remains in a dump of the whole database, and the person is still never sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from cryptography.fernet import Fernet
from realtime_harness import save_settings
from sqlalchemy import select
from store_history import STORE_HASH, StoreHistory, cart, order, store_history

from smbc.consent.callbacks import accept_callback
from smbc.core.config import Settings
from smbc.core.encryption import SecretBox, get_box
from smbc.core.remote_calls import RemoteCall
from smbc.db.base import Base
from smbc.db.models import Store
from smbc.engine.ledgers import SentEvent, SyncedContact
from smbc.export.models import Export, ExportSubscriber
from smbc.monitoring.models import CartLink
from smbc.privacy.person import export_person, forget_person
from smbc.realtime.models import WebhookDelivery
from smbc.settings.store_settings import StoreSettings

EMAIL = "Zuzanna.Kowalska@Example.com"
PERSON = {"id": 7, "email": EMAIL, "first_name": "Zuzanna", "last_name": "Kowalska", "addresses": []}
READABLE = ("zuzanna.kowalska@example.com", "zuzanna", "kowalska")


@pytest.fixture
def history(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreHistory]:
    with store_history(backend_settings, monkeypatch) as opened:
        yield opened


def _person_history(h: StoreHistory) -> None:
    settings = StoreSettings(contact_owner="owner@shop.test", double_opt_in_enabled=True, opt_in_sync=True)
    save_settings(h.db, h.store_id, settings)
    with h.db.session() as s:
        s.get(Store, h.store_id).callback_secret = "cb-token"
    h.bc.customers[7] = dict(PERSON)
    h.process("store/customer/created", {"type": "customer", "id": 7})
    h.bc.subscribers[5] = {"id": 5, "email": EMAIL.lower(), "consents": ["marketing_newsletter"]}
    h.process("store/subscriber/created", {"type": "subscriber", "id": 5})
    billing = {"first_name": "Zuzanna", "last_name": "Kowalska", "email": EMAIL, "country_iso2": "PL"}
    h.bc.orders[50] = order(50, EMAIL, customer_id=7, billing_address=billing)
    h.process("store/order/created", {"type": "order", "id": 50})
    h.bc.carts["3c1b7e5a-0000-4000-8000-000000000001"] = cart("3c1b7e5a-0000-4000-8000-000000000001", EMAIL)
    h.process("store/cart/created", {"type": "cart", "id": "3c1b7e5a-0000-4000-8000-000000000001"})
    assert accept_callback(h.db, "opt_out", STORE_HASH, "cb-token", EMAIL).status == 200
    with h.db.session() as s:
        s.add(
            CartLink(
                store_id=h.store_id,
                cart_id="3c1b7e5a-0000-4000-8000-000000000001",
                channel_id=1,
                contact_id=s.scalar(select(SyncedContact.contact_id)),
            )
        )
        s.add(
            RemoteCall(
                store_id=h.store_id,
                service="salesmanago",
                method="POST",
                endpoint="/api/contact/upsert",
                outcome="invalid",
                status=400,
                message=f"contact {EMAIL} refused",
                context="export:1",
            )
        )


def _export_quoting_the_person(h: StoreHistory) -> None:
    """A contacts export whose SALESmanago answer quoted the e-mail, still holding its subscribers."""
    with h.db.session() as s:
        run = Export(
            store_id=h.store_id,
            kind="contacts",
            status="running",
            date_from=date(2026, 1, 1),
            date_to=date(2026, 1, 2),
            from_utc=datetime(2026, 1, 1, tzinfo=UTC),
            to_utc=datetime(2026, 1, 2, tzinfo=UTC),
            messages=[f"Batch 1: SALESmanago refused it: {EMAIL} is not valid", "Batch 2: timeout"],
            last_error=f"contact {EMAIL.upper()} refused",
        )
        s.add(run)
        s.flush()
        s.add(ExportSubscriber(export_id=run.id, email=EMAIL.lower(), opted_in=True))
        s.add(ExportSubscriber(export_id=run.id, email="other@example.com", opted_in=True))


def _dump(h: StoreHistory) -> str:
    """Every row of every table, as text (what a database dump would show)."""
    lines = []
    with h.db.session() as s:
        for table in Base.metadata.sorted_tables:
            lines += [f"{table.name}: {tuple(row)}" for row in s.execute(select(table))]
    return "\n".join(lines).lower()


def test_export_shows_everything_held_on_the_person(history: StoreHistory) -> None:
    _person_history(history)
    _export_quoting_the_person(history)
    held = export_person(history.db, STORE_HASH, EMAIL)

    assert held["email"] == EMAIL.lower() and held["forgotten"] is False
    assert [c["email"] for c in held["contacts"]] == [EMAIL.lower()]
    assert [(e["kind"], e["key"]) for e in held["sent_events"]] == [("PURCHASE", "50")]
    assert {d["scope"] for d in held["deliveries"]} == {
        "store/customer/created",
        "store/subscriber/created",
        "store/order/created",
        "store/cart/created",
    }
    assert all("payload" in d for d in held["deliveries"])
    assert [w["action"] for w in held["consent_write_backs"]] == ["opt_out"]
    assert [c["state"] for c in held["double_opt_in_claims"]] == ["sent"]
    assert [(c["source"], c["change"]) for c in held["consent_history"]] == [
        ("bigcommerce", "double_opt_in_requested"),
        ("salesmanago_callback", "opted_out"),
    ]
    assert len(held["cart_windows"]) == 1 and len(held["cart_links"]) == 1
    assert any(c["message"] == f"contact {EMAIL} refused" for c in held["calls"])
    assert any(c["context"].startswith("delivery:") for c in held["calls"])
    assert [m["message"] for m in held["export_messages"]] == [
        f"Batch 1: SALESmanago refused it: {EMAIL} is not valid",
        f"contact {EMAIL.upper()} refused",
    ]
    with pytest.raises(ValueError, match="email: must be an e-mail"):
        export_person(history.db, STORE_HASH, "not-an-address")
    with pytest.raises(LookupError):
        export_person(history.db, "nosuchstore", EMAIL)


def test_forget_leaves_nothing_readable_and_the_person_is_never_sent_twice(history: StoreHistory) -> None:
    _person_history(history)
    history.bc.customers[8] = {
        **PERSON,
        "id": 8,
        "email": "other@example.com",
        "first_name": "Olga",
        "last_name": "Other",
    }
    history.process("store/customer/created", {"type": "customer", "id": 8})
    _export_quoting_the_person(history)
    assert all(word in _dump(history) for word in READABLE)
    sent_before = list(history.sm.calls)

    report = forget_person(history.db, STORE_HASH, EMAIL)

    dump = _dump(history)
    assert [word for word in READABLE if word in dump] == []
    assert "other@example.com" in dump  # nobody else is touched
    assert report.erased["webhook_deliveries"] == 4 and report.erased["cart_links"] == 1
    assert report.erased["export_subscribers"] == 1 and report.pseudonymized["exports"] == 1
    with history.db.session() as s:
        run = s.scalars(select(Export)).one()
        assert run.messages == ["Batch 1: SALESmanago refused it: [erased] is not valid", "Batch 2: timeout"]
        assert run.last_error == "contact [erased] refused"
    assert report.email_hash == get_box().keyed_hash(EMAIL.lower()) and report.email_hash in dump
    assert history.count(WebhookDelivery) == 1  # the other customer's
    assert history.count(RemoteCall, RemoteCall.message.contains("refused")) == 0
    with history.db.session() as s:
        [contact] = s.scalars(select(SyncedContact).where(SyncedContact.customer_id == 7))
        assert contact.email == report.email_hash and contact.contact_id and contact.opted_in is True
        assert s.scalars(select(SentEvent.email)).all() == [report.email_hash]
    held = export_person(history.db, STORE_HASH, EMAIL)  # the ledger lookups find the hashed rows
    assert held["forgotten"] is True and held["deliveries"] == [] and len(held["sent_events"]) == 1
    # The consent history is kept, as evidence of consent: it never held more than the keyed hash.
    assert report.pseudonymized["consent_history"] == 2
    assert [c["email_hash"] for c in held["consent_history"]] == [report.email_hash] * 2

    # Everything delivered again (the person is still in BigCommerce): nothing is sent a second time.
    assert history.process("store/order/created", {"type": "order", "id": 50}).reason.startswith(
        "PURCHASE already sent for 50"
    )
    assert (
        history.process("store/customer/updated", {"type": "customer", "id": 7}).reason == "contact unchanged"
    )
    again = history.process("store/subscriber/updated", {"type": "subscriber", "id": 5})
    new_calls = history.sm.calls[len(sent_before) :]
    assert new_calls == [] and again.reason == "newsletter consent unchanged", (again, new_calls)


def test_keyed_hashes_stay_recognisable_after_a_key_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SecretBox([old]).keyed_hash("ann@example.com")
    after_rotation = SecretBox([new, old])  # newest first, the old key still configured
    assert after_rotation.keyed_hash("ann@example.com") != before
    assert after_rotation.keyed_hashes("ann@example.com")[1] == before
    assert before.startswith("hmac:") and "ann" not in before
    assert SecretBox([old]).keyed_hash("bob@example.com") != before
