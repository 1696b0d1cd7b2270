"""Carts (created, updated, converted, deleted) -> one SALESmanago CART event per cart window."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Integer, Row, bindparam, or_, update

from smbc.db.session import Database, StatementRunner, conflict_insert
from smbc.engine.context import Context, Result
from smbc.engine.ledgers import known_contact, remember_contact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.realtime.cart_links import linked_contact_id
from smbc.realtime.handlers import Delivery
from smbc.realtime.models import CartWindow

CART_LEASE = timedelta(minutes=2)
# Another worker is sending this cart's event: the delivery runs again this much later, then sees
# the window that worker left (the same content sends nothing). A send takes a BigCommerce read and
# a SALESmanago call (well under a second); at 2 s these retries were the whole p95 of a steady load.
CART_BUSY_RETRY_S = 0.5
CART_GONE = "cart no longer exists (converted or deleted)"
# The cart these are about is gone from BigCommerce for good (deleted before the webhook fires).
CART_CLOSING_SCOPES = frozenset({"store/cart/converted", "store/cart/deleted"})


# The hot statements on the cart windows, built once (Core, on the table): SQLAlchemy computes a
# statement's cache key once per object, and no ORM state is set up per call.
_WINDOWS = CartWindow.__table__
_CLOSE_WINDOWS = (
    update(_WINDOWS)
    .where(
        _WINDOWS.c.store_id == bindparam("window_store"),
        _WINDOWS.c.cart_id == bindparam("window_cart"),
        _WINDOWS.c.closed.is_(False),
    )
    .values(closed=True, closed_reason=bindparam("close_reason"))
)
_LEASE_FREE = or_(
    _WINDOWS.c.lease_until.is_(None),
    _WINDOWS.c.lease_until < bindparam("lease_now", type_=_WINDOWS.c.lease_until.type),
    _WINDOWS.c.lease_owner == bindparam("lease_holder"),
)
# What a sent CART event leaves in its window (and its lease let go), built once.
_RECORD_WINDOW = (
    update(_WINDOWS)
    .where(_WINDOWS.c.id == bindparam("window_id"))
    .values(
        event_id=bindparam("recorded_event_id", type_=_WINDOWS.c.event_id.type),
        opened_at=bindparam("recorded_opened_at", type_=_WINDOWS.c.opened_at.type),
        last_update=bindparam("recorded_at", type_=_WINDOWS.c.last_update.type),
        content_hash=bindparam("recorded_hash", type_=_WINDOWS.c.content_hash.type),
        closed=False,
        closed_reason="",
        events_sent=_WINDOWS.c.events_sent + bindparam("events_opened", type_=Integer),
        lease_owner=None,
        lease_until=None,
    )
)
_RELEASE_WINDOW = (
    update(_WINDOWS)
    .where(_WINDOWS.c.id == bindparam("window_id"), _WINDOWS.c.lease_owner == bindparam("lease_holder"))
    .values(lease_owner=None, lease_until=None)
)


def close_cart_windows(session: StatementRunner, store_id: int, cart_id: str, reason: str) -> int:
    result = session.execute(
        _CLOSE_WINDOWS, {"window_store": store_id, "window_cart": cart_id, "close_reason": reason}
    )
    return result.rowcount or 0


@functools.cache
def _lease_statement(dialect: str) -> Insert:
    """Insert the window leased, or lease the one there unless another holds it, returning its
    columns as leased (no row: another holds it): one statement, built once per dialect (the
    `ON CONFLICT` clause is the dialect's)."""
    lease = {
        "lease_owner": bindparam("lease_holder"),
        "lease_until": bindparam("lease_end", type_=_WINDOWS.c.lease_until.type),
    }
    return (
        conflict_insert(dialect, _WINDOWS)
        .values(
            store_id=bindparam("window_store"),
            cart_id=bindparam("window_cart"),
            contact_key=bindparam("window_contact"),
            **lease,
        )
        .on_conflict_do_update(
            index_elements=["store_id", "cart_id", "contact_key"], set_=lease, where=_LEASE_FREE
        )
        .returning(*_WINDOWS.c)
    )


def _lease_window(
    db: Database, store_id: int, cart_id: str, contact_key: str, owner: str, now: datetime
) -> Row[Any] | None:
    """Get (creating it first if needed) and lease the cart's window row (its columns, as leased);
    None while another holds it."""
    with db.connection() as connection:
        return connection.execute(
            _lease_statement(connection.dialect.name),
            {
                "window_store": store_id,
                "window_cart": cart_id,
                "window_contact": contact_key,
                "lease_now": now,
                "lease_holder": owner,
                "lease_end": now + CART_LEASE,
            },
        ).first()


def _cart_contact(ctx: Context, cart: dict[str, Any]) -> tuple[str | None, str | None]:
    """(email, contactId): the cart's e-mail, else its customer's, else the storefront link."""
    email = rules.normalize_email(cart.get("email"))
    customer_id = int(cart.get("customer_id") or 0)
    if not email and customer_id:
        with ctx.db.connection() as connection:
            known = known_contact(connection, ctx.store.id, customer_id=customer_id)
            email = known.email if known is not None else ""
        if not email:
            customer = ctx.bc.customer(customer_id)
            email = rules.normalize_email((customer or {}).get("email"))
    if email:
        return email, None
    with ctx.db.session() as session:
        return None, linked_contact_id(session, ctx.store.id, str(cart.get("id")))


def handle_cart(ctx: Context, delivery: Delivery) -> Result:
    cart_id = delivery.resource_id
    cart = ctx.bc.cart(cart_id)
    if cart is None:
        return Result.skipped(CART_GONE)
    if not mapping.cart_items(cart):
        return Result.skipped("cart is empty")
    email, contact_id = _cart_contact(ctx, cart)
    if not email and not contact_id:
        return Result.skipped("no known contact for the cart")
    if email:
        problem = rules.email_problem(email, ctx.settings.ignored_domains)
        if problem:
            return Result.skipped(problem)
    contact_key = email or f"id:{contact_id}"
    owner = f"delivery:{delivery.id}"
    window = _lease_window(ctx.db, ctx.store.id, cart_id, contact_key, owner, ctx.now)
    if window is None:
        return Result.retry("another worker is sending this cart's event", CART_BUSY_RETRY_S, exact=True)
    recorded = False  # the window's write lets its lease go: no release needed after it
    try:
        digest = mapping.cart_digest(cart)
        if window.event_id and not window.closed and window.content_hash == digest:
            return Result.done("cart unchanged since its last CART event")
        keep = rules.cart_update_keeps_event(
            ctx.settings.cart_event_window, window.event_id, window.closed, window.last_update, ctx.now
        )
        event = mapping.cart_event(
            cart,
            origin=mapping.EventOrigin.of(ctx.settings, ctx.location(cart.get("channel_id"))),
            now=ctx.now,
            email=email,
            contact_id=contact_id,
            event_id=window.event_id if keep else None,
        )
        contact_sm_id: str | None = None
        if keep:
            event_id = ctx.sm.update_event(event.to_payload()) or window.event_id
        elif email:
            # A new CART by e-mail goes with a bare contact upsert (all consent flags false), so the
            # contact exists for the event; nothing about the contact itself changes.
            bare = mapping.ContactUpsert(email=email, owner=ctx.owner)
            contact_sm_id, event_id = ctx.sm.integration_upsert(bare.to_payload(), event.to_payload())
        else:
            event_id = ctx.sm.add_event(event.to_payload())
        # The window and the contact ledger in one transaction: the window's write lets its lease go.
        with ctx.db.connection() as connection:
            connection.execute(
                _RECORD_WINDOW,
                {
                    "window_id": window.id,
                    "recorded_event_id": event_id,
                    "recorded_opened_at": window.opened_at if keep else ctx.now,
                    "recorded_at": ctx.now,
                    "recorded_hash": digest,
                    "events_opened": 0 if keep else 1,
                },
            )
            if contact_sm_id and email:
                remember_contact(connection, ctx.store.id, email, contact_id=contact_sm_id)
        recorded = True
        return Result.done(f"CART event {'updated' if keep else 'created'} ({event_id})")
    finally:
        if not recorded:
            with ctx.db.connection() as connection:
                connection.execute(_RELEASE_WINDOW, {"window_id": window.id, "lease_holder": owner})


def handle_cart_closed(ctx: Context, delivery: Delivery) -> Result:
    reason = "converted" if delivery.scope.endswith("converted") else "deleted"
    with ctx.db.connection() as connection:
        closed = close_cart_windows(connection, ctx.store.id, delivery.resource_id, reason)
    return Result.done(f"cart {reason}; {closed} CART window(s) closed")
