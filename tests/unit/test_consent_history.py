"""The consent history: one row per consent change, written in the transaction of the change, with
its source and what was sent, and the e-mail only as its keyed hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from store_history import STORE_HASH, StoreHistory, store_history

from smbc.activity.timeline import entity_timeline
from smbc.consent import history as consent_history
from smbc.consent import plan as consent_plan
from smbc.consent.callbacks import accept_callback
from smbc.consent.models import ConsentHistoryEntry
from smbc.core.config import Settings
from smbc.core.encryption import SecretBox, get_box
from smbc.core.remote_calls import Outcome
from smbc.db.models import Store
from smbc.engine.ledgers import SyncedContact

EMAIL = "Reader@Example.com"
SUBSCRIBED = {"id": 5, "email": EMAIL, "consents": ["marketing_newsletter"]}


@pytest.fixture
def history(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreHistory]:
    with store_history(backend_settings, monkeypatch) as opened:
        with opened.db.session() as s:
            s.get(Store, opened.store_id).callback_secret = "cb-token"
        yield opened


def rows(h: StoreHistory) -> list[ConsentHistoryEntry]:
    with h.db.session() as s:
        found = list(s.scalars(select(ConsentHistoryEntry).order_by(ConsentHistoryEntry.id)))
        s.expunge_all()
        return found


def ledger_consent(h: StoreHistory) -> bool | None:
    with h.db.session() as s:
        return s.scalar(select(SyncedContact.opted_in).where(SyncedContact.email == EMAIL.lower()))


def subscribe(h: StoreHistory, consents: list[str]) -> str:
    h.bc.subscribers[5] = {**SUBSCRIBED, "consents": consents}
    return h.process("store/subscriber/updated", {"type": "subscriber", "id": 5}).reason


def test_each_source_leaves_its_change_with_what_was_sent(history: StoreHistory) -> None:
    assert subscribe(history, ["marketing_newsletter"]) == "opted in"
    history.clock.advance(60)
    assert subscribe(history, []) == "opted out"
    history.clock.advance(60)
    assert accept_callback(history.db, "opt_in", STORE_HASH, "cb-token", EMAIL).status == 200

    made = rows(history)
    assert [(r.source, r.change) for r in made] == [
        ("bigcommerce", "opted_in"),
        ("bigcommerce", "opted_out"),
        ("salesmanago_callback", "opted_in"),
    ]
    assert [r.sent for r in made] == [
        "/api/contact/upsert: forceOptIn",
        "/api/contact/upsert: forceOptOut",
        "BigCommerce subscriber to be opted in (write-back consent:1)",
    ]
    assert made[0].ref.startswith("delivery:") and made[0].ref != made[1].ref
    assert made[2].ref == "consent:1"
    assert made[0].at < made[1].at < made[2].at
    # Nothing changed, nothing recorded: the same state delivered again, refused callbacks.
    assert subscribe(history, []) == "newsletter consent unchanged"
    assert accept_callback(history.db, "opt_out", STORE_HASH, "wrong", EMAIL).status == 403
    assert accept_callback(history.db, "opt_out", STORE_HASH, "cb-token", "not-an-address").status == 400
    assert len(rows(history)) == 3


def test_the_change_and_its_history_row_commit_together(
    history: StoreHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("history row could not be written")

    monkeypatch.setattr(consent_plan, "record_consent_change", broken)
    subscribe(history, ["marketing_newsletter"])
    # The transaction that would have recorded the change rolled back whole: no ledger consent either,
    # so the retry sends the opt-in again and records it then.
    assert rows(history) == [] and ledger_consent(history) is None
    monkeypatch.undo()
    history.bc.subscribers[5] = dict(SUBSCRIBED)
    assert history.process("store/subscriber/updated", {"type": "subscriber", "id": 5}).reason == "opted in"
    assert [r.change for r in rows(history)] == ["opted_in"] and ledger_consent(history) is True


def test_a_failed_send_records_no_change(history: StoreHistory) -> None:
    history.sm.fail(Outcome.RETRY, "SALESmanago answered 503")
    subscribe(history, ["marketing_newsletter"])
    assert rows(history) == [] and ledger_consent(history) is None


def test_the_email_is_held_only_as_its_keyed_hash(
    history: StoreHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(history, ["marketing_newsletter"])
    [row] = rows(history)
    assert row.email_hash == get_box().keyed_hash(EMAIL.lower())
    assert all("reader" not in str(value).lower() for value in vars(row).values())

    # After a key rotation (the old key still configured) the lookups still find the row.
    rotated = SecretBox([Fernet.generate_key().decode(), *history.runtime.settings.secret_keys])
    monkeypatch.setattr(consent_history, "get_box", lambda: rotated)
    subscribe(history, [])  # withdrawn: recorded under the newest key
    changes = entity_timeline(history.db, STORE_HASH, "email", EMAIL).consent
    assert [c.change for c in changes] == ["opted_in", "opted_out"]
