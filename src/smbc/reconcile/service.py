"""Reconciliation: webhooks get lost and BigCommerce has no replay, so every store is read for
changes since its watermark (customers, subscribers, orders, refunds) and each change goes through
the same processing as a webhook, as a synthetic inbox row. The ledgers make anything already sent a
no-op. It also checks `/v3/hooks` and repairs missing or deactivated hooks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import event_sent
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import EventKind
from smbc.realtime.inbox import record_synthetic
from smbc.realtime.processing import drain, enqueue_drains, load_settings_for
from smbc.reconcile.models import ReconcileState
from smbc.stores.hooks import register_webhooks

log = logging.getLogger(__name__)

RECONCILE_EVERY = timedelta(minutes=15)
# Read a little before the watermark: BigCommerce's clock and ours differ, and writes settle late.
OVERLAP = timedelta(minutes=5)
# First run after install: look back this far (installation itself may have raced with changes).
FIRST_LOOKBACK = timedelta(hours=1)


@dataclass
class ReconcileReport:
    store: str
    since: str = ""
    customers: int = 0
    subscribers: int = 0
    orders: int = 0
    refunds: int = 0
    deliveries: list[int] = field(default_factory=list)
    hooks_created: list[str] = field(default_factory=list)
    hooks_repaired: list[str] = field(default_factory=list)
    error: str = ""

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["deliveries"] = len(self.deliveries)
        return data


def _ts(value: str | None, default: datetime) -> int:
    parsed = mapping.parse_bc_date(value)
    return int((parsed or default).timestamp())


def _v3_date(value: datetime) -> str:
    """Customers/subscribers v3 date filters take `2024-05-14T09:34:00` (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _state(session: Session, store_id: int) -> ReconcileState:
    state = session.scalars(select(ReconcileState).where(ReconcileState.store_id == store_id)).first()
    if state is None:
        state = ReconcileState(store_id=store_id)
        session.add(state)
        session.flush()
    return state


def collect_changes(
    db: Database, store: Store, bc: BigCommerceClient, since: datetime, report: ReconcileReport
) -> None:
    """Turn every change since `since` into a synthetic inbox row (deduplicated like webhooks)."""
    now = utcnow()
    with db.session() as session:
        settings = load_settings_for(session, store.id)

    def add(scope: str, data: dict[str, Any], created_at: int) -> None:
        delivery_id = record_synthetic(db, store.id, scope, data, created_at=created_at, source="reconcile")
        if delivery_id is not None:
            report.deliveries.append(delivery_id)

    customer_filters = {"date_modified:min": _v3_date(since), "sort": "date_modified:asc"}
    for customer in bc.customers(**customer_filters).items():
        report.customers += 1
        created = mapping.parse_bc_date(customer.get("date_created"))
        # A customer created since the last run whose `created` webhook was lost still gets the
        # registration tags; an older one is an update.
        scope = "store/customer/created" if created and created >= since else "store/customer/updated"
        add(scope, {"type": "customer", "id": int(customer["id"])}, _ts(customer.get("date_modified"), now))

    for subscriber in bc.subscribers(**{"date_modified:min": _v3_date(since)}).items():
        report.subscribers += 1
        add(
            "store/subscriber/updated",
            {"type": "subscriber", "id": int(subscriber["id"])},
            _ts(subscriber.get("date_modified"), now),
        )

    refunded: list[int] = []
    for order in bc.orders(min_date_modified=format_datetime(since)).items():
        report.orders += 1
        order_id = int(order["id"])
        if float(order.get("refunded_amount") or 0) > 0:
            refunded.append(order_id)
        kind = rules.order_event_kind(int(order.get("status_id") or 0), settings.purchase_statuses)
        if kind is None:
            continue
        with db.session() as session:
            if event_sent(session, store.id, kind, str(order_id)):
                continue  # already sent: nothing for the worker to do
            if kind is EventKind.CANCELLATION and not event_sent(
                session, store.id, EventKind.PURCHASE, str(order_id)
            ):
                continue
        add("store/order/updated", {"type": "order", "id": order_id}, _ts(order.get("date_modified"), now))

    if refunded:
        for refund in bc.refunds(order_ids=refunded):
            report.refunds += 1
            with db.session() as session:
                if event_sent(session, store.id, EventKind.RETURN, str(refund.get("id"))):
                    continue
            data = {
                "type": "order",
                "id": int(refund["order_id"]),
                "refund": {"refund_id": int(refund["id"])},
            }
            add("store/order/refund/created", data, _ts(refund.get("created"), now))


def reconcile_store(
    store_id: int, *, db: Database | None = None, process_inline: bool = False
) -> ReconcileReport:
    """Read what changed since the watermark, queue it, repair hooks, move the watermark."""
    runtime = get_runtime()
    db = db or runtime.db
    started = utcnow()
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise ValueError(f"no store with id {store_id}")
        state = _state(session, store_id)
        watermark = state.watermark or (store.installed_at - FIRST_LOOKBACK)
        session.expunge(store)
    report = ReconcileReport(store=store.hash)
    if not store.installed:
        report.error = "store is not installed"
        return report
    since = watermark - OVERLAP
    report.since = since.isoformat()
    calls = CallBuffer(context="reconcile")
    bc = bc_for_store(store, recorder=calls, context="reconcile")
    try:
        collect_changes(db, store, bc, since, report)
        hooks = register_webhooks(db, store_id, bc)
        if hooks is not None:
            report.hooks_created = hooks.created
            report.hooks_repaired = hooks.reenabled + hooks.updated
    except RemoteCallError as exc:
        report.error = exc.message
    with db.session() as session:
        calls.flush(session)
        state = _state(session, store_id)
        state.last_run_at = started
        state.last_result = report.summary()
        state.last_error = report.error
        if not report.error:
            state.watermark = started  # only moves when everything since the last one was read
    if process_inline:
        drain(db, report.deliveries)
    elif report.deliveries:
        enqueue_drains([store_id])
    return report


def stores_due(db: Database, now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    with db.session() as session:
        rows = session.execute(
            select(Store.id, ReconcileState.last_run_at)
            .outerjoin(ReconcileState, ReconcileState.store_id == Store.id)
            .where(
                Store.status == "installed",
                Store.sync_paused_reason.is_(None),
                Store.access_token.is_not(None),
            )
        ).all()
    return [store_id for store_id, last in rows if last is None or now - last >= RECONCILE_EVERY]


@huey.task()
def reconcile_store_task(store_id: int) -> None:
    try:
        reconcile_store(store_id)
    except Exception:
        log.exception("reconciliation of store %s failed", store_id)


@huey.periodic_task(crontab(minute="*"))
def reconcile_due_task() -> None:
    for store_id in stores_due(get_runtime().db):
        reconcile_store_task(store_id)
