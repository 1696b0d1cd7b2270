"""Running an export: a worker takes the row's lease, runs batch after batch and saves the cursor
after every batch, in the transaction that records the batch's result, so a crash resumes where it
stopped. Pages are streamed (one page and one batch in memory at a time). A run ends when the export
is done or cancelled, must wait for a retry, or its time slice is used up (then it is queued again).

An export is one of the engine's long jobs (`engine.long_jobs`): a lease with a heartbeat, time
slices, the engine's retry schedule, outcome -> action and sweep."""

from __future__ import annotations

from collections.abc import Callable

from smbc.account.credentials import salesmanago_client
from smbc.bigcommerce.client import CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.core.clock import utcnow
from smbc.core.remote_calls import BackoffPolicy, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.long_jobs import (
    TIME_SLICE_S,
    LeaseLost,
    SliceRun,
    run_slice,
)
from smbc.export.contacts import contact_batches
from smbc.export.events import event_batches
from smbc.export.job import EXPORTS_JOBS, Job, finish_export, locked_row, resolve_inflight
from smbc.export.models import Export, ExportKind, ExportStatus
from smbc.salesmanago.client import record_calls_into
from smbc.settings.store_settings import load_store_settings


def run_export(
    export_id: int,
    *,
    db: Database | None = None,
    time_slice: float | None = TIME_SLICE_S,
    on_batch: Callable[[Export], None] | None = None,
    force: bool = False,
) -> str | None:
    """Run an export's batches until it ends, is cancelled, must wait for a retry, or its time slice
    is used up (then it is queued again). Returns the status left, or None when another worker holds
    it (or it is not due). `force` ignores a scheduled retry time (the CLI runs it now)."""
    db = db or get_runtime().db
    return EXPORTS_JOBS.run_leased(
        db, export_id, lambda token: _run(db, export_id, token, time_slice, on_batch), force=force
    )


def _start_job(
    db: Database, export_id: int, token: str, on_batch: Callable[[Export], None] | None
) -> Job | str:
    """The job of a leased export, or the status it ended with (uninstalled, credentials gone)."""
    calls = CallBuffer(context=f"export:{export_id}")
    with db.session() as session:
        row = session.get(Export, export_id)
        assert row is not None
        store = session.get(Store, row.store_id)
        if store is None or not store.installed:
            message = "The app was uninstalled from this store."
            finish_export(session, row, ExportStatus.FAILED, utcnow(), message)
            return ExportStatus.FAILED.value
        settings = load_store_settings(session, row.store_id)
        session.expunge(store)
        try:
            record = record_calls_into(calls, store.id)
            sm = salesmanago_client(session, store, recorder=record, context=calls.context)
            once = BackoffPolicy(attempts=1)
            sm_once = salesmanago_client(session, store, recorder=record, context=calls.context, policy=once)
            bc = bc_for_store(store, recorder=calls, priority="export", context=calls.context)
        except RemoteCallError as exc:
            finish_export(session, row, ExportStatus.FAILED, utcnow(), EXPORTS_JOBS.credentials_message(exc))
            return ExportStatus.FAILED.value
        return Job(
            db=db,
            export_id=export_id,
            token=token,
            store=store,
            settings=settings,
            kind=ExportKind(row.kind),
            from_utc=row.from_utc,
            to_utc=row.to_utc,
            tags=list(row.tags or []),
            batch_size=row.batch_size,
            page_size=row.page_size,
            bc=bc,
            sm=sm,
            sm_once=sm_once,
            calls=calls,
            cursor=dict(row.cursor or {}),
            batches=row.batches,
            on_batch=on_batch,
        )


def _run(
    db: Database,
    export_id: int,
    token: str,
    time_slice: float | None,
    on_batch: Callable[[Export], None] | None,
) -> str:
    job = _start_job(db, export_id, token, on_batch)
    if isinstance(job, str):
        return job
    resolve_inflight(job)
    batches = contact_batches(job) if job.kind is ExportKind.CONTACTS else event_batches(job)

    def step() -> str | None:
        if _status(job) == ExportStatus.CANCELLING.value:
            return _end(job, ExportStatus.CANCELLED)
        if next(batches, None) is None:
            return _end(job, ExportStatus.DONE)
        return None

    slices = SliceRun(
        what=f"export {export_id}",
        step=step,
        release=lambda: _release(job),
        requeue=lambda: enqueue_export(export_id),
        on_error=lambda exc, unexpected: _on_error(job, exc, unexpected=unexpected),
    )
    return run_slice(slices, time_slice)


def _status(job: Job) -> str:
    with job.db.session() as session:
        row = session.get(Export, job.export_id)
        if row is None or row.lease_owner != job.token:
            raise LeaseLost()
        return row.status


def _release(job: Job) -> None:
    with job.db.session() as session:
        row = locked_row(session, job)
        row.lease_owner = None
        job.calls.flush(session)


def _end(job: Job, status: ExportStatus) -> str:
    with job.db.session() as session:
        row = locked_row(session, job)
        row.cursor = dict(job.cursor)
        job.calls.flush(session)
        finish_export(session, row, status, utcnow())
    return status.value


def _on_error(job: Job, exc: RemoteCallError, *, unexpected: bool = False) -> str:
    """Retryable: wait (backoff) and go on from the cursor; otherwise the export fails with the reason
    (refused credentials fail it too: an export does not pause the store, the merchant starts it
    again once logged in). An `unexpected` error (not a remote call's outcome) fails it once
    `UNEXPECTED_ERROR_ATTEMPTS` attempts in a row have failed: it would fail the same way for ever.

    The row keeps the cursor of the last committed batch: `job.cursor` may already point past work
    whose transaction failed (a claim, a ledger write), and saving it would skip that work."""
    return EXPORTS_JOBS.retry_or_fail(
        job.db, job.export_id, job.token, exc, calls=job.calls, requeue=enqueue_export, unexpected=unexpected
    )


# -- the queue ---------------------------------------------------------------------------------------


enqueue_export = EXPORTS_JOBS.queued("exports", run_export, task_name="run_export_task")
