"""Orders (created, updated, status changed, refunded) -> SALESmanago PURCHASE, CANCELLATION and
RETURN events, each sent once ever.

Once ever, even when a send is interrupted (`_send_once`, on the ledger's states, see
`engine.ledgers`): the event is claimed, the BigCommerce reads and the consent plan are done, and
the claim is marked `sending` in its own commit immediately before the request leaves. A send whose
request certainly did not arrive (no connection, SALESmanago answered with an error or a 429) gives
the claim back and the delivery is retried. A send whose answer never came (a read timeout), or one
whose worker died before recording the answer (its delivery is taken over with the same owner and
finds its claim `sending`), is recorded `unconfirmed` and not sent again: SALESmanago cannot be
asked whether it holds an event, and a duplicate PURCHASE counts twice in its reports. The
delivery is done with that reason; the merchant can send it again on purpose
(`realtime.unconfirmed.resend_unconfirmed`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smbc.consent.plan import INTEGRATION_UPSERT_PATH, plan_consent, send_planned
from smbc.core.remote_calls import RemoteCallError
from smbc.db.session import StatementRunner
from smbc.engine import queue
from smbc.engine.context import Context, Result
from smbc.engine.ledgers import (
    claim_event,
    event_sent,
    keep_for_retry,
    mark_sending,
    mark_sent,
    mark_unconfirmed_event,
    release_event,
    remember_contact,
    sent_reason,
)
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import EventKind
from smbc.realtime.handlers import Delivery
from smbc.realtime.handlers.carts import close_cart_windows


def _order_items(ctx: Context, order: dict[str, Any]) -> list[dict[str, Any]]:
    items = mapping.order_line_items(order)
    return items if items is not None else ctx.bc.order_products(int(order["id"]))


def _send_with_bare_contact(ctx: Context, event: mapping.ExternalEvent, leaving: Callable[[], None]) -> str:
    """An event for an e-mail, with a bare contact upsert (no data, consent flags all false) so it
    is accepted even when the contact does not exist (yet) in SALESmanago."""
    bare = mapping.ContactUpsert(email=event.email or "", owner=ctx.owner)
    contact, request = bare.to_payload(), event.to_payload()
    leaving()
    _, event_id = ctx.sm.integration_upsert(contact, request)
    return event_id


class ClaimLost(Exception):
    """Our claim of an event was taken over before its request left (our worker was presumed dead)."""


@dataclass(frozen=True)
class Sent:
    """What SALESmanago answered for an event (and its contact, when sent with one)."""

    event_id: str
    contact_id: str | None = None
    opted_in: bool | None = None  # the consent the contact was sent with (None: unchanged)


def _send_once(
    ctx: Context,
    kind: EventKind,
    key: str,
    *,
    order_id: int,
    owner: str,
    email: str,
    send: Callable[[Callable[[], None]], Sent],
    record: Callable[[StatementRunner, Sent], None] | None = None,
) -> Sent | str:
    """Claim (kind, key) in the once-ever ledger, send, and record it as sent. A string: why it was
    not sent (already sent, another worker is sending it, or unconfirmed: see the module docstring).

    `send` calls the function it is given immediately before its SALESmanago request leaves;
    `record` writes what else the send settles, in the transaction that marks it sent."""
    busy = claim_event(ctx.db, ctx.store.id, kind, key, owner=owner, order_id=order_id, now=ctx.now)
    if busy:
        return busy
    left = False

    def leaving() -> None:
        nonlocal left
        if not mark_sending(ctx.db, ctx.store.id, kind, key, owner):
            raise ClaimLost(f"{kind} for {key}: the claim was taken over by another worker; not sent")
        left = True

    try:
        sent = send(leaving)
    except ClaimLost as lost:
        return str(lost)
    except RemoteCallError as exc:
        if left and exc.may_have_arrived:
            return mark_unconfirmed_event(ctx.db, ctx.store.id, kind, key, owner, ctx.now)
        if queue.OUTCOME_ACTIONS[exc.outcome] is queue.Action.RETRY:
            keep_for_retry(ctx.db, ctx.store.id, kind, key, owner)
        else:
            release_event(ctx.db, ctx.store.id, kind, key, owner)
        raise
    except BaseException:
        # After the request left, anything else (a failure recording the answer, a kill) may follow
        # an event SALESmanago has: the claim stays `sending`, and the retry records it unconfirmed.
        if not left:
            release_event(ctx.db, ctx.store.id, kind, key, owner)
        raise
    with ctx.db.connection() as connection:  # Core statements only
        mark_sent(
            connection,
            ctx.store.id,
            kind,
            key,
            event_id=sent.event_id,
            contact_id=sent.contact_id,
            email=email,
            now=ctx.now,
        )
        if record is not None:
            record(connection, sent)
    return sent


def _purchase_already_sent(ctx: Context, delivery: Delivery, order_id: int) -> str | None:
    """A status change into a purchase status whose PURCHASE the ledger has as sent: what reading the
    order would end in, without the read (the webhook names the new status; a later change has a
    delivery of its own, which reads the order). None: read it."""
    if delivery.scope != "store/order/statusUpdated":
        return None
    status = ((delivery.payload or {}).get("data") or {}).get("status") or {}
    try:
        new_status = int(status["new_status_id"])
    except (KeyError, TypeError, ValueError):
        return None
    if rules.order_event_kind(new_status, ctx.settings.purchase_statuses) is not EventKind.PURCHASE:
        return None
    with ctx.db.connection() as connection:
        return sent_reason(connection, ctx.store.id, EventKind.PURCHASE, str(order_id))


def handle_order(ctx: Context, delivery: Delivery) -> Result:
    order_id = int(delivery.resource_id or 0)
    already = _purchase_already_sent(ctx, delivery, order_id)
    if already is not None:
        return Result.done(already)
    order = ctx.bc.order(order_id)
    if order is None:
        return Result.skipped("order no longer exists in BigCommerce")
    status_id = int(order.get("status_id") or 0)
    kind = rules.order_event_kind(status_id, ctx.settings.purchase_statuses)
    if kind is None:
        return Result.done(f"status {status_id} ({order.get('status', '')}) sends nothing")
    key = str(order_id)
    if kind is EventKind.CANCELLATION:
        with ctx.db.connection() as connection:
            if not event_sent(connection, ctx.store.id, EventKind.PURCHASE, key):
                return Result.done("cancelled before any PURCHASE was sent")
    email = mapping.order_email(order)
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    owner = f"delivery:{delivery.id}"

    def send(leaving: Callable[[], None]) -> Sent:
        items = _order_items(ctx, order)
        event = mapping.order_event(
            order,
            items,
            kind=kind,
            origin=mapping.EventOrigin.of(ctx.settings, ctx.location(order.get("channel_id"))),
            date=None if kind is EventKind.PURCHASE else mapping.parse_bc_date(order.get("date_modified")),
        )
        if kind is not EventKind.PURCHASE:
            return Sent(_send_with_bare_contact(ctx, event, leaving))
        subscribed = True if order.get("is_email_opt_in") else None  # unticked box says nothing
        contact = mapping.contact_from_order(order, owner=ctx.owner, settings=ctx.settings)
        plan = plan_consent(ctx, email, subscribed, owner=owner)

        def purchase_request(payload: dict[str, Any]) -> tuple[str, str]:
            request = event.to_payload()
            leaving()
            return ctx.sm.integration_upsert(payload, request)

        contact_id, event_id = send_planned(
            ctx,
            contact,
            plan,
            purchase_request,
            work=owner,
            endpoint=INTEGRATION_UPSERT_PATH,
        )
        # What was sent: a double opt-in claim held elsewhere sent no opt-in.
        return Sent(event_id, contact_id, plan.opted_in)

    def purchased(session: StatementRunner, sent: Sent) -> None:
        """A PURCHASE settles the contact ledger and closes the order's cart window."""
        customer_id = int(order.get("customer_id") or 0) or None
        remember_contact(
            session,
            ctx.store.id,
            email,
            contact_id=sent.contact_id,
            customer_id=customer_id,
            opted_in=sent.opted_in,
        )
        if order.get("cart_id"):
            close_cart_windows(session, ctx.store.id, str(order["cart_id"]), "purchase")

    # One transaction after the answer: should it fail, the claim stays `sending` and the retry
    # records the event unconfirmed rather than sending it again.
    record = purchased if kind is EventKind.PURCHASE else None
    sent = _send_once(ctx, kind, key, order_id=order_id, owner=owner, email=email, send=send, record=record)
    if isinstance(sent, str):
        return Result.done(sent)
    return Result.done(f"{kind.value} sent (event {sent.event_id})")


def handle_refund(ctx: Context, delivery: Delivery) -> Result:
    data = (delivery.payload or {}).get("data") or {}
    order_id = int(data.get("id") or delivery.resource_id or 0)
    refund_id = int((data.get("refund") or {}).get("refund_id") or 0)
    order = ctx.bc.order(order_id)
    if order is None:
        return Result.skipped("order no longer exists in BigCommerce")
    refunds = [r for r in ctx.bc.refunds(order_ids=[order_id]) if int(r.get("id") or 0) == refund_id]
    refund = refunds[0] if refunds else {"id": refund_id, "total_amount": order.get("refunded_amount")}
    email = mapping.order_email(order)
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    return send_return(ctx, order, refund, owner=f"delivery:{delivery.id}")


def send_return(ctx: Context, order: dict[str, Any], refund: dict[str, Any], *, owner: str) -> Result:
    key = str(refund.get("id"))

    def send(leaving: Callable[[], None]) -> Sent:
        items = _order_items(ctx, order)
        event = mapping.return_event(
            order,
            refund,
            items,
            origin=mapping.EventOrigin.of(ctx.settings, ctx.location(order.get("channel_id"))),
        )
        return Sent(_send_with_bare_contact(ctx, event, leaving))

    email = mapping.order_email(order)
    sent = _send_once(
        ctx, EventKind.RETURN, key, order_id=int(order["id"]), owner=owner, email=email, send=send
    )
    if isinstance(sent, str):
        return Result.done(sent)
    return Result.done(f"RETURN sent for refund {key} (event {sent.event_id})")
