"""Long jobs: work that runs for minutes or hours on one row (an export, a full catalog sync), page
after page, saving its cursor in the transaction that records each page.

Unlike a queued row (`engine.queue`), claimed for one short piece of work, a long job keeps its row
through many transactions and proves it is alive with a heartbeat: a worker takes the row's lease
(`lease_owner`), runs steps for a time slice (`engine.sliced_runs`), then releases it and queues
itself again so other work gets a turn. A lease with no heartbeat for `LEASE_STALE` belonged to a
worker that died; another takes it over, and the old one, if it wakes, finds it lost (`LeaseLost`)
and writes nothing. Retry schedule and outcome -> action are the engine's, as for queued rows."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, ForeignKey, Integer, String, Text, and_, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.bigcommerce.client import CallBuffer
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import RemoteCallError
from smbc.db.session import Database
from smbc.db.types import UTCDateTime
from smbc.engine.pausing import PauseReason, pause_reason_for
from smbc.engine.queue import (
    OUTCOME_ACTIONS,
    UNEXPECTED_ERROR_ATTEMPTS,
    Action,
    QueueKind,
    RetryPolicy,
    enqueue_or_leave,
    gave_up_unexpected,
    register_queue,
)

log = logging.getLogger(__name__)

LEASE_STALE = timedelta(minutes=5)  # no heartbeat for this long: the worker died, another takes over
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
ERROR_KEPT = 2000  # characters of an error kept on the row


class LeaseLost(Exception):
    """Another worker took this job over (ours looked dead): stop without writing anything."""


class LongJobColumns:
    """The columns of a long job's row (mixed into a mapped class; names and types are the tables'
    own, so no migration follows from using it)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    # `"<store_id>:<what>"` while the job is active, NULL once it ended: its unique constraint keeps
    # one active job per slot (NULLs never collide, in SQLite and PostgreSQL alike).
    active_slot: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Retries after SALESmanago/BigCommerce failures: consecutive failures and when to go on.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker running it: a lease refreshed with every step; a stale one is taken over.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


R = TypeVar("R", bound=LongJobColumns)


class Enqueue(Protocol):
    """Asks a worker to run a job (after `delay` seconds); if the queue is down, the sweep finds it."""

    def __call__(self, row_id: int, delay: float | None = None) -> None: ...


@dataclass(frozen=True)
class LongJobKind(Generic[R]):
    """One table of long jobs: its model, which statuses are active, how it retries, and how it fails."""

    model: type[R]
    what: str  # "export", "catalog sync": for the logs
    active_statuses: Sequence[str]
    retry: RetryPolicy
    fail: Callable[[Session, R, str], None]  # end the job failed with this reason
    salesmanago_credentials: str  # what SALESmanago refused: "the API v3 key", "the credentials"
    start_again: str  # what the merchant does once access is back: "sync again", "export again"

    def credentials_message(self, exc: RemoteCallError) -> str:
        """The reason the job fails with when a service refuses the app's credentials."""
        then = f"then {self.start_again}."
        if pause_reason_for(exc) is PauseReason.BIGCOMMERCE_CREDENTIALS:
            return f"BigCommerce refused the app's access ({exc.message}); reinstall the app, {then}"
        return f"SALESmanago refused {self.salesmanago_credentials} ({exc.message}): log in again, {then}"

    def runnable(self, now: datetime, *, force: bool = False) -> ColumnElement[bool]:
        """An active job nobody runs (no lease, or its worker stopped sending heartbeats) whose retry
        time has come (`force`: whatever the retry time)."""
        model = self.model
        conditions = [
            model.status.in_(list(self.active_statuses)),
            or_(model.lease_owner.is_(None), model.heartbeat_at < now - LEASE_STALE),
        ]
        if not force:
            conditions.append(or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now))
        return and_(*conditions)

    def acquire(self, db: Database, row_id: int, token: str, now: datetime, *, force: bool) -> bool:
        """Take the row's lease with one conditional UPDATE (one worker wins); a queued job starts."""
        model = self.model
        with db.session() as session:
            taken = session.execute(
                update(model)
                .where(model.id == row_id, self.runnable(now, force=force))
                .values(lease_owner=token, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return False
            row = session.get(model, row_id)
            assert row is not None
            if row.status == QUEUED:
                row.status = RUNNING
            row.started_at = row.started_at or now
        return True

    def run_leased(self, db: Database, row_id: int, run: Callable[[str], str], *, force: bool) -> str | None:
        """Take the row's lease under a token of this run and `run` the job with it: the status left, or
        None when another worker holds it (or it is not due) or took it over meanwhile."""
        token = uuid.uuid4().hex
        if not self.acquire(db, row_id, token, utcnow(), force=force):
            return None
        try:
            return run(token)
        except LeaseLost:
            log.warning("%s %s was taken over by another worker", self.what, row_id)
            return None

    def locked(self, session: Session, row_id: int, token: str) -> R:
        """The row, locked for this transaction, while the lease is still ours."""
        row = session.get(self.model, row_id, with_for_update=True)
        if row is None or row.lease_owner != token:
            raise LeaseLost()
        return row

    def due_ids(self, db: Database, now: datetime | None = None) -> list[int]:
        """Active jobs nobody runs: queued or waiting for a retry that is due, and those whose worker
        stopped sending heartbeats (killed, crashed). The sweep re-enqueues them."""
        now = now or utcnow()
        key = self.model.id
        with db.session() as session:
            return list(session.scalars(select(key).where(self.runnable(now)).order_by(key)))

    def queued(self, sweep_name: str, run: Callable[[int], object], task_name: str) -> Enqueue:
        """Declare the Huey task `task_name` that runs a job (`run`), and return what enqueues a job on
        it; the engine's periodic sweep re-enqueues due jobs with it too (a lost message loses nothing)."""

        def run_task(row_id: int) -> None:
            run(row_id)

        run_task.__module__ = run.__module__  # Huey names a task by module and name, as queued messages do
        task = huey.task(name=task_name)(run_task)

        def enqueue(row_id: int, delay: float | None = None) -> None:
            enqueue_or_leave(task, row_id, what=self.what, delay=delay)

        register_queue(QueueKind(sweep_name, due_ids=self.due_ids, enqueue=enqueue))
        return enqueue

    def retry_or_fail(
        self,
        db: Database,
        row_id: int,
        token: str,
        exc: RemoteCallError,
        *,
        calls: CallBuffer,
        requeue: Enqueue,
        unexpected: bool = False,
    ) -> str:
        """After a failed step, in one transaction with the `calls` made: either `fail` the
        job with its reason (FAILED), or schedule its retry by `after_error` and `requeue` it (RUNNING)."""
        with db.session() as session:
            row = self.locked(session, row_id, token)
            calls.flush(session)
            verdict = after_error(
                row,
                exc,
                self.retry,
                utcnow(),
                credentials_message=self.credentials_message,
                unexpected=unexpected,
            )
            if isinstance(verdict, str):
                self.fail(session, row, verdict)
                return FAILED
            attempts = row.attempts
        log.info(
            "%s %s: attempt %s failed (%s); retrying in %.0f s", self.what, row_id, attempts, exc, verdict
        )
        requeue(row_id, delay=verdict)
        return RUNNING


def finish_row(row: LongJobColumns, status: str, now: datetime, error: str = "") -> None:
    """The job ended: it frees its slot and its lease and will not run again."""
    row.status = status
    row.active_slot = None
    row.lease_owner = None
    row.next_attempt_at = None
    row.finished_at = now
    if error:
        row.last_error = error[:ERROR_KEPT]


def beat(row: LongJobColumns) -> None:
    """A step went through: the worker is alive and the failures in a row are over."""
    row.heartbeat_at = utcnow()
    row.attempts = 0
    row.failing_since = None


def after_error(
    row: LongJobColumns,
    exc: RemoteCallError,
    policy: RetryPolicy,
    now: datetime,
    *,
    credentials_message: Callable[[RemoteCallError], str],
    unexpected: bool = False,
) -> str | float:
    """What a failed step makes of the job: the message it fails with, or (written on the row, its
    lease released) the seconds to wait before it goes on from its cursor. Refused credentials fail
    it too: a long job does not pause the store, the merchant starts it again once logged in. An
    `unexpected` error (not a remote call's outcome) fails it after `UNEXPECTED_ERROR_ATTEMPTS`
    attempts in a row: it would fail the same way for ever."""
    action = OUTCOME_ACTIONS[exc.outcome]
    if action is not Action.RETRY:
        return credentials_message(exc) if action is Action.WAIT else exc.message
    row.attempts += 1
    row.failing_since = row.failing_since or now
    if unexpected and row.attempts >= UNEXPECTED_ERROR_ATTEMPTS:
        return gave_up_unexpected(exc.message, row.attempts)
    if policy.gives_up(row.failing_since, now):
        return f"Gave up after 24 h of failures: {exc.message}"
    wait = policy.wait(row.attempts, exc.retry_after).total_seconds()
    row.next_attempt_at = now + timedelta(seconds=wait)
    row.last_error = exc.message[:ERROR_KEPT]
    row.lease_owner = None
    return wait
