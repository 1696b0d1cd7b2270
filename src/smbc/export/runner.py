"""Running an export: a worker takes the row's lease, runs batch after batch and saves the cursor
after every batch, in the transaction that records the batch's result, so a crash resumes where it
stopped. Pages are streamed (one page and one batch in memory at a time). A run ends when the export
is done or cancelled, must wait for a retry, or its time slice is used up (then it is queued again).

An export is one of the engine's long jobs (`engine.long_jobs`, run by `engine.sliced_runs`): a
lease with a heartbeat, time slices, the engine's retry schedule, outcome -> action and sweep; the
export supplies its start, its step (a batch, or the end when cancelled or done) and its end."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from smbc.account.credentials import salesmanago_client
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.core.clock import utcnow
from smbc.core.process_memory import is_settled, settle_process
from smbc.core.remote_calls import BackoffPolicy
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.long_jobs import LeaseLost
from smbc.engine.sliced_runs import TIME_SLICE_S, Lease, Step, run_sliced
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
    with _collector_settled():
        return run_sliced(
            EXPORTS_JOBS,
            db or get_runtime().db,
            export_id,
            lambda lease: _start(lease, on_batch),
            calls_context="export",
            requeue=enqueue_export,
            time_slice=time_slice,
            force=force,
        )


@contextmanager
def _collector_settled() -> Iterator[None]:
    """The process settled as a worker settles it before taking work (`settle_process`), for the run,
    in a process that did not (the CLI's foreground export); the collector left as it was after (the
    arena limit stays: it only shapes arenas made later). Unsettled, the collections were a fifth of
    an export process's CPU (pages of orders scanned again and again with everything start-up made)."""
    if is_settled():
        yield
        return
    threshold = gc.get_threshold()
    settle_process()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _start(lease: Lease[Export], on_batch: Callable[[Export], None] | None) -> Step | str:
    """The step of a leased export (one batch, or its end), or the status it ended with."""
    job = lease.opened(lambda session, row, store: _job(lease, session, row, store, on_batch))
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

    return step


def _job(
    lease: Lease[Export],
    session: Session,
    row: Export,
    store: Store,
    on_batch: Callable[[Export], None] | None,
) -> Job:
    """The export's run: its settings, its clients (refused credentials fail it) and its cursor."""
    calls = lease.calls
    settings = load_store_settings(session, row.store_id)
    session.expunge(store)
    record = record_calls_into(calls, store.id)
    sm = salesmanago_client(session, store, recorder=record, context=calls.context)
    once = BackoffPolicy(attempts=1)
    sm_once = salesmanago_client(session, store, recorder=record, context=calls.context, policy=once)
    bc = bc_for_store(store, recorder=calls, priority="export", context=calls.context)
    return Job(
        db=lease.db,
        export_id=lease.row_id,
        token=lease.token,
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


def _status(job: Job) -> str:
    with job.db.session() as session:
        row = session.get(Export, job.export_id)
        if row is None or row.lease_owner != job.token:
            raise LeaseLost()
        return row.status


def _end(job: Job, status: ExportStatus) -> str:
    with job.db.session() as session:
        row = locked_row(session, job)
        row.cursor = dict(job.cursor)
        job.calls.flush(session)
        finish_export(session, row, status, utcnow())
    return status.value


# -- the queue ---------------------------------------------------------------------------------------


enqueue_export = EXPORTS_JOBS.queued("exports", run_export, task_name="run_export_task")
