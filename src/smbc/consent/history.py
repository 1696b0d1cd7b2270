"""The consent history: one `ConsentHistoryEntry` per consent change the app makes or learns, written
by the caller in the same transaction as the change itself:

- BigCommerce (real time): `consent.plan.send_planned`, with the contact ledger's consent, once
  SALESmanago has the opt-in, opt-out or double opt-in request;
- a SALESmanago callback: `consent.callbacks.accept_callback`, with the write-back row it queues;
- an export: the contacts export's batch, with the contact ledger rows of that batch.

The e-mail is stored as its keyed hash (`SecretBox.keyed_hash`, as the ledgers hold a forgotten
person), so a dump of the table names nobody; a lookup hashes the e-mail under every configured key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import insert
from sqlalchemy.orm import Session

from smbc.consent.models import ConsentHistoryEntry
from smbc.core.clock import utcnow
from smbc.core.encryption import get_box
from smbc.engine.ledgers import forgotten, ledger_email

SENT_LENGTH = 500


class ConsentSource(StrEnum):
    """Where a consent change came from."""

    BIGCOMMERCE = "bigcommerce"  # a webhook delivery (or its reconciliation) about the shopper
    SALESMANAGO_CALLBACK = "salesmanago_callback"  # SALESmanago's opt-in / opt-out callback
    EXPORT = "export"  # a contacts export


SOURCE_LABELS = {
    ConsentSource.BIGCOMMERCE: "BigCommerce",
    ConsentSource.SALESMANAGO_CALLBACK: "SALESmanago callback",
    ConsentSource.EXPORT: "export",
}


class ConsentChangeKind(StrEnum):
    """What changed. A double opt-in request is not an opt-in yet: the contact confirms (or not) in
    SALESmanago, which then calls the opt-in callback, recorded as its own change."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    DOUBLE_OPT_IN_REQUESTED = "double_opt_in_requested"


CHANGE_LABELS = {
    ConsentChangeKind.OPTED_IN: "opted in",
    ConsentChangeKind.OPTED_OUT: "opted out",
    ConsentChangeKind.DOUBLE_OPT_IN_REQUESTED: "double opt-in requested",
}


@dataclass(frozen=True)
class ConsentChangeMade:
    """One change to record: the e-mail in plain (hashed when written), and what was sent about it."""

    email: str
    change: ConsentChangeKind
    sent: str


def email_hash(email: str) -> str:
    """The e-mail's key in the history: its keyed hash under the newest key."""
    return get_box().keyed_hash(ledger_email(email))


def history_keys(keys: Iterable[str]) -> list[str]:
    """What the history may hold the given ledger keys under: a plain e-mail's keyed hashes under
    every configured key; a key that is a keyed hash already (a forgotten person's), as it is."""
    found: list[str] = []
    for key in keys:
        found += [key] if forgotten(key) else get_box().keyed_hashes(ledger_email(key))
    return list(dict.fromkeys(found))


def record_consent_change(
    session: Session,
    store_id: int,
    email: str,
    *,
    source: ConsentSource,
    change: ConsentChangeKind,
    sent: str,
    ref: str,
) -> None:
    """Add one history row in the caller's transaction (the one that makes the change)."""
    record_consent_changes(
        session, store_id, [ConsentChangeMade(email, change, sent)], source=source, ref=ref
    )


def record_consent_changes(
    session: Session,
    store_id: int,
    changes: Sequence[ConsentChangeMade],
    *,
    source: ConsentSource,
    ref: str,
) -> None:
    """Add a history row per change, in one statement (an export batch records hundreds)."""
    if not changes:
        return
    when = utcnow()
    rows = [
        {
            "store_id": store_id,
            "email_hash": email_hash(c.email),
            "source": source.value,
            "change": c.change.value,
            "sent": c.sent[:SENT_LENGTH],
            "ref": ref[:64],
            "at": when,
        }
        for c in changes
    ]
    session.execute(insert(ConsentHistoryEntry.__table__), rows)
