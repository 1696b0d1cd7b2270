"""One run of one export (`Job`: the store, its settings, the clients and the saved cursor) and the
transactions that record its batches on the export row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.core.clock import utcnow
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.long_jobs import LongJobKind, beat, finish_row
from smbc.engine.queue import RetryPolicy
from smbc.export.ledger import mark_unconfirmed
from smbc.export.models import ACTIVE_STATUSES, Export, ExportKind, ExportStatus, ExportSubscriber
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.salesmanago.client import SalesmanagoClient
from smbc.settings.store_settings import StoreSettings

MESSAGES_KEPT = 10
# No double opt-in in an export: these shoppers already confirmed in the store, and a batch would
# send every one of them a confirmation e-mail (SALESmanago's own plugins export the same way).
SEND_DOUBLE_OPT_IN = False
# 5 s, 10 s, 20 s, ... up to 10 min between runs; an export failing for 24 h fails for good.
EXPORT_RETRY = RetryPolicy(
    base=timedelta(seconds=5), cap=timedelta(minutes=10), give_up_after=timedelta(hours=24)
)


@dataclass
class Job:
    """One run of one export: clients, settings and the row's counters (written at each commit)."""

    db: Database
    export_id: int
    token: str
    store: Store
    settings: StoreSettings
    kind: ExportKind
    from_utc: datetime
    to_utc: datetime
    tags: list[str]
    batch_size: int
    page_size: int
    bc: BigCommerceClient
    sm: SalesmanagoClient  # in-call retries (contacts are idempotent)
    sm_once: SalesmanagoClient  # one attempt (events: never sent twice by a retry)
    calls: CallBuffer
    cursor: dict[str, Any]
    batches: int = 0
    on_batch: Callable[[Export], None] | None = None
    double_opt_in: bool = SEND_DOUBLE_OPT_IN
    # The refunds of orders not exported yet, by order id (listed once: order_reads.refunds_of).
    refunds: dict[int, list[dict[str, Any]]] | None = None
    # What each channel's events carry (its e-store ID), worked out once a run (events._plan_order).
    origins: dict[int, mapping.EventOrigin] = field(default_factory=dict)
    # The new buyers' synchronous upserts, a few at once (events.event_batches runs it).
    upserts: ThreadPoolExecutor | None = None

    @property
    def owner(self) -> str:
        return self.settings.contact_owner

    @property
    def claim_prefix(self) -> str:
        return f"export:{self.export_id}:"

    def lang(self) -> str | None:
        return self._language

    @cached_property
    def _language(self) -> str | None:  # the store's information is read once a run: it stays
        return rules.store_language(self.store.info)


@dataclass
class BatchResult:
    """What one batch adds to the row."""

    done: int = 0
    sent: int = 0
    unconfirmed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)


def locked_row(session: Session, job: Job) -> Export:
    return EXPORTS_JOBS.locked(session, job.export_id, job.token)


def _add_counts(row: Export, result: BatchResult) -> None:
    row.done += result.done
    row.sent += result.sent
    row.unconfirmed += result.unconfirmed
    if result.skipped:
        row.skipped = dict(Counter(row.skipped or {}) + result.skipped)
    if result.failed:
        row.failed = dict(Counter(row.failed or {}) + result.failed)
    if result.messages:
        row.messages = [*(row.messages or []), *result.messages][-MESSAGES_KEPT:]


def finish_export(
    session: Session, row: Export, status: ExportStatus, now: datetime, error: str = ""
) -> None:
    finish_row(row, status.value, now, error)
    if status is ExportStatus.DONE and row.total is not None:
        row.total = row.done  # the count BigCommerce gave was an estimate; this is what there was
    if error:
        row.messages = [*(row.messages or []), error][-MESSAGES_KEPT:]
    cursor = dict(row.cursor or {})
    inflight = cursor.pop("inflight", None)
    if inflight:  # never resolved by a run: the same rule as resolve_inflight (not sent again)
        mark_unconfirmed(session, row.store_id, f"export:{row.id}:{inflight['batch']}", now)
    row.cursor = cursor
    session.execute(delete(ExportSubscriber).where(ExportSubscriber.export_id == row.id))


EXPORTS_JOBS = LongJobKind(
    Export,
    "export",
    [s.value for s in ACTIVE_STATUSES],
    EXPORT_RETRY,
    fail=lambda session, row, message: finish_export(session, row, ExportStatus.FAILED, utcnow(), message),
    salesmanago_credentials="the credentials",
    start_again="export again",
)


def commit_batch(job: Job, result: BatchResult, *, extra: Callable[[Session], None] | None = None) -> Export:
    """Record a batch: counts, cursor, heartbeat, remote calls (and `extra` ledger work), together.

    Tried again when another worker inserted the same contact-ledger row at the same moment (real
    time, or the other kind of export): the second try finds the row and updates it."""
    for attempt in range(3):
        recorded: list[dict[str, Any]] = []
        try:
            with job.db.session() as session:
                row = locked_row(session, job)
                recorded = job.calls.flush(session)
                if extra is not None:
                    extra(session)
                _add_counts(row, result)
                row.cursor = dict(job.cursor)
                row.batches = job.batches
                beat(row)
                session.flush()
                session.expunge(row)
            break
        except Exception as exc:
            job.calls.put_back(recorded)  # rolled back with the batch: the next try or on_error writes them
            if not isinstance(exc, IntegrityError) or attempt == 2:
                raise
    if job.on_batch is not None:
        job.on_batch(row)
    return row


def in_range(job: Job, value: str | None) -> bool:
    when = mapping.parse_bc_date(value)
    if when is None:
        return True  # no date to check: BigCommerce's own filter decided
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return job.from_utc <= when <= job.to_utc


def reason_category(problem: str) -> str:
    """A per-record reason as a category to count ("ignored e-mail domain x.com" -> without x.com)."""
    for prefix in ("ignored e-mail domain", "invalid e-mail address"):
        if problem.startswith(prefix):
            return prefix
    return problem


UNCONFIRMED_HINT = "If SALESmanago does not show them, use “Send unconfirmed again” on this export."


def resolve_inflight(job: Job) -> None:
    """A batch left in flight by a dead worker: SALESmanago may have it. It is not sent again."""
    inflight = job.cursor.get("inflight")
    if not inflight:
        return
    owner = f"{job.claim_prefix}{inflight['batch']}"
    now = utcnow()

    def mark(session: Session) -> None:
        mark_unconfirmed(session, job.store.id, owner, now)

    job.cursor.pop("inflight")
    job.cursor["after_id"] = inflight["after_id"]
    count = int(inflight.get("events", 0))
    message = (
        f"Batch {inflight['batch']}: the worker stopped while SALESmanago was receiving {count} events; "
        "they were not sent again, so nothing is duplicated (SALESmanago most likely has them). "
        + UNCONFIRMED_HINT
    )
    result = BatchResult(
        done=int(inflight.get("orders", 0)), sent=count, unconfirmed=count, messages=[message]
    )
    result.skipped.update(inflight.get("skipped") or {})
    commit_batch(job, result, extra=mark)
