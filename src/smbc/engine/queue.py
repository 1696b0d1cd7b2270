"""One engine for queued rows: the queue columns, claim, finish, retry with backoff, the outcome table
and the sweep.

A row in the database is the work; a queue message only says "work on row N now". Every table of
queued work (webhook deliveries, consent write-backs) carries the columns of `QueuedRow`; a worker
claims a row with one conditional UPDATE (only one worker wins), and `finish` writes what became of
it. The periodic sweep re-enqueues due rows, so a lost queue message loses nothing.

A claim is a lease (`lease()`, 30 s by default): while a worker works on a row, its process's
`LEASES` keeper renews `locked_at` every third of the lease, so a slow but live worker keeps its row;
a worker that died stops renewing, and `reclaim_expired` (every half lease in each `smbc worker`,
and in the sweep) gives its rows to the others. Features register their queue (`register_queue`), so
the sweep and `engine.pausing.resume_store` reach every queue while the engine imports no feature.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from huey import crontab
from huey.api import TaskWrapper
from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Integer,
    Row,
    Select,
    String,
    Table,
    Text,
    Update,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.metrics import QUEUE_ROWS_FINISHED
from smbc.core.runtime import get_runtime
from smbc.db.session import Database, StatementRunner
from smbc.db.types import UTCDateTime
from smbc.engine.context import Result, RowStatus
from smbc.engine.outcomes import (  # noqa: F401  (callers reach the outcome table through this module too)
    DATABASE_UNAVAILABLE,
    DEFAULT_RETRY,
    OUTCOME_ACTIONS,
    PAUSED_FOR_CREDENTIALS,
    UNEXPECTED_ERROR_ATTEMPTS,
    Action,
    RetryPolicy,
    describe_unexpected,
    gave_up_unexpected,
    result_for,
    result_for_unexpected,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=30)  # SMBC_LEASE_SECONDS
# A hold this old lapses even in a live worker (a stuck thread, or a hold a bug never released).
STALE_LOCK = timedelta(minutes=10)
NEVER_TRIED_GRACE = timedelta(seconds=60)  # a fresh row's queue message is still on its way
SWEEP_LIMIT = 1000


# -- the queue columns -------------------------------------------------------------------------


class QueuedRow:
    """The columns of a table of queued work (mixed into a mapped class; names and types are the
    tables' own, so no migration follows from using it)."""

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=RowStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted when claimed
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: as soon as possible
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a worker claimed it
    last_error: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClaimedRow(Protocol):
    """What `finish` reads of a claimed row: a Core row from `claim_store_rows`, or a model instance.
    Read-only: `finish` writes the row by its id, never through these attributes."""

    id: int
    attempts: int
    received_at: datetime


# -- leases --------------------------------------------------------------------------------------


def lease() -> timedelta:
    """How long a claimed row stays its worker's without a renewal (the runtime's `lease_seconds`)."""
    try:
        return timedelta(seconds=get_runtime().settings.lease_seconds)
    except RuntimeError:  # no runtime: a unit test driving the engine by hand
        return DEFAULT_LEASE


@dataclass(frozen=True, eq=False)
class Leased:
    """A kind of row a worker holds: its table, the column its lease is renewed in, and the value of
    `state_column` while it is still held (a queued row: processing; a ledger claim: claimed)."""

    model: type
    column: str
    state_column: str
    held_state: str


_QUEUED_LEASES: dict[type, Leased] = {}


def queued_lease(model: type[QueuedRow]) -> Leased:
    """The lease of a table of queued work: `locked_at`, renewed while the row is processing."""
    if model not in _QUEUED_LEASES:
        _QUEUED_LEASES[model] = Leased(model, "locked_at", "status", RowStatus.PROCESSING.value)
    return _QUEUED_LEASES[model]


@dataclass
class LeaseKeeper:
    """The rows this process holds, renewed from one daemon thread every third of the lease. The
    thread starts with the first hold and ends when nothing is held."""

    holds: dict[tuple[Engine, Leased], dict[int, datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _idle: threading.Event = field(default_factory=threading.Event)  # never set: the renewal's pace

    def hold(self, bind: Engine, leased: Leased, ids: Iterable[int], now: datetime | None = None) -> None:
        since = now or utcnow()
        with self._lock:
            self.holds.setdefault((bind, leased), {}).update(dict.fromkeys(ids, since))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="smbc-leases", daemon=True)
                self._thread.start()

    def release(self, leased: Leased, ids: Iterable[int]) -> None:
        with self._lock:
            for (_, kind), held in list(self.holds.items()):
                if kind is leased:
                    for row_id in ids:
                        held.pop(row_id, None)
            for key in [key for key, held in self.holds.items() if not held]:
                del self.holds[key]

    def held(self, leased: Leased) -> set[int]:
        with self._lock:
            return {row_id for (_, kind), held in self.holds.items() if kind is leased for row_id in held}

    def renew(self, now: datetime | None = None) -> int:
        """Renew every held row's lease; a hold older than `STALE_LOCK` lapses. Returns how many rows
        were renewed. A row another worker took over meanwhile is not held any more: left alone."""
        now = now or utcnow()
        with self._lock:
            for held in self.holds.values():
                for row_id in [row_id for row_id, since in held.items() if now - since > STALE_LOCK]:
                    log.warning("row %s held for over %s: its lease lapses", row_id, STALE_LOCK)
                    del held[row_id]
            work = [(bind, leased, sorted(held)) for (bind, leased), held in self.holds.items() if held]
        renewed = 0
        for bind, leased, ids in work:
            model = leased.model
            try:
                ident = model.id  # type: ignore[attr-defined]
                # A row another transaction is writing (its finish, a claim) is skipped, not waited
                # for: waiting deadlocked with a finish writing the same rows in another order.
                free = (
                    select(ident)
                    .where(ident.in_(ids), getattr(model, leased.state_column) == leased.held_state)
                    .with_for_update(skip_locked=True)
                )
                with bind.begin() as conn:
                    result = conn.execute(
                        update(model).where(ident.in_(free.scalar_subquery())).values({leased.column: now})
                    )
                renewed += result.rowcount  # type: ignore[attr-defined]
            except Exception:  # the database is away: the lease may lapse, the work is not lost
                log.warning("could not renew the leases of %s", model.__name__, exc_info=True)
        return renewed

    def _run(self) -> None:
        while True:
            self._idle.wait(lease().total_seconds() / 3)
            with self._lock:
                if not any(self.holds.values()):
                    self.holds.clear()
                    self._thread = None
                    return
            self.renew()


LEASES = LeaseKeeper()


def hold_claimed(runner: StatementRunner, model: type[QueuedRow], ids: Iterable[int], now: datetime) -> None:
    """Keep the lease of rows this worker claimed until `finish` (claimed by a query of its own)."""
    bind = runner.get_bind() if isinstance(runner, Session) else runner
    LEASES.hold(bind if isinstance(bind, Engine) else bind.engine, queued_lease(model), ids, now)


def reclaim_expired(db: Database, now: datetime | None = None) -> int:
    """Put back to pending every row whose lease ran out (its worker died), in every table of queued
    work, and sweep the queues so another worker takes them now. Returns how many rows were freed."""
    now = now or utcnow()
    freed = 0
    with db.session() as session:
        for model in QueuedRow.__subclasses__():
            ident = model.id  # type: ignore[attr-defined]
            expired = (
                select(ident)
                .where(model.status == RowStatus.PROCESSING.value, model.locked_at < now - lease())
                .with_for_update(skip_locked=True)  # a row being written is not a dead worker's
            )
            result = session.execute(
                update(model)
                .where(ident.in_(expired.scalar_subquery()))
                .values(status=RowStatus.PENDING.value, locked_at=None, next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
            freed += result.rowcount  # type: ignore[attr-defined]
    if freed:
        log.warning("took over %s rows whose worker stopped renewing its lease", freed)
        sweep_all(db, now)
    return freed


class LeaseReclaimer:
    """`reclaim_expired` every half lease, from a daemon thread of a worker process (the first run at
    once: a worker started after all others died takes their rows as soon as the leases ran out)."""

    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smbc-lease-reclaimer", daemon=True)

    def start(self) -> LeaseReclaimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reclaim_expired(self._db())
            except Exception:
                log.warning("could not reclaim expired leases", exc_info=True)
            self._stop.wait(lease().total_seconds() / 2)


# -- claim ---------------------------------------------------------------------------------------


def due(model: type[QueuedRow], now: datetime) -> ColumnElement[bool]:
    """A pending row whose time has come (or that was never scheduled)."""
    return and_(
        model.status == RowStatus.PENDING.value,
        or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now),
    )


def claimed_values(model: type[QueuedRow], now: datetime) -> dict[str, Any]:
    """What a claim writes: the row is held since `now` and the attempt is counted."""
    return {"status": RowStatus.PROCESSING.value, "locked_at": now, "attempts": model.attempts + 1}


def queue_table(model: type[QueuedRow]) -> Table:
    """The model's table: the engine's hot statements are Core statements on it, built once per
    table, so no ORM state is set up per call and SQLAlchemy's cache key is computed only once."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


@functools.cache
def _claim_statement(model: type[QueuedRow]) -> Update:
    table = queue_table(model)
    now = bindparam("now", type_=table.c.locked_at.type)
    return (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            table.c.status == RowStatus.PENDING.value,
            or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
        )
        .values(status=RowStatus.PROCESSING.value, locked_at=now, attempts=table.c.attempts + 1)
    )


def claim(session: Session, model: type[QueuedRow], row_id: int, now: datetime) -> bool:
    """Take the row if it is due; exactly one of several racing workers gets True. The row's lease is
    renewed by this process (`LEASES`) until `finish`."""
    result = session.execute(_claim_statement(model), {"row_id": row_id, "now": now})
    claimed = result.rowcount == 1  # type: ignore[attr-defined]
    if claimed:
        hold_claimed(session, model, [row_id], now)
    return claimed


@functools.cache
def _claim_store_statement(model: type[QueuedRow]) -> Update:
    table = queue_table(model)
    now = bindparam("now", type_=table.c.locked_at.type)
    due_now = and_(
        table.c.status == RowStatus.PENDING.value,
        or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
    )
    oldest_due = (
        select(table.c.id)
        .where(table.c.store_id == bindparam("claim_store_id"), due_now)
        .order_by(table.c.id)
        .limit(bindparam("claim_limit", type_=Integer))
        .with_for_update(skip_locked=True)  # nothing on SQLite, which has one writer anyway
        # A CTE is run once; PostgreSQL may rescan an `IN (subquery)` per row and, skipping the rows
        # this statement already updated, claim past the limit (seen: a whole store's rows).
        .cte("claimable")
    )
    return (
        update(table)
        .where(table.c.id.in_(select(oldest_due.c.id)), due_now)
        .values(status=RowStatus.PROCESSING.value, locked_at=now, attempts=table.c.attempts + 1)
        .returning(*table.c)
    )


def claim_store_rows(
    runner: StatementRunner, model: type[QueuedRow], store_id: int, now: datetime, limit: int
) -> list[Row[Any]]:
    """Claim up to `limit` of the store's due rows, oldest first, with one UPDATE (built once per
    table); on PostgreSQL rows another worker is claiming are skipped (SKIP LOCKED), not waited for.
    Returns them in id order as Core rows with every column as the claim left it (an attribute each,
    as on the model; no ORM instance is built); their leases are renewed by this process (`LEASES`)
    until `finish`."""
    claimed = runner.execute(
        _claim_store_statement(model), {"claim_store_id": store_id, "now": now, "claim_limit": limit}
    ).all()
    if claimed:
        hold_claimed(runner, model, [row.id for row in claimed], now)
    return sorted(claimed, key=lambda row: row.id)  # RETURNING has no order


# -- finish --------------------------------------------------------------------------------------

# The key of the row's id among the values `finish_batch` writes (not a column name, so the UPDATE's
# SET clause is made of the other keys).
_ROW_ID = "finished_row_id"


@functools.cache
def _finish_statement(model: type[QueuedRow]) -> Update:
    table = queue_table(model)
    return update(table).where(table.c.id == bindparam(_ROW_ID))


def finished_values(
    row: ClaimedRow, result: Result, now: datetime, policy: RetryPolicy = DEFAULT_RETRY
) -> tuple[Result, dict[str, Any]]:
    """What `finish` writes on a claimed row, and the result as written: a retry is scheduled by
    `policy`, or becomes a failure once the policy gives up or the unexpected errors' bound is reached."""
    values: dict[str, Any] = {"status": result.status.value, "reason": result.reason[:255], "locked_at": None}
    if result.error:
        values["last_error"] = result.error[:2000]
    if result.status is RowStatus.PENDING:
        if result.unexpected and row.attempts >= UNEXPECTED_ERROR_ATTEMPTS:
            result = Result.failed(gave_up_unexpected(result.error, row.attempts), result.error)
            values.update(status=result.status.value, reason=result.reason[:255], processed_at=now)
        elif policy.gives_up(row.received_at, now):
            hours = policy.give_up_after.total_seconds() / 3600
            result = Result.failed(f"gave up after {hours:g} h of retries", result.error)
            values.update(status=result.status.value, reason=result.reason)
        else:
            values["next_attempt_at"] = now + policy.wait(
                row.attempts, result.retry_after, exact=result.exact
            )
            if result.postponed:
                values["attempts"] = max(row.attempts - 1, 0)  # the claim counted it; nothing was tried
    elif result.status is not RowStatus.WAITING:
        values["processed_at"] = now
    return result, values


def finish_batch(
    session: StatementRunner,
    model: type[QueuedRow],
    finished: Sequence[tuple[ClaimedRow, Result]],
    now: datetime,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> list[Result]:
    """Write what became of claimed rows (each `row` is its snapshot from the claim: `attempts`
    already counts this one), as `finish` does for one: one executemany per set of columns written
    (a batch of successes is one statement). Returns the results as written, in order."""
    written: list[Result] = []
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row, result in finished:
        result, values = finished_values(row, result, now, policy)
        written.append(result)
        by_columns.setdefault(tuple(values), []).append({**values, _ROW_ID: row.id})
    statement = _finish_statement(model)
    for parameters in by_columns.values():
        # One row is one execute: an executemany of one costs psycopg a pipeline's round of its own.
        session.execute(statement, parameters[0] if len(parameters) == 1 else parameters)
    LEASES.release(queued_lease(model), [row.id for row, _ in finished])
    table_name = queue_table(model).name
    for status, count in Counter(result.status.value for result in written).items():
        QUEUE_ROWS_FINISHED.labels(table_name, status).inc(count)
    return written


def finish(
    session: Session,
    model: type[QueuedRow],
    row: ClaimedRow,
    result: Result,
    now: datetime,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> Result:
    """Write what became of a claimed row (`row` is its snapshot from the claim: `attempts` already
    counts this one). A retry is scheduled by `policy`, or becomes a failure once the policy gives
    up. Returns the result as written."""
    return finish_batch(session, model, [(row, result)], now, policy)[0]


# -- sweep ---------------------------------------------------------------------------------------


def due_row_ids(
    session: Session,
    model: type[QueuedRow],
    now: datetime,
    limit: int = SWEEP_LIMIT,
    *,
    resumable_stores: Select[Any],
    runnable_stores: Select[Any] | None = None,
) -> list[int]:
    """The sweep's query, the same for every table of queued work.

    Waiting rows of `resumable_stores` go back to pending (a pause lifted without resume_store()),
    rows whose lease ran out (their worker died) are freed, and pending rows that are due (or whose
    queue message was lost) are returned, oldest first; `runnable_stores` narrows those to stores
    allowed to run."""
    ident = model.id  # type: ignore[attr-defined]
    session.execute(
        update(model)
        .where(model.status == RowStatus.WAITING.value, model.store_id.in_(resumable_stores))
        .values(status=RowStatus.PENDING.value, next_attempt_at=now, reason="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(model)
        .where(model.status == RowStatus.PROCESSING.value, model.locked_at < now - lease())
        .values(status=RowStatus.PENDING.value, locked_at=None, next_attempt_at=now)
    )
    query = select(ident).where(
        model.status == RowStatus.PENDING.value,
        or_(
            model.next_attempt_at <= now,
            and_(model.next_attempt_at.is_(None), model.received_at <= now - NEVER_TRIED_GRACE),
        ),
    )
    if runnable_stores is not None:
        query = query.where(model.store_id.in_(runnable_stores))
    return list(session.scalars(query.order_by(ident).limit(limit)).all())


def wake_waiting(session: Session, model: type[QueuedRow], store_id: int, now: datetime) -> list[int]:
    """Make the store's waiting rows due now (its pause was lifted). Returns their ids."""
    ids = list(
        session.scalars(
            select(model.id).where(  # type: ignore[attr-defined]
                model.store_id == store_id, model.status == RowStatus.WAITING.value
            )
        ).all()
    )
    if ids:
        session.execute(
            update(model)
            .where(model.id.in_(ids))  # type: ignore[attr-defined]
            .values(status=RowStatus.PENDING.value, next_attempt_at=now, reason="")
        )
    return ids


def waking(model: type[QueuedRow]) -> Callable[[Session, int, datetime], list[int]]:
    """The `wake` of a queue whose rows (of `model`) wait while their store is paused."""

    def wake(session: Session, store_id: int, now: datetime) -> list[int]:
        return wake_waiting(session, model, store_id, now)

    return wake


def enqueue_or_leave(task: TaskWrapper, row_id: int, *, what: str, delay: float | None = None) -> None:
    """Send "work on row N" to the queue, now or `delay` seconds from now; if the queue is down, the
    sweep finds the row later (so this never raises)."""
    try:
        if delay:
            task.schedule((row_id,), delay=delay)
        else:
            task(row_id)
    except Exception:
        log.warning("could not enqueue %s %s; the sweep will pick it up", what, row_id, exc_info=True)


# -- the registry of queues ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueKind:
    """One queue of work, as registered by its feature.

    `due_ids(db, now)` lists the rows to run now (and frees those of dead workers); `enqueue(id)`
    asks a worker to run one and never raises; `wake(session, store_id, now)`, when the queue has
    rows that wait for a paused store, makes them due and returns their ids; `enqueue_all(db, ids)`,
    when given, is what the sweep calls instead of `enqueue` per row (e.g. one message per store)."""

    name: str
    due_ids: Callable[[Database, datetime], list[int]]
    enqueue: Callable[[int], None]
    wake: Callable[[Session, int, datetime], Sequence[int]] | None = None
    enqueue_all: Callable[[Database, Sequence[int]], None] | None = None


QUEUES: dict[str, QueueKind] = {}


def register_queue(kind: QueueKind) -> QueueKind:
    """Add (or replace, on a re-import) a queue the sweep and resume_store reach."""
    QUEUES[kind.name] = kind
    return kind


def sweep(kind: QueueKind, db: Database | None = None, now: datetime | None = None) -> int:
    """Enqueue every row of the queue that is due. Returns how many."""
    db = db or get_runtime().db
    ids = kind.due_ids(db, now or utcnow())
    if kind.enqueue_all is not None:
        kind.enqueue_all(db, ids)
    else:
        for row_id in ids:
            kind.enqueue(row_id)
    return len(ids)


def sweep_all(
    db: Database | None = None, now: datetime | None = None, kinds: Iterable[QueueKind] | None = None
) -> dict[str, int]:
    """Sweep every registered queue (or `kinds`); one queue's failure does not stop the others."""
    swept: dict[str, int] = {}
    for kind in list(kinds if kinds is not None else QUEUES.values()):
        try:
            swept[kind.name] = sweep(kind, db, now)
        except Exception:
            log.exception("sweep of queue %s failed", kind.name)
    return swept


@huey.periodic_task(crontab(minute="*"))
def sweep_queues_task() -> None:
    sweep_all()
