"""Bounded storage: processed deliveries (with their payloads) and call records older than
`SMBC_RETENTION_DAYS` are deleted in small batches by a periodic task.

Only history goes: a delivery still pending, being processed or waiting for a paused store is never
pruned, whatever its age. The ledgers (sent events, synced contacts, exports, consent write-backs)
are what keeps every send once-only, so they are kept; so is the consent history, the merchant's
evidence of each opt-in and opt-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from huey import crontab
from sqlalchemy import ColumnElement, and_, delete, or_, select

from smbc.core.clock import get_clock, utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import get_runtime
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.realtime.models import WebhookDelivery

log = logging.getLogger(__name__)

# Rows per transaction: short transactions keep the pruning out of the workers' way.
PRUNE_BATCH = 500
# Time per run and table (about a million rows at the measured 6,000-9,000 a second); what is left
# waits for the next run, an hour later.
TIME_BUDGET_S = 150.0
# Statuses after which nothing more happens to a delivery (pending, processing, waiting are kept).
FINISHED = (RowStatus.DONE.value, RowStatus.SKIPPED.value, RowStatus.FAILED.value)


@dataclass(frozen=True)
class PruneReport:
    cutoff: datetime
    deliveries: int
    calls: int
    complete: bool  # False: the time budget ran out, the next run goes on

    def summary(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "deliveries_deleted": self.deliveries,
            "calls_deleted": self.calls,
            "complete": self.complete,
        }


def prunable_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    """Finished deliveries received and processed before `cutoff` (`received_at` is indexed)."""
    return and_(
        WebhookDelivery.status.in_(FINISHED),
        WebhookDelivery.received_at < cutoff,
        or_(WebhookDelivery.processed_at.is_(None), WebhookDelivery.processed_at < cutoff),
    )


def _delete_in_batches(
    db: Database, model: type, condition: ColumnElement[bool], batch: int, budget_s: float
) -> tuple[int, bool]:
    """Delete the rows matching `condition`, `batch` ids per transaction, for at most `budget_s`
    seconds. (deleted, all gone)."""
    ident = model.id  # type: ignore[attr-defined]
    deleted = 0
    deadline = get_clock().monotonic() + budget_s
    while get_clock().monotonic() < deadline:
        with db.session() as session:
            ids = list(session.scalars(select(ident).where(condition).order_by(ident).limit(batch)))
            if ids:
                # The condition again: a row that changed since it was read is left alone.
                session.execute(delete(model).where(ident.in_(ids), condition))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted, True
    return deleted, False


def prune_history(
    db: Database,
    *,
    retention_days: int,
    now: datetime | None = None,
    batch: int = PRUNE_BATCH,
    budget_s: float = TIME_BUDGET_S,
) -> PruneReport:
    """Delete finished deliveries and call records older than `retention_days`."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    deliveries, deliveries_done = _delete_in_batches(
        db, WebhookDelivery, prunable_deliveries(cutoff), batch, budget_s
    )
    calls, calls_done = _delete_in_batches(db, RemoteCall, RemoteCall.created_at < cutoff, batch, budget_s)
    return PruneReport(cutoff, deliveries, calls, deliveries_done and calls_done)


@huey.periodic_task(crontab(minute="23"))
def prune_history_task() -> None:
    runtime = get_runtime()
    report = prune_history(runtime.db, retention_days=runtime.settings.retention_days)
    if report.deliveries or report.calls:
        log.info("retention: %s", report.summary())
