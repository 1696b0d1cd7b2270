"""Real-time processing: each inbox row reads the current state from BigCommerce and sends what
changed to SALESmanago, exactly once per rule, whatever the number of deliveries or workers.

Flow of one delivery (database transactions are short; no lock is held during a network call):
claim the row (and due siblings of the same store and kind, read together with one `id:in` call)
-> read BigCommerce -> claim the ledger row (insert first: the unique key decides who sends) ->
send to SALESmanago -> record the result, the ledger and every attempt in one transaction.

Outcomes: retryable -> `pending` again with `next_attempt_at` (exponential backoff with jitter, up
to 24 h, then `failed`); invalid -> `failed` with SALESmanago's message; credentials -> the store's
sync is paused and its deliveries `waiting` until `resume_store()` (called at the next login).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from huey import crontab
from prometheus_client import Counter
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SENT_STATES, SentEvent, SyncedContact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import EventKind
from smbc.realtime.cart_links import linked_contact_id
from smbc.realtime.models import CartWindow, DeliveryStatus, WebhookDelivery
from smbc.settings.store_settings import StoreSettings

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=2)
GIVE_UP_AFTER = timedelta(hours=24)
STALE_LOCK = timedelta(minutes=10)  # a worker that died mid-delivery frees it after this
NEVER_TRIED_GRACE = timedelta(seconds=60)  # fresh rows are in the queue already
CART_LEASE = timedelta(minutes=2)
CART_BUSY_RETRY_S = 2.0
CART_LEASE_WAIT_S = 5.0  # real seconds a worker waits for another one's send on the same cart
COALESCE_LIMIT = 50

PAUSE_SM_CREDENTIALS = "credentials"
PAUSE_BC_CREDENTIALS = "bigcommerce_credentials"
PAUSE_LOGGED_OUT = "logged_out"  # set by the SALESmanago-account area at logout
RESUMABLE_PAUSES = (PAUSE_SM_CREDENTIALS, PAUSE_BC_CREDENTIALS, PAUSE_LOGGED_OUT)

# Scopes read together: pending deliveries of one store in one group share one `id:in` read.
COALESCE_GROUPS: dict[str, tuple[str, ...]] = {
    "customer": (
        "store/customer/created",
        "store/customer/updated",
        "store/customer/address/created",
        "store/customer/address/updated",
        "store/customer/address/deleted",
    ),
    "subscriber": ("store/subscriber/created", "store/subscriber/updated"),
}
_GROUP_OF = {scope: group for group, scopes in COALESCE_GROUPS.items() for scope in scopes}
# When deliveries about one resource are coalesced, these win (a registration keeps its tags);
# note `store/customer/address/created` is not one of them.
_CREATED_SCOPES = frozenset({"store/customer/created", "store/subscriber/created"})


PROCESSED = Counter(
    "smbc_deliveries_processed_total", "Inbox rows worked on, by resulting status", ["status"]
)


class SalesmanagoPort(Protocol):
    """What real time needs from `smbc.salesmanago.client.SalesmanagoClient`."""

    def upsert_contact(self, payload: dict[str, Any]) -> str: ...

    def integration_upsert(
        self, contact_payload: dict[str, Any], event: dict[str, Any]
    ) -> tuple[str, str]: ...

    def add_event(self, event: dict[str, Any]) -> str: ...

    def update_event(self, event: dict[str, Any]) -> str: ...

    def delete_contact(self, email: str) -> Any: ...

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]: ...


# -- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    status: DeliveryStatus
    reason: str = ""
    error: str = ""
    retry_after: float | None = None
    exact: bool = False  # retry after exactly `retry_after` (a short wait for another worker)

    @classmethod
    def done(cls, reason: str = "") -> Result:
        return cls(DeliveryStatus.DONE, reason)

    @classmethod
    def skipped(cls, reason: str) -> Result:
        return cls(DeliveryStatus.SKIPPED, reason)

    @classmethod
    def retry(cls, error: str, after: float | None = None, *, exact: bool = False) -> Result:
        return cls(DeliveryStatus.PENDING, error=error, retry_after=after, exact=exact)


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the ceiling plus a random half (30 s, 1 min, ... 2 h)."""
    ceiling = min(RETRY_CAP.total_seconds(), RETRY_BASE.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + (rng or random).uniform(0, ceiling / 2))


# -- context ---------------------------------------------------------------------------------


@dataclass
class Context:
    db: Database
    store: Store  # detached snapshot
    settings: StoreSettings
    bc: BigCommerceClient
    sm: SalesmanagoPort
    calls: CallBuffer
    now: datetime
    prefetched: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.settings.contact_owner

    def location(self, channel_id: int | None) -> str:
        return mapping.channel_location(self.settings, self.store.sites or [], int(channel_id or 1))


def load_settings_for(session: Session, store_id: int) -> StoreSettings:
    from smbc.settings.store_settings import load_store_settings

    return load_store_settings(session, store_id)


def _default_sm_factory(session: Session, store: Store, calls: CallBuffer) -> SalesmanagoPort:
    from smbc.account.credentials import salesmanago_client
    from smbc.salesmanago.client import record_calls_into

    recorder = record_calls_into(calls, store.id)
    return salesmanago_client(session, store, recorder=recorder, context=calls.context)


# Swappable for tests and benchmarks: (session, store, calls) -> SalesmanagoPort.
sm_factory: Callable[[Session, Store, CallBuffer], SalesmanagoPort] = _default_sm_factory
# (session, store_id, cart_id) -> SALESmanago contactId linked to the cart by the storefront script.
cart_link_lookup: Callable[[Session, int, str], str | None] | None = None


def _linked_contact(session: Session, store_id: int, cart_id: str) -> str | None:
    lookup = cart_link_lookup or linked_contact_id
    return lookup(session, store_id, cart_id)


# -- claiming --------------------------------------------------------------------------------


def _due(now: datetime):
    return and_(
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
    )


def _claim_one(session: Session, delivery_id: int, now: datetime) -> bool:
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, _due(now))
        .values(status=DeliveryStatus.PROCESSING.value, locked_at=now, attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_batch(db: Database, delivery_id: int, now: datetime) -> list[WebhookDelivery]:
    """Claim the row, plus due rows of the same store and coalescing group (one read for all).

    One transaction and one UPDATE for the siblings; on PostgreSQL rows another worker is claiming
    are skipped (SKIP LOCKED), not waited for: that worker takes them."""
    with db.session() as session:
        if not _claim_one(session, delivery_id, now):
            return []
        first = session.get(WebhookDelivery, delivery_id)
        assert first is not None
        claimed = [first]
        group = _GROUP_OF.get(first.scope)
        if group is not None:
            due_siblings = (
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.store_id == first.store_id,
                    WebhookDelivery.scope.in_(COALESCE_GROUPS[group]),
                    WebhookDelivery.id != first.id,
                    _due(now),
                )
                .order_by(WebhookDelivery.id)
                .limit(COALESCE_LIMIT - 1)
                .with_for_update(skip_locked=True)  # nothing on SQLite, which has one writer anyway
            )
            sibling_ids = session.scalars(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due_siblings.scalar_subquery()), _due(now))
                .values(
                    status=DeliveryStatus.PROCESSING.value,
                    locked_at=now,
                    attempts=WebhookDelivery.attempts + 1,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            ).all()
            if sibling_ids:
                claimed += session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(sibling_ids))
                    .order_by(WebhookDelivery.id)
                ).all()
        session.expunge_all()
    return claimed


# -- the entry point -------------------------------------------------------------------------


def process_delivery(delivery_id: int, *, db: Database | None = None) -> list[tuple[int, Result]]:
    """Work on one inbox row (and the siblings it coalesces with). Returns what happened to each."""
    from smbc.core.runtime import get_runtime

    db = db or get_runtime().db
    now = utcnow()
    batch = claim_batch(db, delivery_id, now)
    if not batch:
        return []
    with db.session() as session:
        store = session.get(Store, batch[0].store_id)
        settings = load_settings_for(session, batch[0].store_id) if store else StoreSettings()
        if store is not None:
            session.expunge(store)
    if store is None or not store.installed:
        return _finish(db, batch, {d.id: Result.skipped("store uninstalled") for d in batch}, None, now)
    if store.sync_paused_reason:
        paused = Result(DeliveryStatus.WAITING, f"sync paused: {store.sync_paused_reason}")
        return _finish(db, batch, {d.id: paused for d in batch}, None, now)

    calls = CallBuffer(context=f"delivery:{batch[0].id}")
    results: dict[int, Result] = {}
    sm_session = db.sessions()
    try:
        try:
            bc = bc_for_store(store, recorder=calls, context=calls.context)
            sm = sm_factory(sm_session, store, calls)
            sm_session.rollback()  # credentials are read; hold no transaction during network calls
        except RemoteCallError as exc:
            failure = _from_error(exc)
            return _finish(db, batch, {d.id: failure for d in batch}, calls, now, store=store, error=exc)
        except Exception as exc:  # e.g. the SALESmanago client cannot be built: keep the rows, retry
            log.exception("could not prepare clients for store %s", store.hash)
            failure = Result.retry(f"internal error: {type(exc).__name__}: {exc}")
            return _finish(db, batch, {d.id: failure for d in batch}, calls, now)
        ctx = Context(db, store, settings, bc, sm, calls, now)
        primary = _coalesce_same_resource(batch, results)
        try:
            _prefetch(ctx, primary)
        except RemoteCallError as exc:
            failure = _from_error(exc)
            return _finish(db, batch, {d.id: failure for d in batch}, calls, now, store=store, error=exc)
        last_error: RemoteCallError | None = None
        for delivery in primary:
            try:
                results[delivery.id] = handle(ctx, delivery)
            except RemoteCallError as exc:
                results[delivery.id] = _from_error(exc)
                last_error = exc if exc.outcome is Outcome.CREDENTIALS else last_error
                if exc.outcome is Outcome.CREDENTIALS:
                    break  # the store is about to be paused: the rest waits too
            except Exception as exc:  # a bug must not lose the delivery: retry later, keep the error
                log.exception("delivery %s failed", delivery.id)
                results[delivery.id] = Result.retry(f"internal error: {type(exc).__name__}: {exc}")
        for delivery in batch:
            results.setdefault(delivery.id, Result(DeliveryStatus.WAITING, "sync paused: credentials"))
        return _finish(db, batch, results, calls, now, store=store, error=last_error)
    finally:
        sm_session.close()


def _coalesce_same_resource(
    batch: Sequence[WebhookDelivery], results: dict[int, Result]
) -> list[WebhookDelivery]:
    """Several deliveries about one customer in a batch: handle one (a `created` if there is one)."""
    chosen: dict[tuple[str, str], WebhookDelivery] = {}
    for delivery in batch:
        group = _GROUP_OF.get(delivery.scope)
        if group is None or not delivery.resource_id:
            chosen[(delivery.scope, str(delivery.id))] = delivery
            continue
        key = (group, delivery.resource_id)
        current = chosen.get(key)
        if current is None or (delivery.scope in _CREATED_SCOPES and current.scope not in _CREATED_SCOPES):
            chosen[key] = delivery
    primary = list(chosen.values())
    kept = {d.id for d in primary}
    for delivery in batch:
        if delivery.id not in kept:
            winner = next(
                d
                for d in primary
                if _GROUP_OF.get(d.scope) == _GROUP_OF.get(delivery.scope)
                and d.resource_id == delivery.resource_id
            )
            results[delivery.id] = Result.done(f"coalesced with delivery {winner.id}")
    return primary


def _prefetch(ctx: Context, batch: Sequence[WebhookDelivery]) -> None:
    ids: dict[str, set[int]] = {}
    for delivery in batch:
        group = _GROUP_OF.get(delivery.scope)
        if group and delivery.resource_id.isdigit():
            ids.setdefault(group, set()).add(int(delivery.resource_id))
    if ids.get("customer"):
        ctx.prefetched["customer"] = ctx.bc.customers_by_id(sorted(ids["customer"]))
    if ids.get("subscriber"):
        ctx.prefetched["subscriber"] = ctx.bc.subscribers_by_id(sorted(ids["subscriber"]))


def _from_error(exc: RemoteCallError) -> Result:
    if exc.outcome.retryable:
        return Result.retry(exc.message, exc.retry_after)
    if exc.outcome is Outcome.CREDENTIALS:
        return Result(DeliveryStatus.WAITING, "sync paused: credentials", error=exc.message)
    if exc.outcome is Outcome.IGNORED:
        return Result.skipped(exc.message[:255])
    return Result(DeliveryStatus.FAILED, "refused", error=exc.message)


def _pause_reason(exc: RemoteCallError) -> str:
    return PAUSE_BC_CREDENTIALS if exc.message.startswith("BigCommerce") else PAUSE_SM_CREDENTIALS


def _finish(
    db: Database,
    batch: Sequence[WebhookDelivery],
    results: dict[int, Result],
    calls: CallBuffer | None,
    now: datetime,
    *,
    store: Store | None = None,
    error: RemoteCallError | None = None,
) -> list[tuple[int, Result]]:
    """Record every outcome, the attempts, and a pause, in one transaction."""
    out: list[tuple[int, Result]] = []
    with db.session() as session:
        if calls is not None:
            calls.flush(session)
        if store is not None and error is not None and error.outcome is Outcome.CREDENTIALS:
            reason = _pause_reason(error)
            session.execute(
                update(Store)
                .where(Store.id == store.id, Store.sync_paused_reason.is_(None))
                .values(sync_paused_reason=reason)
            )
            for result in results.values():
                if result.status is DeliveryStatus.WAITING:
                    result.reason = f"sync paused: {reason}"
        for delivery in batch:
            result = results[delivery.id]
            values: dict[str, Any] = {
                "status": result.status.value,
                "reason": result.reason[:255],
                "locked_at": None,
            }
            if result.error:
                values["last_error"] = result.error[:2000]
            if result.status is DeliveryStatus.PENDING:
                attempts = delivery.attempts  # already counted when claimed
                if now - delivery.received_at >= GIVE_UP_AFTER:
                    values.update(status=DeliveryStatus.FAILED.value, reason="gave up after 24 h of retries")
                    result = Result(DeliveryStatus.FAILED, values["reason"], result.error)
                else:
                    wait = retry_delay(attempts)
                    if result.retry_after and result.exact:
                        wait = timedelta(seconds=result.retry_after)
                    elif result.retry_after:
                        wait = max(wait, timedelta(seconds=result.retry_after))
                    values["next_attempt_at"] = now + wait
            elif result.status is not DeliveryStatus.WAITING:
                values["processed_at"] = now
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values))
            out.append((delivery.id, result))
    for _, result in out:
        PROCESSED.labels(result.status.value).inc()
    return out


# -- handlers --------------------------------------------------------------------------------


def handle(ctx: Context, delivery: WebhookDelivery) -> Result:
    scope = delivery.scope
    handler = HANDLERS.get(scope)
    if handler is None:
        return Result.skipped(f"scope {scope} is not synced")
    return handler(ctx, delivery)


def _contact_by(session: Session, store_id: int, *, email: str | None = None, customer_id: int | None = None):
    if customer_id:
        row = session.scalars(
            select(SyncedContact)
            .where(SyncedContact.store_id == store_id, SyncedContact.customer_id == customer_id)
            .order_by(SyncedContact.updated_at.desc())
        ).first()
        if row is not None:
            return row
    if email:
        return session.scalars(
            select(SyncedContact).where(SyncedContact.store_id == store_id, SyncedContact.email == email)
        ).first()
    return None


def _insert_if_missing(session: Session, store_id: int, email: str) -> None:
    """INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL): two workers may meet one e-mail."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(SyncedContact).values(
        store_id=store_id, email=email, payload_hash="", deleted=False, updated_at=utcnow()
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["store_id", "email"]))


def remember_contact(
    session: Session,
    store_id: int,
    email: str,
    *,
    contact_id: str | None = None,
    customer_id: int | None = None,
    previous_email: str | None = None,
    opted_in: bool | None = None,
    payload_hash: str | None = None,
) -> SyncedContact:
    """Update the contact ledger (an e-mail change moves what was known to the new e-mail)."""
    email = rules.normalize_email(email)
    _insert_if_missing(session, store_id, email)
    row = session.scalars(
        select(SyncedContact).where(SyncedContact.store_id == store_id, SyncedContact.email == email)
    ).one()
    if previous_email and rules.normalize_email(previous_email) != email:
        old = session.scalars(
            select(SyncedContact).where(
                SyncedContact.store_id == store_id,
                SyncedContact.email == rules.normalize_email(previous_email),
            )
        ).first()
        if old is not None:
            row.contact_id = row.contact_id or old.contact_id
            row.customer_id = row.customer_id or old.customer_id
            row.opted_in = row.opted_in if row.opted_in is not None else old.opted_in
            session.execute(delete(SyncedContact).where(SyncedContact.id == old.id))
    if contact_id:
        row.contact_id = contact_id
    if customer_id:
        row.customer_id = customer_id
    if opted_in is not None:
        row.opted_in = opted_in
    if payload_hash is not None:
        row.payload_hash = payload_hash
    row.deleted = False
    row.updated_at = utcnow()
    return row


def _store_lang(ctx: Context) -> str | None:
    info = ctx.store.info or {}
    return rules.lang_code(info.get("language") or info.get("locale"))


def handle_customer(ctx: Context, delivery: WebhookDelivery) -> Result:
    customer_id = int(delivery.resource_id or 0)
    customer = ctx.prefetched.get("customer", {}).get(customer_id)
    if customer is None and "customer" not in ctx.prefetched:
        customer = ctx.bc.customer(customer_id)
    if customer is None:
        return Result.skipped("customer no longer exists in BigCommerce")
    email = rules.normalize_email(customer.get("email"))
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    with ctx.db.session() as session:
        known = _contact_by(session, ctx.store.id, customer_id=customer_id, email=email)
        known_email = known.email if known is not None and known.customer_id == customer_id else None
        known_hash = known.payload_hash if known is not None else ""
    registering = delivery.scope == "store/customer/created"
    contact = mapping.contact_from_customer(
        customer,
        owner=ctx.owner,
        tags=ctx.settings.tags_registration if registering else (),
        lang=_store_lang(ctx),
        previous_email=known_email,
    )
    digest = contact.digest()
    if known_hash == digest and (not registering or delivery.source == "reconcile"):
        return Result.done("contact unchanged")  # (a reconciled registration already sent too)
    from smbc.consent import service as consent

    plan = consent.plan_registration(ctx, customer, registering=registering)  # opt-in synchronization
    contact_id = consent.send_planned(ctx, contact, plan, ctx.sm.upsert_contact)
    with ctx.db.session() as session:
        remember_contact(
            session,
            ctx.store.id,
            email,
            contact_id=contact_id,
            customer_id=customer_id,
            previous_email=known_email,
            opted_in=plan.opted_in,
            payload_hash=digest,
        )
    if contact.new_email:
        return Result.done(f"e-mail changed from {contact.email}")
    return Result.done("registered" if registering else "contact updated")


def handle_customer_deleted(ctx: Context, delivery: WebhookDelivery) -> Result:
    customer_id = int(delivery.resource_id or 0)
    with ctx.db.session() as session:
        known = _contact_by(session, ctx.store.id, customer_id=customer_id)
        email = known.email if known is not None else None
        if known is not None:
            known.deleted = True
    if email is None:
        return Result.done("customer deleted; no contact was sent for it")
    if not ctx.settings.delete_contact_on_customer_delete:
        return Result.done("customer deleted; contact kept (setting off)")
    ctx.sm.delete_contact(email)
    return Result.done("customer deleted; contact deleted in SALESmanago")


def handle_subscriber(ctx: Context, delivery: WebhookDelivery) -> Result:
    """Newsletter consent: the rules, double opt-in and echo suppression live in `sync.consent`."""
    from smbc.consent import service as consent

    return consent.handle_subscriber(ctx, delivery)


def handle_subscriber_deleted(ctx: Context, delivery: WebhookDelivery) -> Result:
    from smbc.consent import service as consent

    return consent.handle_subscriber_deleted(ctx, delivery)


# -- the once-ever ledger --------------------------------------------------------------------


def claim_event(
    db: Database, store_id: int, kind: EventKind, key: str, *, owner: str, order_id: int | None, now: datetime
) -> str | None:
    """Insert-first claim of (store, kind, key). None: ours to send; otherwise why not."""
    try:
        with db.session() as session:
            session.add(
                SentEvent(
                    store_id=store_id,
                    kind=kind.value,
                    key=key,
                    order_id=order_id,
                    claimed_by=owner,
                    claimed_at=now,
                )
            )
        return None
    except IntegrityError:
        pass
    with db.session() as session:
        row = session.scalars(
            select(SentEvent).where(
                SentEvent.store_id == store_id, SentEvent.kind == kind.value, SentEvent.key == key
            )
        ).first()
        if row is None:
            return "claimed and released by another worker; retry"
        if row.state in SENT_STATES:
            return f"{kind.value} already sent for {key} (event {row.event_id})"
        stale = now - row.claimed_at > STALE_LOCK and row.claimed_by.startswith("delivery:")
        if row.claimed_by == owner or stale:  # an export's claim is its own to resume or release
            row.claimed_by, row.claimed_at = owner, now  # our own earlier attempt, or a dead worker's
            return None
        return f"{kind.value} for {key} is being sent by {row.claimed_by}"


def release_event(db: Database, store_id: int, kind: EventKind, key: str, owner: str) -> None:
    with db.session() as session:
        session.execute(
            delete(SentEvent).where(
                SentEvent.store_id == store_id,
                SentEvent.kind == kind.value,
                SentEvent.key == key,
                SentEvent.claimed_by == owner,
                SentEvent.state == "claimed",
            )
        )


def mark_sent(
    session: Session,
    store_id: int,
    kind: EventKind,
    key: str,
    *,
    event_id: str | None,
    contact_id: str | None,
    email: str | None,
    now: datetime,
) -> None:
    session.execute(
        update(SentEvent)
        .where(SentEvent.store_id == store_id, SentEvent.kind == kind.value, SentEvent.key == key)
        .values(state="sent", event_id=event_id, contact_id=contact_id, email=email, sent_at=now)
    )


def event_sent(session: Session, store_id: int, kind: EventKind, key: str) -> bool:
    return (
        session.scalars(
            select(SentEvent.id).where(
                SentEvent.store_id == store_id,
                SentEvent.kind == kind.value,
                SentEvent.key == key,
                SentEvent.state.in_(SENT_STATES),
            )
        ).first()
        is not None
    )


def _order_items(ctx: Context, order: dict[str, Any]) -> list[dict[str, Any]]:
    items = mapping.order_line_items(order)
    return items if items is not None else ctx.bc.order_products(int(order["id"]))


def _send_with_bare_contact(ctx: Context, event: mapping.ExternalEvent) -> str:
    """An event for an e-mail, with a bare contact upsert (no data, consent flags all false) so it
    is accepted even when the contact does not exist (yet) in SALESmanago."""
    bare = mapping.ContactUpsert(email=event.email or "", owner=ctx.owner)
    _, event_id = ctx.sm.integration_upsert(bare.to_payload(), event.to_payload())
    return event_id


def handle_order(ctx: Context, delivery: WebhookDelivery) -> Result:
    order_id = int(delivery.resource_id or 0)
    order = ctx.bc.order(order_id)
    if order is None:
        return Result.skipped("order no longer exists in BigCommerce")
    status_id = int(order.get("status_id") or 0)
    kind = rules.order_event_kind(status_id, ctx.settings.purchase_statuses)
    if kind is None:
        return Result.done(f"status {status_id} ({order.get('status', '')}) sends nothing")
    key = str(order_id)
    if kind is EventKind.CANCELLATION:
        with ctx.db.session() as session:
            if not event_sent(session, ctx.store.id, EventKind.PURCHASE, key):
                return Result.done("cancelled before any PURCHASE was sent")
    email = mapping.order_email(order)
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    owner = f"delivery:{delivery.id}"
    busy = claim_event(ctx.db, ctx.store.id, kind, key, owner=owner, order_id=order_id, now=ctx.now)
    if busy:
        return Result.done(busy)
    try:
        items = _order_items(ctx, order)
        event = mapping.order_event(
            order,
            items,
            kind=kind,
            settings=ctx.settings,
            location=ctx.location(order.get("channel_id")),
            owner=ctx.owner,
            date=None if kind is EventKind.PURCHASE else mapping.parse_bc_date(order.get("date_modified")),
        )
        contact_id: str | None = None
        subscribed: bool | None = None
        if kind is EventKind.PURCHASE:
            from smbc.consent import service as consent

            subscribed = True if order.get("is_email_opt_in") else None  # unticked box says nothing
            contact = mapping.contact_from_order(order, owner=ctx.owner, settings=ctx.settings)
            plan = consent.plan_consent(ctx, email, subscribed, owner=owner)
            contact_id, event_id = consent.send_planned(
                ctx, contact, plan, lambda payload: ctx.sm.integration_upsert(payload, event.to_payload())
            )
            subscribed = plan.opted_in  # what was sent (a lost double opt-in claim sent no opt-in)
        else:
            event_id = _send_with_bare_contact(ctx, event)
    except BaseException:
        release_event(ctx.db, ctx.store.id, kind, key, owner)
        raise
    with ctx.db.session() as session:
        mark_sent(
            session,
            ctx.store.id,
            kind,
            key,
            event_id=event_id,
            contact_id=contact_id,
            email=email,
            now=ctx.now,
        )
    # Apart: the once-ever record above is committed whatever happens to the bookkeeping below.
    with ctx.db.session() as session:
        if kind is EventKind.PURCHASE:
            customer_id = int(order.get("customer_id") or 0) or None
            remember_contact(
                session,
                ctx.store.id,
                email,
                contact_id=contact_id,
                customer_id=customer_id,
                opted_in=subscribed,
            )
            if order.get("cart_id"):
                close_cart_windows(session, ctx.store.id, str(order["cart_id"]), "purchase")
    return Result.done(f"{kind.value} sent (event {event_id})")


def handle_refund(ctx: Context, delivery: WebhookDelivery) -> Result:
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
    busy = claim_event(
        ctx.db, ctx.store.id, EventKind.RETURN, key, owner=owner, order_id=int(order["id"]), now=ctx.now
    )
    if busy:
        return Result.done(busy)
    try:
        items = _order_items(ctx, order)
        event = mapping.return_event(
            order,
            refund,
            items,
            settings=ctx.settings,
            location=ctx.location(order.get("channel_id")),
            owner=ctx.owner,
        )
        event_id = _send_with_bare_contact(ctx, event)
    except BaseException:
        release_event(ctx.db, ctx.store.id, EventKind.RETURN, key, owner)
        raise
    with ctx.db.session() as session:
        mark_sent(
            session,
            ctx.store.id,
            EventKind.RETURN,
            key,
            event_id=event_id,
            contact_id=None,
            email=mapping.order_email(order),
            now=ctx.now,
        )
    return Result.done(f"RETURN sent for refund {key} (event {event_id})")


# -- carts -----------------------------------------------------------------------------------


def close_cart_windows(session: Session, store_id: int, cart_id: str, reason: str) -> int:
    result = session.execute(
        update(CartWindow)
        .where(CartWindow.store_id == store_id, CartWindow.cart_id == cart_id, CartWindow.closed.is_(False))
        .values(closed=True, closed_reason=reason)
    )
    return result.rowcount or 0


def _lease_window(db: Database, store_id: int, cart_id: str, contact_key: str, owner: str, now: datetime):
    """Get (creating it first if needed) and lease the cart's window row; None while another holds it."""
    try:
        with db.session() as session:
            session.add(CartWindow(store_id=store_id, cart_id=cart_id, contact_key=contact_key))
    except IntegrityError:
        pass
    with db.session() as session:
        leased = session.execute(
            update(CartWindow)
            .where(
                CartWindow.store_id == store_id,
                CartWindow.cart_id == cart_id,
                CartWindow.contact_key == contact_key,
                or_(
                    CartWindow.lease_until.is_(None),
                    CartWindow.lease_until < now,
                    CartWindow.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_until=now + CART_LEASE)
            .execution_options(synchronize_session=False)
        )
        if leased.rowcount != 1:
            return None
        row = session.scalars(
            select(CartWindow).where(
                CartWindow.store_id == store_id,
                CartWindow.cart_id == cart_id,
                CartWindow.contact_key == contact_key,
            )
        ).one()
        session.expunge(row)
        return row


def _cart_contact(ctx: Context, cart: dict[str, Any]) -> tuple[str | None, str | None]:
    """(email, contactId): the cart's e-mail, else its customer's, else the storefront link."""
    email = rules.normalize_email(cart.get("email"))
    customer_id = int(cart.get("customer_id") or 0)
    if not email and customer_id:
        with ctx.db.session() as session:
            known = _contact_by(session, ctx.store.id, customer_id=customer_id)
            email = known.email if known is not None else ""
        if not email:
            customer = ctx.bc.customer(customer_id)
            email = rules.normalize_email((customer or {}).get("email"))
    if email:
        return email, None
    with ctx.db.session() as session:
        return None, _linked_contact(session, ctx.store.id, str(cart.get("id")))


def handle_cart(ctx: Context, delivery: WebhookDelivery) -> Result:
    cart_id = delivery.resource_id
    cart = ctx.bc.cart(cart_id)
    if cart is None:
        return Result.skipped("cart no longer exists (converted or deleted)")
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
    deadline = time.monotonic() + CART_LEASE_WAIT_S
    while window is None and time.monotonic() < deadline:
        time.sleep(0.02)  # another worker sends this cart's event right now: wait for it, briefly
        window = _lease_window(ctx.db, ctx.store.id, cart_id, contact_key, owner, ctx.now)
    if window is None:
        return Result.retry("another worker is sending this cart's event", CART_BUSY_RETRY_S, exact=True)
    try:
        digest = mapping.cart_digest(cart)
        if window.event_id and not window.closed and window.content_hash == digest:
            return Result.done("cart unchanged since its last CART event")
        keep = rules.cart_update_keeps_event(
            ctx.settings.cart_event_window, window.event_id, window.closed, window.last_update, ctx.now
        )
        event = mapping.cart_event(
            cart,
            settings=ctx.settings,
            location=ctx.location(cart.get("channel_id")),
            owner=ctx.owner,
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
        with ctx.db.session() as session:
            session.execute(
                update(CartWindow)
                .where(CartWindow.id == window.id)
                .values(
                    event_id=event_id,
                    opened_at=window.opened_at if keep else ctx.now,
                    last_update=ctx.now,
                    content_hash=digest,
                    closed=False,
                    closed_reason="",
                    events_sent=CartWindow.events_sent + (0 if keep else 1),
                    lease_owner=None,
                    lease_until=None,
                )
            )
        if contact_sm_id and email:
            with ctx.db.session() as session:
                remember_contact(session, ctx.store.id, email, contact_id=contact_sm_id)
        return Result.done(f"CART event {'updated' if keep else 'created'} ({event_id})")
    finally:
        with ctx.db.session() as session:
            session.execute(
                update(CartWindow)
                .where(CartWindow.id == window.id, CartWindow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )


def handle_cart_closed(ctx: Context, delivery: WebhookDelivery) -> Result:
    reason = "converted" if delivery.scope.endswith("converted") else "deleted"
    with ctx.db.session() as session:
        closed = close_cart_windows(session, ctx.store.id, delivery.resource_id, reason)
    return Result.done(f"cart {reason}; {closed} CART window(s) closed")


def handle_store_changed(ctx: Context, delivery: WebhookDelivery) -> Result:
    """Channels, sites and store information feed locations and languages: refresh them."""
    info = ctx.bc.store_info()
    channels = ctx.bc.channels()
    sites = ctx.bc.sites()
    with ctx.db.session() as session:
        store = session.get(Store, ctx.store.id)
        if store is not None:
            store.info = info or store.info
            store.channels = channels
            store.sites = sites
            if delivery.scope == "store/channel/created" and delivery.resource_id:
                from smbc.monitoring.snippet import on_channel_created

                # A new storefront gets the monitoring code when the merchant chose "all storefronts".
                on_channel_created(session, store, int(delivery.resource_id))
    return Result.done("store details refreshed")


def handle_app_uninstalled(ctx: Context, delivery: WebhookDelivery) -> Result:
    return Result.skipped("uninstall is handled by the uninstall callback")


HANDLERS: dict[str, Callable[[Context, WebhookDelivery], Result]] = {
    "store/customer/created": handle_customer,
    "store/customer/updated": handle_customer,
    "store/customer/address/created": handle_customer,
    "store/customer/address/updated": handle_customer,
    "store/customer/address/deleted": handle_customer,
    "store/customer/deleted": handle_customer_deleted,
    "store/subscriber/created": handle_subscriber,
    "store/subscriber/updated": handle_subscriber,
    "store/subscriber/deleted": handle_subscriber_deleted,
    "store/order/created": handle_order,
    "store/order/updated": handle_order,
    "store/order/statusUpdated": handle_order,
    "store/order/refund/created": handle_refund,
    "store/cart/created": handle_cart,
    "store/cart/updated": handle_cart,
    "store/cart/converted": handle_cart_closed,
    "store/cart/deleted": handle_cart_closed,
    "store/channel/created": handle_store_changed,
    "store/channel/updated": handle_store_changed,
    "store/information/updated": handle_store_changed,
    "store/app/uninstalled": handle_app_uninstalled,
}


# -- queue, sweep, pause/resume --------------------------------------------------------------


@huey.task()
def process_delivery_task(delivery_id: int) -> None:
    process_delivery(delivery_id)


def enqueue_delivery(delivery_id: int) -> None:
    """Ask a worker to process the row now; if the queue is down, the sweep finds the row later."""
    try:
        process_delivery_task(delivery_id)
    except Exception:
        log.warning("could not enqueue delivery %s; the sweep will pick it up", delivery_id, exc_info=True)


def due_row_ids(
    session: Session,
    model: Any,
    now: datetime,
    limit: int,
    *,
    resumable_stores: Any,
    runnable_stores: Any = None,
) -> list[int]:
    """The outbox sweep shared by every table of queued work (deliveries, consent write-backs).

    Waiting rows of `resumable_stores` go back to pending (a pause lifted without resume_store()),
    rows held by a worker that died are freed, and pending rows that are due (or whose queue message
    was lost) are returned, oldest first; `runnable_stores` narrows those to stores allowed to run."""
    session.execute(
        update(model)
        .where(model.status == DeliveryStatus.WAITING.value, model.store_id.in_(resumable_stores))
        .values(status=DeliveryStatus.PENDING.value, next_attempt_at=now, reason="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(model)
        .where(model.status == DeliveryStatus.PROCESSING.value, model.locked_at < now - STALE_LOCK)
        .values(status=DeliveryStatus.PENDING.value, locked_at=None, next_attempt_at=now)
    )
    due = select(model.id).where(
        model.status == DeliveryStatus.PENDING.value,
        or_(
            model.next_attempt_at <= now,
            and_(model.next_attempt_at.is_(None), model.received_at <= now - NEVER_TRIED_GRACE),
        ),
    )
    if runnable_stores is not None:
        due = due.where(model.store_id.in_(runnable_stores))
    return list(session.scalars(due.order_by(model.id).limit(limit)).all())


def due_delivery_ids(db: Database, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Rows a worker should pick up now: retries that are due, and rows whose queue message was lost.
    Rows held by a worker that died are first put back to pending."""
    now = now or utcnow()
    with db.session() as session:
        unpaused = select(Store.id).where(Store.sync_paused_reason.is_(None), Store.status == "installed")
        running = select(Store.id).where(Store.sync_paused_reason.is_(None))
        return due_row_ids(
            session, WebhookDelivery, now, limit, resumable_stores=unpaused, runnable_stores=running
        )


def sweep_due(db: Database | None = None, now: datetime | None = None) -> int:
    from smbc.core.runtime import get_runtime

    ids = due_delivery_ids(db or get_runtime().db, now)
    for delivery_id in ids:
        enqueue_delivery(delivery_id)
    return len(ids)


@huey.periodic_task(crontab(minute="*"))
def sweep_due_task() -> None:
    sweep_due()


def resume_store(
    store_id: int, *, db: Database | None = None, reasons: Sequence[str] = RESUMABLE_PAUSES
) -> int:
    """Called after the merchant logs in again (or the store's token works again): lift a pause for
    one of `reasons` and re-queue what waited. Returns how many deliveries were re-queued."""
    from smbc.core.runtime import get_runtime

    db = db or get_runtime().db
    now = utcnow()
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            return 0
        if store.sync_paused_reason in reasons:
            store.sync_paused_reason = None
        if store.sync_paused_reason:
            return 0  # paused for another reason (logged out, uninstalled): not ours to lift
        ids = list(
            session.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.store_id == store_id,
                    WebhookDelivery.status == DeliveryStatus.WAITING.value,
                )
            ).all()
        )
        if ids:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(status=DeliveryStatus.PENDING.value, next_attempt_at=now, reason="")
            )
    for delivery_id in ids:
        enqueue_delivery(delivery_id)
    return len(ids)


def retry_delivery(delivery_id: int, *, db: Database | None = None) -> bool:
    """A failed or skipped delivery tried again (the Activity tab's Retry)."""
    from smbc.core.runtime import get_runtime

    db = db or get_runtime().db
    with db.session() as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status.in_([DeliveryStatus.FAILED.value, DeliveryStatus.SKIPPED.value]),
            )
            .values(status=DeliveryStatus.PENDING.value, next_attempt_at=utcnow(), reason="", last_error="")
        )
    if result.rowcount != 1:
        return False
    enqueue_delivery(delivery_id)
    return True


def drain(db: Database, ids: Iterable[int]) -> list[tuple[int, Result]]:
    """Process rows in this thread (CLI and tests): each id once, in order."""
    results: list[tuple[int, Result]] = []
    for delivery_id in ids:
        results.extend(process_delivery(delivery_id, db=db))
    return results
