"""The contact ledger (`remember_contact`): what it keeps when a write leaves a value out, what an
e-mail change moves to the new e-mail, and a forgotten person written again (one row, keyed by the
e-mail again), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.encryption import get_box
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SyncedContact, remember_contact


@pytest.fixture
def ledger(backend_settings: Settings) -> Iterator[tuple[Database, int]]:
    runtime = init_runtime(backend_settings, migrate=True)
    try:
        with runtime.db.session() as s:
            store = Store(hash="abc123", access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            store_id = store.id
        yield runtime.db, store_id
    finally:
        close_runtime()


def contacts(db: Database, store_id: int) -> dict[str, tuple[str | None, int | None, bool | None, str]]:
    with db.session() as s:
        rows = s.scalars(select(SyncedContact).where(SyncedContact.store_id == store_id)).all()
        return {r.email: (r.contact_id, r.customer_id, r.opted_in, r.payload_hash) for r in rows}


def test_a_write_keeps_what_it_leaves_out(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    with db.connection() as connection:
        remember_contact(
            connection,
            store_id,
            " Ann@Example.com ",
            contact_id="c1",
            customer_id=7,
            opted_in=True,
            payload_hash="h1",
        )
    with db.session() as s:
        remember_contact(s, store_id, "ann@example.com", contact_id="c2")
    assert contacts(db, store_id) == {"ann@example.com": ("c2", 7, True, "h1")}


def test_an_email_change_moves_what_was_known_and_given_values_win(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    with db.connection() as connection:
        remember_contact(
            connection, store_id, "old@example.com", contact_id="c1", customer_id=7, opted_in=True
        )
    with db.connection() as connection:
        remember_contact(
            connection,
            store_id,
            "new@example.com",
            previous_email="OLD@example.com",
            opted_in=False,
            payload_hash="h",
        )
    assert contacts(db, store_id) == {"new@example.com": ("c1", 7, False, "h")}


def test_a_forgotten_contact_written_again_is_one_row_under_its_email(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    hashed = get_box().keyed_hash("ann@example.com")
    with db.session() as s:  # as `privacy forget` leaves it
        s.add(SyncedContact(store_id=store_id, email=hashed, contact_id="c1", opted_in=False))
    with db.connection() as connection:
        remember_contact(connection, store_id, "ann@example.com", customer_id=9)
    assert contacts(db, store_id) == {"ann@example.com": ("c1", 9, False, "")}
