"""Real-time processing: each inbox row reads the current state from BigCommerce and sends what
changed to SALESmanago, exactly once per rule, whatever the number of deliveries or workers.

Work arrives as a drain of a store (`drain_store`): the receiver, the sweep and every retry ask for
one per store, never one per delivery. A drain claims the store's oldest due rows of every scope
(one UPDATE), reads those of a coalescing group together with one `id:in` call, and if more rows
are due it queues the store again at the back, so a store's flood takes turns with other stores.
Per row (database transactions are short; no lock is held during a network call): read BigCommerce
-> claim the ledger row (insert first: the unique key decides who sends) -> send to SALESmanago ->
record the result, the ledger and every attempt in one transaction.

The inbox is one of the engine's queues (`smbc.engine.queue`): claim, finish, retry schedule,
outcome table and sweep are the engine's. Outcomes: retryable -> `pending` again with
`next_attempt_at` (exponential backoff with jitter, up to 24 h, then `failed`); invalid -> `failed`
with SALESmanago's message; credentials -> the store's sync is paused and its deliveries `waiting`
until `engine.pausing.resume_store` (called at the next login, or when the token works again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, update
from sqlalchemy.orm import Session

from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.core.clock import utcnow
from smbc.core.job_batches import enqueue_each
from smbc.core.jobs import huey
from smbc.core.metrics import record_delivery_processed
from smbc.core.remote_calls import CallPostponed, Outcome, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database, StatementRunner
from smbc.engine import queue
from smbc.engine.context import Context, Result, RowStatus, SalesmanagoPort
from smbc.engine.pausing import pause_reason_for, pause_store
from smbc.mapping.records import channel_location
from smbc.realtime.batch_coalescing import (
    COALESCE_GROUPS,
    GROUP_OF,
    coalesce_same_resource,
    skip_closed_carts,
)
from smbc.realtime.clients import MAX_QUOTA_WAIT_S, REAL_CLIENTS, Clients
from smbc.realtime.drain_marks import (
    DRAINS_BEFORE_LAST_LOOK,
    QUEUED_DRAINS,
    clear_drain_mark,
    forget_drain_arrivals,
    take_drain_mark,
)
from smbc.realtime.handlers import Delivery
from smbc.realtime.handlers.carts import handle_cart, handle_cart_closed
from smbc.realtime.handlers.customers import handle_customer, handle_customer_deleted
from smbc.realtime.handlers.orders import handle_order, handle_refund
from smbc.realtime.handlers.products import handle_product, handle_product_deleted
from smbc.realtime.handlers.store import handle_app_uninstalled, handle_store_changed
from smbc.realtime.handlers.subscribers import handle_subscriber, handle_subscriber_deleted
from smbc.realtime.models import WebhookDelivery
from smbc.realtime.store_snapshots import Fingerprint, known_store_hash, snapshot_for, store_fingerprint
from smbc.settings.store_settings import StoreSettings, load_store_settings

log = logging.getLogger(__name__)

COALESCE_LIMIT = 50
# Rows one drain of a store claims and handles, one after another, before the store goes to the
# back of the queue. Small: a store's backlog is split over several drains that free workers run at
# once (as far as the store's limiter lets them), and another store waits for one short batch at most.
# Not smaller: a batch's claim, store check, coalesced reads and finish are paid per batch (at 10, a
# burst's worker spent about a sixth more CPU a delivery on PostgreSQL).
DRAIN_LIMIT = 20

_DELIVERIES = queue.queue_table(WebhookDelivery)


def load_settings_for(session: Session, store_id: int) -> StoreSettings:
    return load_store_settings(session, store_id)


# -- claiming --------------------------------------------------------------------------------


def _claim_due(
    runner: StatementRunner, now: datetime, limit: int, *where: ColumnElement[bool]
) -> list[Row[Any]]:
    """Claim up to `limit` due rows matching `where`, oldest first, with one UPDATE (Core rows, as a
    drain's claim returns them); on PostgreSQL rows another worker is claiming are skipped (SKIP
    LOCKED), not waited for: that worker takes them."""
    due_ids = (
        select(WebhookDelivery.id)
        .where(*where, queue.due(WebhookDelivery, now))
        .order_by(WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # nothing on SQLite, which has one writer anyway
        # A CTE runs once: PostgreSQL may rescan an `IN (subquery)` and claim past the limit.
        .cte("claimable")
    )
    claimed = runner.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id.in_(select(due_ids.c.id)), queue.due(WebhookDelivery, now))
        .values(**queue.claimed_values(WebhookDelivery, now))
        .returning(*_DELIVERIES.c)
    ).all()
    if claimed:
        queue.hold_claimed(runner, WebhookDelivery, [d.id for d in claimed], now)
    return sorted(claimed, key=lambda d: d.id)  # RETURNING has no order: per-contact order is id order


def claim_store_batch(
    db: Database, store_id: int, now: datetime, limit: int = DRAIN_LIMIT
) -> tuple[list[Delivery], Fingerprint | None]:
    """Claim the store's oldest due rows of every scope (a drain's batch), and read the store's
    fingerprint when any were claimed, in one transaction."""
    with db.connection() as connection:
        batch: list[Delivery] = list(
            queue.claim_store_rows(connection, WebhookDelivery, store_id, now, limit)
        )
        return batch, store_fingerprint(connection, store_id) if batch else None


def claim_batch(db: Database, delivery_id: int, now: datetime) -> list[Delivery]:
    """Claim the row, plus due rows of the same store and coalescing group (one read for all): the
    path of one row in hand (the CLI, tests)."""
    with db.connection() as connection:
        claimed = _claim_due(connection, now, 1, WebhookDelivery.id == delivery_id)
        group = GROUP_OF.get(claimed[0].scope) if claimed else None
        if group is not None:
            first = claimed[0]
            claimed += _claim_due(
                connection,
                now,
                COALESCE_LIMIT - 1,
                WebhookDelivery.store_id == first.store_id,
                WebhookDelivery.scope.in_(COALESCE_GROUPS[group]),
                WebhookDelivery.id != first.id,
            )
    return list(claimed)


# -- the entry points ------------------------------------------------------------------------


def process_delivery(
    delivery_id: int, *, db: Database | None = None, clients: Clients = REAL_CLIENTS
) -> list[tuple[int, Result]]:
    """Work on one inbox row (and the siblings it coalesces with). Returns what happened to each."""
    db = db or get_runtime().db
    now = utcnow()
    with db.pinned():
        return _process_batch(db, claim_batch(db, delivery_id, now), clients, now)


def drain_store(
    store_id: int, *, db: Database | None = None, clients: Clients = REAL_CLIENTS, limit: int = DRAIN_LIMIT
) -> list[tuple[int, Result]]:
    """Work on the store's oldest due rows, up to `limit`; if that many were due, first ask for another
    drain of the store at the back of the queue (stores take turns; a free worker may take the next
    batch meanwhile). While the store's quota is used up, nothing is claimed: one drain is asked for
    at the window's reset. During a batch the store's mark stays set (rows recorded meanwhile send no
    message: they note an arrival on it) and this process's other drains of the store return at once;
    after a batch under `limit` the drain clears the mark and, only if a row arrived or a drain
    returned meanwhile, claims once more: one batch for what arrived, and no claim when nothing did."""
    store_hash = known_store_hash(store_id)
    wait = clients.quota_wait(store_hash) if store_hash is not None else 0.0
    if wait > MAX_QUOTA_WAIT_S:
        clear_drain_mark(store_id)
        postpone_drain(store_id, wait)  # nothing claimed: the rows stay due for the drain at the reset
        return []
    if not DRAINS_BEFORE_LAST_LOOK.enter(store_id):
        return []  # a drain of the store in this process claims this one's rows with its last look
    db = db or get_runtime().db
    finished: list[tuple[int, Result]] = []
    counted = True
    try:
        with db.pinned():  # the batches' short transactions on one pooled connection
            forget_drain_arrivals(store_id)  # what arrived until now is in the claim below
            for last_look in (False, True):
                if last_look:  # from here a row recorded is claimed by the look below or gets a drain
                    skipped = DRAINS_BEFORE_LAST_LOOK.leave(store_id)
                    counted = False
                    if not (take_drain_mark(store_id) or skipped):
                        break  # every row recorded since the claim sent its message
                now = utcnow()
                batch, fingerprint = claim_store_batch(db, store_id, now, limit)
                if len(batch) == limit:  # the drain asked for takes the next batch and looks again
                    if counted:
                        DRAINS_BEFORE_LAST_LOOK.leave(store_id)
                        counted = False
                    enqueue_drains([store_id], even_if_queued=True)
                finished += _process_batch(db, batch, clients, now, fingerprint)
                if len(batch) == limit:
                    break
    except BaseException:
        if counted:  # drains skipped for this one's last look: one drain, a second on, looks instead
            DRAINS_BEFORE_LAST_LOOK.leave(store_id)
            enqueue_drain_later(store_id, 1.0)
        raise
    return finished


def _process_batch(
    db: Database,
    batch: list[Delivery],
    clients: Clients,
    now: datetime,
    fingerprint: Fingerprint | None = None,
) -> list[tuple[int, Result]]:
    """Handle claimed rows of one store, coalescing reads, and record what became of each. If their
    outcomes cannot be written (the database failed), their leases are not renewed: they lapse and
    `queue.reclaim_expired` retries them, not `queue.STALE_LOCK` (minutes) after the database is back."""
    try:
        return _handle_batch(db, batch, clients, now, fingerprint)
    except BaseException:
        queue.LEASES.release(queue.queued_lease(WebhookDelivery), [d.id for d in batch])
        raise


def _handle_batch(
    db: Database, batch: list[Delivery], clients: Clients, now: datetime, fingerprint: Fingerprint | None
) -> list[tuple[int, Result]]:
    if not batch:
        return []
    calls = CallBuffer(context=f"delivery:{batch[0].id}")
    prepared = _prepare(db, batch[0].store_id, clients, calls, fingerprint)
    if isinstance(prepared, Result):
        return _finish(db, batch, {d.id: prepared for d in batch}, calls, now)
    if isinstance(prepared, _NotPrepared):
        failure = queue.result_for(prepared.error)
        return _finish(
            db, batch, {d.id: failure for d in batch}, calls, now, store=prepared.store, error=prepared.error
        )
    store, settings, bc, sm = prepared
    results: dict[int, Result] = {}
    sites = store.sites or []
    ctx = Context(
        db,
        store,
        settings,
        bc,
        sm,
        calls,
        now,
        locate=lambda channel: channel_location(settings, sites, channel),
    )
    primary = skip_closed_carts(coalesce_same_resource(batch, results), results)
    try:
        _prefetch(ctx, primary)
    except RemoteCallError as exc:
        failure = queue.result_for(exc)
        return _finish(db, batch, {d.id: failure for d in batch}, calls, now, store=store, error=exc)
    last_error: RemoteCallError | None = None
    rest = Result.waiting(queue.PAUSED_FOR_CREDENTIALS)
    for delivery in primary:
        calls.attribute_to = f"delivery:{delivery.id}"  # a drain's batch mixes orders, carts, customers
        try:
            results[delivery.id] = handle(ctx, delivery)
        except CallPostponed as exc:
            # The store's quota is used up: the rest of the batch is given back untried with it, and
            # the thread goes to other stores' work until the quota's window resets.
            rest = results[delivery.id] = queue.result_for(exc)
            break
        except RemoteCallError as exc:
            results[delivery.id] = queue.result_for(exc)
            last_error = exc if exc.outcome is Outcome.CREDENTIALS else last_error
            if exc.outcome is Outcome.CREDENTIALS:
                break  # the store is about to be paused: the rest waits too
        except Exception as exc:  # a bug must not lose the delivery: retry later, keep the error
            log.exception("delivery %s failed", delivery.id)
            results[delivery.id] = queue.result_for_unexpected(exc)
    calls.attribute_to = None
    for delivery in batch:
        results.setdefault(delivery.id, rest)
    return _finish(db, batch, results, calls, now, store=store, error=last_error)


@dataclass
class _NotPrepared:
    """The clients could not be built for a reason the outcome table knows (e.g. not connected)."""

    store: Store
    error: RemoteCallError


def _prepare(
    db: Database, store_id: int, clients: Clients, calls: CallBuffer, fingerprint: Fingerprint | None = None
) -> tuple[Store, StoreSettings, BigCommerceClient, SalesmanagoPort] | Result | _NotPrepared:
    """The store (a detached snapshot), its settings and both clients: no statement when the store's
    rows, as `fingerprint` read them in the claim's transaction, are unchanged since the last batch
    (`store_snapshots`), else a short transaction. A `Result` when the batch cannot run at all."""
    snapshot = snapshot_for(db, store_id, fingerprint)
    if snapshot is None or not snapshot.store.installed:
        return Result.skipped("store uninstalled")
    store = snapshot.store
    if store.sync_paused_reason:
        return Result.waiting(f"sync paused: {store.sync_paused_reason}")
    try:
        bc = clients.bigcommerce(store, calls)
        sm = clients.salesmanago(snapshot.credentials, store, calls)
    except RemoteCallError as exc:
        return _NotPrepared(store, exc)
    except Exception as exc:  # e.g. the SALESmanago client cannot be built: keep the rows, retry
        log.exception("could not prepare clients for store %s", store.hash)
        return queue.result_for_unexpected(exc)
    return store, snapshot.settings, bc, sm


def _prefetch(ctx: Context, batch: Sequence[Delivery]) -> None:
    ids: dict[str, set[int]] = {}
    for delivery in batch:
        group = GROUP_OF.get(delivery.scope)
        if group and delivery.resource_id.isdigit():
            ids.setdefault(group, set()).add(int(delivery.resource_id))
    if ids.get("customer"):
        ctx.prefetched["customer"] = ctx.bc.customers_by_id(sorted(ids["customer"]))
    if ids.get("subscriber"):
        ctx.prefetched["subscriber"] = ctx.bc.subscribers_by_id(sorted(ids["subscriber"]))
    if ids.get("product") and getattr(ctx.settings, "catalogs", None):
        ctx.prefetched["product"] = bc_catalog.products_by_id(ctx.bc, sorted(ids["product"]))


def _finish(
    db: Database,
    batch: Sequence[Delivery],
    results: dict[int, Result],
    calls: CallBuffer | None,
    now: datetime,
    *,
    store: Store | None = None,
    error: RemoteCallError | None = None,
) -> list[tuple[int, Result]]:
    """Record every outcome, the attempts, and a pause, in one transaction; rows left to retry get a
    delayed drain of their store at the earliest retry time."""
    retry_at: datetime | None = None
    pausing = store is not None and error is not None and error.outcome is Outcome.CREDENTIALS
    # Core statements on a bare connection; a Session only when the store is paused (rare).
    unit: AbstractContextManager[StatementRunner] = db.session() if pausing else db.connection()
    with unit as runner:
        if calls is not None:
            calls.flush(runner)
        if pausing:
            assert isinstance(runner, Session) and store is not None and error is not None
            reason = pause_reason_for(error)
            pause_store(runner, store.id, reason)
            for result in results.values():
                if result.status is RowStatus.WAITING:
                    result.reason = f"sync paused: {reason}"
        written = queue.finish_batch(runner, WebhookDelivery, [(d, results[d.id]) for d in batch], now)
        retried = [
            d.id for d, result in zip(batch, written, strict=True) if result.status is RowStatus.PENDING
        ]
        if retried:
            retry_at = runner.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.id.in_(retried))
            )
    out = [(delivery.id, result) for delivery, result in zip(batch, written, strict=True)]
    for delivery, result in zip(batch, written, strict=True):
        record_delivery_processed(delivery.scope, result.status.value, delivery.received_at, utcnow())
    if retry_at is not None:
        # One message for the earliest retry (a busy cart's is half a second away); rows due later
        # are claimed by whichever drain of the store runs after their time, or by the minute's sweep.
        enqueue_drain_later(batch[0].store_id, max((retry_at - now).total_seconds(), 0.0))
    return out


# -- handlers --------------------------------------------------------------------------------


def handle(ctx: Context, delivery: Delivery) -> Result:
    scope = delivery.scope
    handler = HANDLERS.get(scope)
    if handler is None:
        return Result.skipped(f"scope {scope} is not synced")
    return handler(ctx, delivery)


HANDLERS: dict[str, Callable[[Context, Delivery], Result]] = {
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
    "store/product/created": handle_product,
    "store/product/updated": handle_product,
    "store/product/inventory/updated": handle_product,
    "store/product/inventory/order/updated": handle_product,
    "store/sku/inventory/updated": handle_product,
    "store/sku/inventory/order/updated": handle_product,
    "store/product/deleted": handle_product_deleted,
}


# -- queue, sweep, pause/resume --------------------------------------------------------------


@huey.task()
def drain_store_task(store_id: int) -> None:
    drain_store(store_id)


@huey.task()
def process_delivery_task(delivery_id: int) -> None:
    process_delivery(delivery_id)


def enqueue_drains(store_ids: Iterable[int], *, even_if_queued: bool = False) -> None:
    """Ask for a drain of each store (once per store, and not while one is queued and has not started
    unless `even_if_queued`), in one write; if the queue is down, the sweep finds the rows later (so
    this never raises)."""
    stores = list(dict.fromkeys(store_ids))
    try:
        wanted = stores if even_if_queued else QUEUED_DRAINS.claim(stores)
    except Exception:  # the marks are in the queue's Redis: if it is down, so is the queue
        log.warning(
            "could not enqueue drains of %d stores; the sweep will pick them up", len(stores), exc_info=True
        )
        return
    try:
        enqueue_each(drain_store_task, wanted)
    except Exception:
        log.warning(
            "could not enqueue drains of %d stores; the sweep will pick them up", len(wanted), exc_info=True
        )
        try:
            QUEUED_DRAINS.clear(wanted)  # nothing queued: the next delivery tries again
        except Exception:
            log.debug("could not clear the drain marks", exc_info=True)


def postpone_drain(store_id: int, delay: float) -> None:
    """One drain of the store in `delay` seconds (its quota's reset), marked as queued so that new
    deliveries meanwhile do not ask for drains that would only postpone themselves again."""
    try:
        wanted = QUEUED_DRAINS.claim([store_id])
    except Exception:  # the queue's Redis is down: so is the queue; the sweep finds the rows
        log.warning("could not mark the postponed drain of store %s", store_id, exc_info=True)
        return
    if wanted:
        enqueue_drain_later(store_id, delay)


def enqueue_drain_later(store_id: int, delay: float) -> None:
    """A drain of the store in `delay` seconds (a retry's time; never a sleep). Not marked: a drain
    that waits for its time must not hold back the drains of new deliveries."""
    queue.enqueue_or_leave(drain_store_task, store_id, what="drain of store", delay=max(delay, 0.001))


def enqueue_delivery(delivery_id: int) -> None:
    """Ask a worker to process this one row (and its coalescing siblings) now; if the queue is down,
    the sweep finds the row later. Deliveries that arrive go through `enqueue_drains` instead."""
    queue.enqueue_or_leave(process_delivery_task, delivery_id, what="delivery")


def enqueue_due_deliveries(db: Database, delivery_ids: Sequence[int]) -> None:
    """The sweep's enqueue: one drain per store that has any of the rows, whatever the marks say (the
    safety net does not trust a mark whose message may be lost)."""
    if not delivery_ids:
        return
    with db.session() as session:
        stores = session.scalars(
            select(WebhookDelivery.store_id).where(WebhookDelivery.id.in_(delivery_ids)).distinct()
        ).all()
    enqueue_drains(sorted(stores), even_if_queued=True)


def due_delivery_ids(db: Database, now: datetime | None = None, limit: int = queue.SWEEP_LIMIT) -> list[int]:
    """Rows a worker should pick up now: retries that are due, and rows whose queue message was lost.
    Rows held by a worker that died are first put back to pending."""
    now = now or utcnow()
    with db.session() as session:
        unpaused = select(Store.id).where(Store.sync_paused_reason.is_(None), Store.status == "installed")
        running = select(Store.id).where(Store.sync_paused_reason.is_(None))
        return queue.due_row_ids(
            session, WebhookDelivery, now, limit, resumable_stores=unpaused, runnable_stores=running
        )


DELIVERIES = queue.register_queue(
    queue.QueueKind(
        "webhook_deliveries",
        due_delivery_ids,
        enqueue_delivery,
        wake=queue.waking(WebhookDelivery),
        enqueue_all=enqueue_due_deliveries,
    )
)


def sweep_due(db: Database | None = None, now: datetime | None = None) -> int:
    """Enqueue a drain of every store with a delivery that is due (the periodic
    `engine.queue.sweep_queues_task` does this). Returns how many rows were due."""
    return queue.sweep(DELIVERIES, db, now)


def retry_delivery(delivery_id: int, *, db: Database | None = None) -> bool:
    """A failed or skipped delivery tried again (the Activity tab's Retry)."""
    db = db or get_runtime().db
    with db.session() as session:
        store_id = session.scalar(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status.in_([RowStatus.FAILED.value, RowStatus.SKIPPED.value]),
            )
            # A fresh count: the bound on unexpected errors (engine.queue) starts again.
            .values(
                status=RowStatus.PENDING.value, next_attempt_at=utcnow(), reason="", last_error="", attempts=0
            )
            .returning(WebhookDelivery.store_id)
        )
    if store_id is None:
        return False
    enqueue_drains([store_id])
    return True


def drain(db: Database, ids: Iterable[int], clients: Clients = REAL_CLIENTS) -> list[tuple[int, Result]]:
    """Process rows in this thread (CLI and tests): each id once, in order."""
    return [result for row_id in ids for result in process_delivery(row_id, db=db, clients=clients)]
