"""A long job's run in time slices: a worker takes the row's lease (`LongJobKind.run_leased`), the
feature opens what the run needs (its start), then steps run until the job ends, must wait for a
retry, or the time slice is used up; then the lease is given back and the job queued again.

The feature supplies only what differs: its start (clients, cursor: `Lease.opened` checks the store
and the credentials), its step (one page or batch) and how a step finishes the job. The lease, the
remote calls recorded with each write, the retries and the re-queueing are the same for every kind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from smbc.bigcommerce.client import CallBuffer
from smbc.core.clock import get_clock
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.long_jobs import FAILED, RUNNING, Enqueue, LeaseLost, LongJobColumns, LongJobKind
from smbc.engine.queue import describe_unexpected

log = logging.getLogger(__name__)

TIME_SLICE_S = 50.0  # a task runs steps this long, then re-queues itself (other work gets a turn)
UNINSTALLED = "The app was uninstalled from this store."

R = TypeVar("R", bound=LongJobColumns)
T = TypeVar("T")
Step = Callable[[], str | None]  # one page or batch; the status the job ended with, or None


@dataclass
class SliceRun:
    """How one run of a leased job steps, yields its turn, and handles a failed step."""

    what: str  # "export 12": for the logs
    step: Step
    release: Callable[[], None]  # give the lease back (the cursor is already saved)
    requeue: Callable[[], None]  # ask a worker to go on
    on_error: Callable[[RemoteCallError, bool], str]  # (error, unexpected) -> the status left


def run_slice(run: SliceRun, time_slice: float | None) -> str:
    """Run steps until the job ends, must wait for a retry, or `time_slice` seconds are used up (then
    it is queued again and stays running). An error that is not a remote call's (a bug) keeps the job
    and its cursor: it is retried a few times and shown. `LeaseLost` goes to the caller."""
    started = get_clock().monotonic()
    try:
        while True:
            if time_slice is not None and get_clock().monotonic() - started >= time_slice:
                run.release()
                run.requeue()
                return RUNNING
            ended = run.step()
            if ended is not None:
                return ended
    except RemoteCallError as exc:
        return run.on_error(exc, False)
    except LeaseLost:
        raise
    except Exception as exc:
        log.exception("%s failed", run.what)
        return run.on_error(RemoteCallError(Outcome.RETRY, describe_unexpected(exc)), True)


@dataclass(frozen=True)
class Lease(Generic[R]):
    """One run's hold on one job's row: where it writes, under which token, the remote calls made
    since its last write (recorded with the next one) and how the job is queued again."""

    kind: LongJobKind[R]
    db: Database
    row_id: int
    token: str
    calls: CallBuffer
    requeue: Enqueue

    def locked(self, session: Session) -> R:
        return self.kind.locked(session, self.row_id, self.token)

    def opened(self, open_run: Callable[[Session, R, Store], T | str]) -> T | str:
        """In one transaction with the row locked: what `open_run` makes of the row and its store, or
        the status the job ended with (the app uninstalled, the credentials refused as it connects)."""
        with self.db.session() as session:
            row = self.locked(session)
            store = session.get(Store, row.store_id)
            if store is None or not store.installed:
                self.kind.fail(session, row, UNINSTALLED)
                return FAILED
            try:
                return open_run(session, row, store)
            except RemoteCallError as exc:
                self.kind.fail(session, row, self.kind.credentials_message(exc))
                return FAILED

    def release(self) -> None:
        """Give the lease back between slices, with the calls made since the last write."""
        with self.db.session() as session:
            row = self.locked(session)
            row.lease_owner = None
            self.calls.flush(session)

    def retry_or_fail(self, exc: RemoteCallError, *, unexpected: bool = False) -> str:
        """Retryable: wait (backoff) and go on from the row's cursor, the last committed one (the run's own
        may point past work whose transaction failed); otherwise the job fails with the reason."""
        return self.kind.retry_or_fail(
            self.db,
            self.row_id,
            self.token,
            exc,
            calls=self.calls,
            requeue=self.requeue,
            unexpected=unexpected,
        )


def run_sliced(
    kind: LongJobKind[R],
    db: Database,
    row_id: int,
    start: Callable[[Lease[R]], Step | str],
    *,
    calls_context: str,
    requeue: Enqueue,
    time_slice: float | None,
    force: bool,
) -> str | None:
    """Take the row's lease and run the job's steps (from `start`, or the status it ended with) for one
    time slice: the status left, or None when another worker holds it (or it is not due) or took it
    over. Its remote calls are recorded as `"<calls_context>:<row_id>"`; `force` ignores a retry time."""

    def run(token: str) -> str:
        lease = Lease(kind, db, row_id, token, CallBuffer(context=f"{calls_context}:{row_id}"), requeue)
        step = start(lease)
        if isinstance(step, str):
            return step
        slices = SliceRun(
            what=f"{kind.what} {row_id}",
            step=step,
            release=lease.release,
            requeue=lambda: requeue(row_id),
            on_error=lambda exc, unexpected: lease.retry_or_fail(exc, unexpected=unexpected),
        )
        return run_slice(slices, time_slice)

    return kind.run_leased(db, row_id, run, force=force)
