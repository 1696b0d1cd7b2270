"""Every row the app holds about one order, customer, e-mail or cart of a store: the deliveries about
it, the calls made for them, and the ledger rows. What `smbc activity --order N` (and the Activity
tab's search) shows and what `smbc privacy export|forget` reads and erases.

An e-mail reaches its customer ids (contact ledger), orders (sent events), subscribers, carts,
consent write-backs and consent history; a customer id reaches its e-mails and so the same. Ledger
rows of a forgotten person are found under the keyed hash of the e-mail (`engine.ledgers.ledger_keys`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session

from smbc.consent.history import history_keys
from smbc.consent.models import ConsentHistoryEntry, ConsentWriteBack, DoubleOptInClaim, KnownSubscriber
from smbc.core.remote_calls import RemoteCall
from smbc.engine.ledgers import SentEvent, SyncedContact, ledger_email, ledger_keys
from smbc.monitoring.models import CartLink
from smbc.realtime.models import CartWindow, WebhookDelivery

MAX_ROWS = 2000  # per kind of row: an entity's history, not a table scan


class EntityKind(StrEnum):
    ORDER = "order"
    CUSTOMER = "customer"
    EMAIL = "email"
    CART = "cart"


@dataclass(frozen=True)
class Entity:
    kind: EntityKind
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> Entity:
        """The entity named by the user, checked: ValueError with a message naming the problem."""
        try:
            entity_kind = EntityKind(kind)
        except ValueError:
            raise ValueError(f"search by one of: {', '.join(k.value for k in EntityKind)}") from None
        value = value.strip()
        if entity_kind in (EntityKind.ORDER, EntityKind.CUSTOMER):
            if not value.isdigit() or len(value) > 18:
                article = "an" if entity_kind is EntityKind.ORDER else "a"
                raise ValueError(
                    f"{entity_kind.value}: must be {article} {entity_kind.value} id (a whole number)"
                )
            value = str(int(value))
        elif entity_kind is EntityKind.EMAIL:
            value = ledger_email(value)
            if "@" not in value or len(value) > 320:
                raise ValueError("email: must be an e-mail address")
        elif not value or len(value) > 64:
            raise ValueError("cart: must be a cart id")
        return cls(entity_kind, value)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}"


@dataclass
class EntityRecords:
    entity: Entity
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    calls: list[RemoteCall] = field(default_factory=list)
    sent_events: list[SentEvent] = field(default_factory=list)
    contacts: list[SyncedContact] = field(default_factory=list)
    subscribers: list[KnownSubscriber] = field(default_factory=list)
    write_backs: list[ConsentWriteBack] = field(default_factory=list)
    double_opt_in: list[DoubleOptInClaim] = field(default_factory=list)
    consent_history: list[ConsentHistoryEntry] = field(default_factory=list)
    cart_windows: list[CartWindow] = field(default_factory=list)
    cart_links: list[CartLink] = field(default_factory=list)


# The webhook scopes about each kind of resource (`resource_id` is the order, customer, cart or
# subscriber id; an address event's is its customer's).
SCOPE_PREFIXES = {
    "order": "store/order/",
    "customer": "store/customer/",
    "cart": "store/cart/",
    "subscriber": "store/subscriber/",
}


def _about(prefix: str, ids: Iterable[object]) -> ColumnElement[bool]:
    values = sorted({str(i) for i in ids if i not in (None, "")})
    if not values:
        return false()
    return and_(WebhookDelivery.scope.startswith(prefix), WebhookDelivery.resource_id.in_(values))


def find_entity_records(session: Session, store_id: int, entity: Entity) -> EntityRecords:
    """Every row about `entity` in the store (rows of `session`: read them while it is open)."""
    found = EntityRecords(entity)
    order_ids: set[int] = set()
    customer_ids: set[int] = set()
    cart_ids: set[str] = set()
    keys: list[str] = []
    if entity.kind is EntityKind.ORDER:
        order_ids.add(int(entity.value))
        found.sent_events = _rows(
            session,
            select(SentEvent).where(SentEvent.store_id == store_id, SentEvent.order_id == int(entity.value)),
        )
    elif entity.kind is EntityKind.CART:
        cart_ids.add(entity.value)
    else:
        if entity.kind is EntityKind.CUSTOMER:
            customer_ids.add(int(entity.value))
            by_customer = select(SyncedContact).where(
                SyncedContact.store_id == store_id, SyncedContact.customer_id == int(entity.value)
            )
            keys = [c.email for c in _rows(session, by_customer)]
        else:
            keys = ledger_keys(entity.value)

        def by_email(model: Any) -> list[Any]:
            return _rows(session, select(model).where(model.store_id == store_id, model.email.in_(keys)))

        found.contacts = by_email(SyncedContact)
        customer_ids |= {c.customer_id for c in found.contacts if c.customer_id}
        found.sent_events = by_email(SentEvent)
        order_ids |= {e.order_id for e in found.sent_events if e.order_id}
        found.subscribers = by_email(KnownSubscriber)
        found.write_backs = by_email(ConsentWriteBack)
        found.double_opt_in = by_email(DoubleOptInClaim)
        found.consent_history = _rows(
            session,
            select(ConsentHistoryEntry)
            .where(
                ConsentHistoryEntry.store_id == store_id,
                ConsentHistoryEntry.email_hash.in_(history_keys(keys)),
            )
            .order_by(ConsentHistoryEntry.at, ConsentHistoryEntry.id),
        )
    contact_ids = {c.contact_id for c in found.contacts if c.contact_id}
    contact_keys = [*keys, *(f"id:{c}" for c in contact_ids)]
    found.cart_windows = _rows(
        session,
        select(CartWindow).where(
            CartWindow.store_id == store_id,
            or_(CartWindow.contact_key.in_(contact_keys), CartWindow.cart_id.in_(sorted(cart_ids))),
        ),
    )
    cart_ids |= {w.cart_id for w in found.cart_windows}
    found.cart_links = _rows(
        session,
        select(CartLink).where(
            CartLink.store_id == store_id,
            or_(CartLink.cart_id.in_(sorted(cart_ids)), CartLink.contact_id.in_(sorted(contact_ids))),
        ),
    )
    cart_ids |= {link.cart_id for link in found.cart_links}
    found.deliveries = _rows(
        session,
        select(WebhookDelivery).where(
            WebhookDelivery.store_id == store_id,
            or_(
                _about(SCOPE_PREFIXES["order"], order_ids),
                _about(SCOPE_PREFIXES["customer"], customer_ids),
                _about(SCOPE_PREFIXES["cart"], cart_ids),
                _about(SCOPE_PREFIXES["subscriber"], (s.subscriber_id for s in found.subscribers)),
            ),
        ),
    )
    contexts = [f"delivery:{d.id}" for d in found.deliveries]
    contexts += [f"consent:{w.id}" for w in found.write_backs]
    found.calls = _rows(
        session,
        select(RemoteCall).where(RemoteCall.store_id == store_id, RemoteCall.context.in_(contexts))
        if contexts
        else select(RemoteCall).where(false()),
    )
    return found


def _rows(session: Session, query: Select[Any]) -> list[Any]:
    return list(session.scalars(query.limit(MAX_ROWS)))
