"""The contact ledger's Core read (`known_contact`, the real-time handlers' read) knows what the ORM
read (`contact_by`) knows: by customer id first, else by e-mail, and a forgotten contact only when met
again under its own e-mail."""

from __future__ import annotations

import pytest
from realtime_harness import add_store

from smbc.core.encryption import get_box
from smbc.db.session import Database
from smbc.engine.ledgers import KnownContact, SyncedContact, contact_by, known_contact


def make_ledger(backend_db: Database) -> int:
    with backend_db.session() as s:
        store = add_store(s, "ledger1")
        forgotten_key = get_box().keyed_hashes("gone@example.com")[0]
        s.add_all(
            [
                SyncedContact(store_id=store.id, email="ann@example.com", customer_id=7, payload_hash="h7"),
                SyncedContact(store_id=store.id, email=forgotten_key, customer_id=9, contact_id="c9"),
            ]
        )
        return store.id


@pytest.mark.parametrize(
    ("email", "customer_id"),
    [
        (None, 7),
        ("ann@example.com", None),
        ("ANN@example.com ", 8),  # an unknown customer: found by its e-mail
        ("gone@example.com", 9),  # forgotten, met again under its e-mail
        ("other@example.com", 9),  # forgotten, met under another e-mail: not this contact
        ("nobody@example.com", None),
    ],
)
def test_the_core_read_knows_what_the_orm_read_knows(
    backend_db: Database, email: str | None, customer_id: int | None
) -> None:
    store_id = make_ledger(backend_db)
    with backend_db.session() as s:
        row = contact_by(s, store_id, email=email, customer_id=customer_id)
        expected = (
            None
            if row is None
            else KnownContact(row.email, row.customer_id, row.contact_id, row.opted_in, row.payload_hash)
        )
    with backend_db.connection() as connection:
        assert known_contact(connection, store_id, email=email, customer_id=customer_id) == expected
    if email == "gone@example.com":
        assert expected is not None and expected.email == "gone@example.com"
