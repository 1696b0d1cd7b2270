"""Personal data of one person (an e-mail address) in one store: everything the app holds on them
(`smbc privacy export`), and its erasure (`smbc privacy forget`).

Erasure deletes what was received and recorded about the person: webhook deliveries (with their
payloads), the calls made for them and any call whose message names the e-mail, and the storefront
cart links. The ledgers stay, because they are what keeps every send once-only, but only with
what that needs: the e-mail is replaced by its keyed hash (`SecretBox.keyed_hash`, an HMAC under a
key derived from SMBC_SECRET_KEY), which the ledger lookups still match (`engine.ledgers.ledger_keys`)
and which nobody without the key can turn back into the address. Names kept for a write-back go.
The consent history is kept as it is: it never held more than the keyed hash, and it is the
merchant's evidence of each opt-in and opt-out (an erased withdrawal could not be shown later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, Select, String, Text, column, delete, func, or_, select, table, update
from sqlalchemy.orm import Session

from smbc.consent.models import ConsentHistoryEntry, ConsentWriteBack, DoubleOptInClaim, KnownSubscriber
from smbc.core.clock import utcnow
from smbc.core.encryption import get_box
from smbc.core.remote_calls import RemoteCall
from smbc.db.base import Base
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SentEvent, SyncedContact, forgotten
from smbc.monitoring.models import CartLink
from smbc.realtime.entity_records import Entity, EntityKind, EntityRecords, find_entity_records
from smbc.realtime.models import CartWindow, WebhookDelivery

ERASED = "[erased]"

# The export is a sibling feature (not importable from here): its tables are read by their columns.
EXPORTS = table(
    "exports",
    column("id", Integer),
    column("store_id", Integer),
    column("messages", JSON),
    column("last_error", Text),
)
EXPORT_SUBSCRIBERS = table("export_subscribers", column("export_id", Integer), column("email", String))


def _person(session: Session, store_hash: str, email: str) -> tuple[int, Entity]:
    """The store's id and the e-mail as an entity; LookupError / ValueError with the reason."""
    entity = Entity.parse(EntityKind.EMAIL.value, email)
    store_id = session.scalar(select(Store.id).where(Store.hash == store_hash))
    if store_id is None:
        raise LookupError(f"no store with hash {store_hash!r}")
    return store_id, entity


def _naming(store_id: int, email: str) -> Select[tuple[RemoteCall]]:
    """Calls of the store whose message names the e-mail (an error quoting the address)."""
    return select(RemoteCall).where(
        RemoteCall.store_id == store_id, func.lower(RemoteCall.message).contains(email, autoescape=True)
    )


def _as_dict(row: Base) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "store_id"}


def export_person(db: Database, store_hash: str, email: str) -> dict[str, Any]:
    """Everything the app holds on the person, as JSON-ready data (datetimes as they are)."""
    with db.session() as session:
        store_id, entity = _person(session, store_hash, email)
        found = find_entity_records(session, store_id, entity)
        calls = {c.id: c for c in (*found.calls, *session.scalars(_naming(store_id, entity.value)))}
        return {
            "store": store_hash,
            "email": entity.value,
            "exported_at": utcnow(),
            "forgotten": any(forgotten(c.email) for c in found.contacts),
            "contacts": [_as_dict(r) for r in found.contacts],
            "sent_events": [_as_dict(r) for r in found.sent_events],
            "newsletter_subscribers": [_as_dict(r) for r in found.subscribers],
            "consent_write_backs": [_as_dict(r) for r in found.write_backs],
            "double_opt_in_claims": [_as_dict(r) for r in found.double_opt_in],
            "consent_history": [_as_dict(r) for r in found.consent_history],
            "cart_windows": [_as_dict(r) for r in found.cart_windows],
            "cart_links": [_as_dict(r) for r in found.cart_links],
            "deliveries": [_as_dict(r) for r in found.deliveries],
            "calls": [_as_dict(calls[i]) for i in sorted(calls)],
            "export_messages": [
                {"export": export_id, "message": text}
                for export_id, text in _export_texts(session, store_id)
                if entity.value in text.lower()
            ],
        }


@dataclass
class ForgetReport:
    email_hash: str
    erased: dict[str, int] = field(default_factory=dict)  # rows deleted, by table
    pseudonymized: dict[str, int] = field(default_factory=dict)  # ledger rows kept under the hash
    at: datetime | None = None

    def summary(self) -> dict[str, Any]:
        return {"erased": self.erased, "kept_under_keyed_hash": self.pseudonymized, "at": self.at}


def forget_person(db: Database, store_hash: str, email: str) -> ForgetReport:
    """Erase the person from the store's data, in one transaction (all or nothing)."""
    with db.session() as session:
        store_id, entity = _person(session, store_hash, email)
        found = find_entity_records(session, store_id, entity)
        report = ForgetReport(get_box().keyed_hash(entity.value), at=utcnow())
        _erase(session, store_id, entity.value, found, report)
        _pseudonymize(session, found, entity.value, report)
        _scrub_exports(session, store_id, entity.value, report)
    return report


def _export_texts(session: Session, store_id: int) -> list[tuple[int, str]]:
    """Every problem message of the store's exports (SALESmanago's answers may quote an e-mail)."""
    texts: list[tuple[int, str]] = []
    rows = session.execute(
        select(EXPORTS.c.id, EXPORTS.c.messages, EXPORTS.c.last_error).where(EXPORTS.c.store_id == store_id)
    )
    for export_id, messages, last_error in rows:
        texts += [(export_id, str(m)) for m in (messages or [])] + [(export_id, last_error or "")]
    return texts


def _scrub_exports(session: Session, store_id: int, email: str, report: ForgetReport) -> None:
    """The e-mail out of the exports' messages, and out of a running contacts export's subscribers."""
    scrubbed = 0
    rows = session.execute(
        select(EXPORTS.c.id, EXPORTS.c.messages, EXPORTS.c.last_error).where(EXPORTS.c.store_id == store_id)
    ).all()
    for export_id, messages, last_error in rows:
        new_messages = [_without(str(m), email) for m in (messages or [])]
        new_error = _without(last_error or "", email)
        if new_messages != list(messages or []) or new_error != (last_error or ""):
            session.execute(
                update(EXPORTS)
                .where(EXPORTS.c.id == export_id)
                .values(messages=new_messages, last_error=new_error)
            )
            scrubbed += 1
    report.pseudonymized["exports"] = scrubbed
    ids = select(EXPORTS.c.id).where(EXPORTS.c.store_id == store_id).scalar_subquery()
    gone = session.execute(
        delete(EXPORT_SUBSCRIBERS).where(
            EXPORT_SUBSCRIBERS.c.export_id.in_(ids), EXPORT_SUBSCRIBERS.c.email == email
        )
    )
    report.erased["export_subscribers"] = int(gone.rowcount or 0)  # type: ignore[attr-defined]


def _without(text: str, email: str) -> str:
    """`text` with every spelling of the e-mail (any letter case) replaced by ERASED."""
    lowered, at, parts = text.lower(), 0, []
    while (found := lowered.find(email, at)) >= 0:
        parts += [text[at:found], ERASED]
        at = found + len(email)
    return "".join(parts) + text[at:]


def _erase(session: Session, store_id: int, email: str, found: EntityRecords, report: ForgetReport) -> None:
    call_ids = {c.id for c in found.calls} | set(
        session.scalars(_naming(store_id, email).with_only_columns(RemoteCall.id))
    )
    naming = or_(
        func.lower(WebhookDelivery.reason).contains(email, autoescape=True),
        func.lower(WebhookDelivery.last_error).contains(email, autoescape=True),
    )
    delivery_ids = {d.id for d in found.deliveries} | set(
        session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.store_id == store_id, naming))
    )
    # Work still queued about the person goes too: after the erasure nothing about them is sent.
    erased = {
        "remote_calls": (RemoteCall, call_ids),
        "webhook_deliveries": (WebhookDelivery, delivery_ids),
        "cart_links": (CartLink, {link.id for link in found.cart_links}),
    }
    for name, (model, ids) in erased.items():
        for chunk in _chunks(sorted(ids)):
            session.execute(delete(model).where(model.id.in_(chunk)))
        report.erased[name] = len(ids)


def _pseudonymize(session: Session, found: EntityRecords, email: str, report: ForgetReport) -> None:
    hashed = report.email_hash
    # A row already under the hash (an earlier forget) gives way to the newer plain one.
    for model, rows in ((SyncedContact, found.contacts), (KnownSubscriber, found.subscribers)):
        plain = [r for r in rows if r.email == email]
        if plain and model is SyncedContact:
            session.execute(delete(model).where(model.id.in_([r.id for r in rows if r.email == hashed])))
        _rekey(session, model, plain, hashed, report)
    earlier_rounds = {c.round for c in found.double_opt_in if c.email == hashed}
    claims = [c for c in found.double_opt_in if c.email == email]
    clashing = [c.id for c in claims if c.round in earlier_rounds]
    if clashing:
        session.execute(delete(DoubleOptInClaim).where(DoubleOptInClaim.id.in_(clashing)))
    _rekey(session, DoubleOptInClaim, [c for c in claims if c.id not in clashing], hashed, report)
    _rekey(session, SentEvent, [e for e in found.sent_events if e.email == email], hashed, report)
    write_backs = [w for w in found.write_backs if w.email == email]
    for chunk in _chunks([w.id for w in write_backs]):
        session.execute(
            update(ConsentWriteBack)
            .where(ConsentWriteBack.id.in_(chunk))
            .values(email=hashed, subscriber_fields={}, last_error=ERASED, reason=ERASED)
        )
    report.pseudonymized[ConsentWriteBack.__tablename__] = len(write_backs)
    windows = [w.id for w in found.cart_windows if w.contact_key == email]
    for chunk in _chunks(windows):
        session.execute(update(CartWindow).where(CartWindow.id.in_(chunk)).values(contact_key=hashed))
    report.pseudonymized[CartWindow.__tablename__] = len(windows)
    # Kept: the history holds only the keyed hash, what changed and what was sent (never the address
    # or a name), and it is the evidence of consent and of its withdrawal that the merchant must keep.
    report.pseudonymized[ConsentHistoryEntry.__tablename__] = len(found.consent_history)


def _rekey(session: Session, model: Any, rows: list[Any], hashed: str, report: ForgetReport) -> None:
    for chunk in _chunks([r.id for r in rows]):
        session.execute(update(model).where(model.id.in_(chunk)).values(email=hashed))
    report.pseudonymized[model.__tablename__] = report.pseudonymized.get(model.__tablename__, 0) + len(rows)


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
