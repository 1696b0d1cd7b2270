"""What the events export leaves in the `sent_events` ledger: each sent event marked sent, and the
contact id of a buyer upserted synchronously on its events only (a new buyer whose batchupsertv2
had not landed when its events went: SALESmanago applies it later)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from export_support import World, export_world
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.engine.ledgers import SentEvent, SyncedContact
from smbc.export import runner, service

FEB = (date(2026, 2, 1), date(2026, 2, 28))


@pytest.fixture
def w(backend_settings: Settings) -> Iterator[World]:
    with export_world(backend_settings, timezone="UTC") as world:
        yield world


def test_sent_events_carry_the_contact_id_of_their_new_buyer_only(w: World) -> None:
    w.sb.sm.batch_delay_s = 3600  # new buyers sent ahead are not there in time: each upserted alone
    w.sb.bc.seed(w.store_hash, customers=6, orders=12, start=date(2026, 2, 1), end=date(2026, 2, 27))
    store = w.bc_store()
    with w.sb.bc.lock:
        orders = sorted(store.orders.values(), key=lambda o: o.id)
        for order in orders:
            order.status_id = 11  # Awaiting Fulfillment: a purchase
        known, new = orders[0], orders[1]
        known.billing = {**known.billing, "email": "known.buyer@shop.test"}
        new.billing = {**new.billing, "email": "new.buyer@shop.test"}
    # SALESmanago and the contact ledger know this buyer already: no synchronous upsert, no id learnt.
    w.sb.sm.add_contact(w.cid, "known.buyer@shop.test")
    with w.db.session() as s:
        s.add(SyncedContact(store_id=w.store_id, email="known.buyer@shop.test", payload_hash=""))

    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=5, enqueue=False)
    runner.run_export(export_id, db=w.db, time_slice=None, force=True)

    assert w.export(export_id).status == "done"
    new_contact = w.sb.sm.contact(w.cid, "new.buyer@shop.test")
    assert new_contact is not None
    with w.db.session() as s:
        found = s.scalars(select(SentEvent).where(SentEvent.store_id == w.store_id).order_by(SentEvent.id))
        rows = {r.email: r for r in found}
    assert {r.state for r in rows.values()} == {"sent"}
    assert all(r.sent_at is not None for r in rows.values())
    assert rows["new.buyer@shop.test"].contact_id == new_contact["contactId"]
    assert rows["known.buyer@shop.test"].contact_id is None
    for email, row in rows.items():  # the others: their id on the batch that upserted them, if this one
        assert row.contact_id in (None, (w.sb.sm.contact(w.cid, email) or {}).get("contactId"))
