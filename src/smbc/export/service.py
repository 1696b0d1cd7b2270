"""Archival export: customers as contacts and orders as external events, by date range, in batches.

An export is a row (`export_models.Export`); a worker runs it batch by batch and saves its cursor
after every batch, in the transaction that records the batch's result, so a crash resumes where it
stopped. Pages are streamed (one page and one batch in memory at a time).

Contacts: customers created in the range (`/v3/customers`, cursor pagination), newsletter state from
the subscribers, `batchupsertv2` in batches. Upserting is idempotent: exporting again updates them.

Events: orders created in the range (`/v2/orders`, keyset by `min_id`, line items included), mapped
exactly as real time maps them (PURCHASE, CANCELLATION after a PURCHASE, RETURN per refund), buyers
upserted first, then `addBatchContactExtEvent`. Each (order, type) is claimed in real time's
`sent_events` ledger before sending, so anything already sent (by real time or an earlier export) is
skipped and running an export twice sends nothing new.

Never a batch twice: the claim of a batch's ledger rows and the `inflight` marker are committed in
one transaction right before the events call; the answer is committed with the cursor in the next.
SALESmanago has no way to read events back, so a batch left `inflight` by a dead worker (killed while
SALESmanago was receiving it) is NOT sent again: its events are recorded as sent and counted as
`unconfirmed`. A request that was written almost always arrives, so this errs towards "once" rather
than "twice", which the merchant's reports and automations would show. A failure that certainly left
nothing at SALESmanago (an error answer, a refused connection) releases the claims and the batch is
planned again after a backoff.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from huey import crontab
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import PAGE_LIMIT, BigCommerceClient, CallBuffer, V2Pages
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.core.clock import get_clock, utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SENT_STATES, SentEvent, SyncedContact
from smbc.export.models import (
    ACTIVE_STATUSES,
    Export,
    ExportKind,
    ExportStatus,
    ExportSubscriber,
)
from smbc.export.read_ahead import ReadAhead
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import EventKind
from smbc.realtime.processing import load_settings_for
from smbc.settings.store_settings import StoreSettings, normalize_tags

log = logging.getLogger(__name__)

BATCH_SIZE = 400  # what the official plugins send per call (reference §3.4, §4.1)
TIME_SLICE_S = 50.0  # a task runs batches this long, then re-queues itself (other work gets a turn)
LEASE_STALE = timedelta(minutes=5)  # no heartbeat for this long: the worker died, another takes over
RETRY_BASE_S = 5.0
RETRY_CAP_S = 600.0
GIVE_UP_AFTER = timedelta(hours=24)
MESSAGES_KEPT = 10
TAG_MAX = 255
NEWSLETTER = "marketing_newsletter"


# -- input ---------------------------------------------------------------------------------------


class ExportInvalid(ValueError):
    """The request was refused; `errors` maps each form field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class ExportAlreadyRunning(Exception):
    def __init__(self, existing: Export | None) -> None:
        if existing is None:
            text = "Another export of this kind is running: wait for it to finish or cancel it."
        else:
            kind = "Contacts" if existing.kind == ExportKind.CONTACTS else "Events"
            text = (
                f"{kind} export #{existing.id} ({existing.date_from} to {existing.date_to}) is still "
                f"{existing.status}: wait for it to finish or cancel it before starting another."
            )
        super().__init__(text)
        self.existing = existing


def store_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # an unknown zone name: UTC rather than no export at all


def day_bounds(date_from: date, date_to: date, zone: str | None) -> tuple[datetime, datetime]:
    """Whole days `date_from`..`date_to` in the store's time zone as inclusive UTC bounds (to the
    second: BigCommerce dates are whole seconds)."""
    tz = store_zone(zone)
    start = datetime.combine(date_from, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end - timedelta(seconds=1)


def parse_request(date_from: str, date_to: str, tags: str, *, today: date) -> tuple[date, date, list[str]]:
    """Form text -> (from, to, tags); ExportInvalid with a message per field."""
    errors: dict[str, str] = {}
    parsed: dict[str, date] = {}
    for name, text in (("date_from", date_from), ("date_to", date_to)):
        value = (text or "").strip()
        if not value:
            errors[name] = "Enter a date (YYYY-MM-DD)."
            continue
        try:
            parsed[name] = date.fromisoformat(value)
        except ValueError:
            errors[name] = f"{value!r} is not a date: use YYYY-MM-DD."
            continue
        if parsed[name] > today:
            errors[name] = f"Choose a day up to today ({today.isoformat()})."
    if "date_from" in parsed and "date_to" in parsed and parsed["date_from"] > parsed["date_to"]:
        errors.setdefault("date_to", "The end date must be on or after the start date.")
    tag_list = normalize_tags(tags)
    if any(len(t) > TAG_MAX for t in tag_list):
        errors["tags"] = f"A tag can be at most {TAG_MAX} characters long."
    if errors:
        raise ExportInvalid(errors)
    return parsed["date_from"], parsed["date_to"], tag_list


def store_today(store: Store) -> date:
    return utcnow().astimezone(store_zone(store.timezone)).date()


# -- starting, cancelling, listing ---------------------------------------------------------------


def _slot(store_id: int, kind: str) -> str:
    return f"{store_id}:{kind}"


def active_export(session: Session, store_id: int, kind: str) -> Export | None:
    return session.scalar(select(Export).where(Export.active_slot == _slot(store_id, kind)))


def start_export(
    db: Database,
    store_id: int,
    kind: ExportKind | str,
    date_from: date,
    date_to: date,
    *,
    tags: Sequence[str] = (),
    actor: str = "",
    batch_size: int = BATCH_SIZE,
    page_size: int = PAGE_LIMIT,
    enqueue: bool = True,
    resend_of: int | None = None,
) -> int:
    """Record a queued export (and queue it). ExportAlreadyRunning when one of this kind is active.

    `resend_of`: release that export's unconfirmed events in the same transaction (resend_unconfirmed)."""
    kind = ExportKind(kind)
    if not 1 <= batch_size <= 1000 or not 1 <= page_size <= PAGE_LIMIT:
        raise ValueError("batch_size must be 1..1000 and page_size 1..250")
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            raise LookupError("This store does not have the app installed.")
        from smbc.account.credentials import get_account

        if get_account(session, store_id) is None:
            raise ExportInvalid({"form": "Log in to SALESmanago on the Account Settings tab first."})
        start, end = day_bounds(date_from, date_to, store.timezone)
        row = Export(
            store_id=store_id,
            kind=kind.value,
            status=ExportStatus.QUEUED.value,
            active_slot=_slot(store_id, kind.value),
            date_from=date_from,
            date_to=date_to,
            timezone=store.timezone or "UTC",
            from_utc=start,
            to_utc=end,
            tags=list(tags) if kind is ExportKind.CONTACTS else [],
            batch_size=batch_size,
            page_size=page_size,
            actor=actor[:320],
            cursor={},
            skipped={},
            failed={},
            messages=[],
        )
        for attempt in range(2):
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
                break
            except IntegrityError:
                existing = active_export(session, store_id, kind.value)
                if existing is not None or attempt:
                    raise ExportAlreadyRunning(existing) from None
                # The running one ended between our insert and this read: the slot is free now.
        if resend_of is not None:
            _release_unconfirmed(session, store_id, resend_of, row.id)
        export_id = row.id
    if enqueue:
        enqueue_export(export_id)
    return export_id


UNCONFIRMED_HINT = "If SALESmanago does not show them, use “Send unconfirmed again” on this export."


def resend_unconfirmed(
    db: Database, store_id: int, export_id: int, *, actor: str = "", enqueue: bool = True
) -> int:
    """A new events export over the same range that sends the unconfirmed events of `export_id` again.

    For the merchant who checked that SALESmanago lacks them: their ledger rows are released in the
    transaction that records the new export, which then finds every other order of the range already
    sent and skips it. ExportInvalid when there is nothing to send again."""
    with db.session() as session:
        old = session.get(Export, export_id)
        if old is None or old.store_id != store_id or old.kind != ExportKind.EVENTS.value:
            raise ExportInvalid({"form": f"Export #{export_id} is not an events export of this store."})
        if old.active:
            raise ExportInvalid({"form": f"Export #{export_id} is still running: wait for it to finish."})
        if not old.unconfirmed:
            raise ExportInvalid({"form": f"Export #{export_id} has no unconfirmed events."})
        dates, sizes = (old.date_from, old.date_to), (old.batch_size, old.page_size)
    return start_export(
        db,
        store_id,
        ExportKind.EVENTS,
        *dates,
        actor=actor,
        batch_size=sizes[0],
        page_size=sizes[1],
        enqueue=enqueue,
        resend_of=export_id,
    )


def _release_unconfirmed(session: Session, store_id: int, old_id: int, new_id: int) -> None:
    released = session.execute(
        delete(SentEvent).where(
            SentEvent.store_id == store_id,
            SentEvent.claimed_by.startswith(f"export:{old_id}:", autoescape=True),
            SentEvent.state == "unconfirmed",
        )
    ).rowcount
    old = session.get(Export, old_id)
    if not released or old is None:
        raise ExportInvalid({"form": f"Export #{old_id} has no unconfirmed events left to send again."})
    old.unconfirmed = 0
    old.messages = [
        *(old.messages or []),
        f"{released} unconfirmed events are sent again by export #{new_id}.",
    ][-MESSAGES_KEPT:]


def cancel_export(db: Database, store_id: int, export_id: int) -> bool:
    """Ask a running export to stop after its current batch (one no worker holds stops at once)."""
    now = utcnow()
    with db.session() as session:
        row = session.get(Export, export_id)
        if row is None or row.store_id != store_id or not row.active:
            return False
        if row.lease_owner is None:  # nobody is sending a batch: it can end now
            _finish(session, row, ExportStatus.CANCELLED, now)
        else:
            row.status = ExportStatus.CANCELLING.value
    return True


def recent_exports(session: Session, store_id: int, limit: int = 20) -> list[Export]:
    return list(
        session.scalars(
            select(Export).where(Export.store_id == store_id).order_by(Export.id.desc()).limit(limit)
        )
    )


@dataclass(frozen=True)
class ProgressView:
    done: int
    total: int | None
    percent: int
    rate_per_min: float | None
    seconds_left: int | None


def progress(row: Export, now: datetime | None = None) -> ProgressView:
    """Done/total, records per minute since it started, and the time left at that rate."""
    now = now or utcnow()
    total = row.total
    if total is not None:
        total = max(total, row.done)
    percent = 100 if total == 0 else (int(row.done * 100 / total) if total else 0)
    rate = None
    left = None
    if row.started_at is not None and row.done > 0:
        elapsed = max((now - row.started_at).total_seconds(), 1.0)
        rate = row.done / elapsed * 60
        if total is not None:
            left = int((total - row.done) / (row.done / elapsed))
    return ProgressView(row.done, total, percent, rate, left)


# -- the worker ------------------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another worker took this export over (ours looked dead): stop without writing anything."""


class ConnectTracker(httpx.BaseTransport):
    """Tells a request that certainly never reached SALESmanago (connection refused or not made in
    time) from one that may have arrived (read timeout, connection dropped after sending)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.not_delivered = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.not_delivered = False
        try:
            return self._inner.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            self.not_delivered = True
            raise

    def close(self) -> None:
        self._inner.close()


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
    sm: Any  # SalesmanagoClient: in-call retries (contacts are idempotent)
    sm_once: Any  # SalesmanagoClient: one attempt (events: never sent twice by a retry)
    tracker: ConnectTracker
    calls: CallBuffer
    cursor: dict[str, Any]
    batches: int = 0
    on_batch: Callable[[Export], None] | None = None

    @property
    def owner(self) -> str:
        return self.settings.contact_owner

    @property
    def claim_prefix(self) -> str:
        return f"export:{self.export_id}:"

    def lang(self) -> str | None:
        info = self.store.info or {}
        return rules.lang_code(info.get("language") or info.get("locale"))


@dataclass
class BatchResult:
    """What one batch adds to the row."""

    done: int = 0
    sent: int = 0
    unconfirmed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)


def _sm_clients(
    session: Session, store: Store, calls: CallBuffer
) -> tuple[Any, Any, ConnectTracker, httpx.Client]:
    from smbc.account.credentials import store_credentials
    from smbc.salesmanago.client import SalesmanagoClient, record_calls_into

    record = record_calls_into(calls, store.id)

    credentials = store_credentials(session, store)
    tracker = ConnectTracker()
    http = httpx.Client(transport=tracker, follow_redirects=True)
    sm = SalesmanagoClient(credentials, http=http, recorder=record, context=calls.context)
    once = SalesmanagoClient(
        credentials, http=http, recorder=record, context=calls.context, policy=BackoffPolicy(attempts=1)
    )
    return sm, once, tracker, http


def _acquire(db: Database, export_id: int, token: str, now: datetime, *, force: bool) -> bool:
    with db.session() as session:
        free = or_(Export.lease_owner.is_(None), Export.heartbeat_at < now - LEASE_STALE)
        due = or_(Export.next_attempt_at.is_(None), Export.next_attempt_at <= now)
        conditions = [
            Export.id == export_id,
            Export.status.in_([s.value for s in ACTIVE_STATUSES]),
            free,
        ]
        if not force:
            conditions.append(due)
        taken = session.execute(
            update(Export)
            .where(*conditions)
            .values(lease_owner=token, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return False
        row = session.get(Export, export_id)
        assert row is not None
        if row.status == ExportStatus.QUEUED.value:
            row.status = ExportStatus.RUNNING.value
        if row.started_at is None:
            row.started_at = now
    return True


def _locked_row(session: Session, job: Job) -> Export:
    row = session.get(Export, job.export_id, with_for_update=True)
    if row is None or row.lease_owner != job.token:
        raise LeaseLost()
    return row


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


def _finish(session: Session, row: Export, status: ExportStatus, now: datetime, error: str = "") -> None:
    row.status = status.value
    row.active_slot = None
    row.lease_owner = None
    row.finished_at = now
    row.next_attempt_at = None
    if status is ExportStatus.DONE and row.total is not None:
        row.total = row.done  # the count BigCommerce gave was an estimate; this is what there was
    if error:
        row.last_error = error[:2000]
        row.messages = [*(row.messages or []), error][-MESSAGES_KEPT:]
    cursor = dict(row.cursor or {})
    inflight = cursor.pop("inflight", None)
    if inflight:  # never resolved by a run: the same rule as _resolve_inflight (not sent again)
        _mark_unconfirmed(session, row.store_id, f"export:{row.id}:{inflight['batch']}", now)
    row.cursor = cursor
    session.execute(delete(ExportSubscriber).where(ExportSubscriber.export_id == row.id))


def _commit(job: Job, result: BatchResult, *, extra: Callable[[Session], None] | None = None) -> Export:
    """Record a batch: counts, cursor, heartbeat, remote calls (and `extra` ledger work), together.

    Tried again when another worker inserted the same contact-ledger row at the same moment (real
    time, or the other kind of export): the second try finds the row and updates it."""
    for attempt in range(3):
        recorded: list[dict[str, Any]] = []
        try:
            with job.db.session() as session:
                row = _locked_row(session, job)
                recorded = job.calls.flush(session)
                if extra is not None:
                    extra(session)
                _add_counts(row, result)
                row.cursor = dict(job.cursor)
                row.batches = job.batches
                row.heartbeat_at = utcnow()
                row.attempts = 0
                row.failing_since = None
                session.flush()
                session.expunge(row)
            break
        except Exception as exc:
            job.calls.put_back(recorded)  # rolled back with the batch: the next try or _on_error writes them
            if not isinstance(exc, IntegrityError) or attempt == 2:
                raise
    if job.on_batch is not None:
        job.on_batch(row)
    return row


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
    from smbc.core.runtime import get_runtime

    db = db or get_runtime().db
    token = uuid.uuid4().hex
    now = utcnow()
    if not _acquire(db, export_id, token, now, force=force):
        return None
    try:
        return _run(db, export_id, token, time_slice, on_batch)
    except LeaseLost:
        log.warning("export %s was taken over by another worker", export_id)
        return None


def _run(
    db: Database,
    export_id: int,
    token: str,
    time_slice: float | None,
    on_batch: Callable[[Export], None] | None,
) -> str:
    calls = CallBuffer(context=f"export:{export_id}")
    with db.session() as session:
        row = session.get(Export, export_id)
        assert row is not None
        store = session.get(Store, row.store_id)
        settings = load_settings_for(session, row.store_id)
        if store is None or not store.installed:
            _finish(session, row, ExportStatus.FAILED, utcnow(), "The app was uninstalled from this store.")
            return ExportStatus.FAILED.value
        session.expunge(store)
        snapshot = {c: getattr(row, c) for c in ("kind", "from_utc", "to_utc", "tags", "batch_size")}
        page_size, cursor, batches = row.page_size, dict(row.cursor or {}), row.batches
        try:
            sm, sm_once, tracker, http = _sm_clients(session, store, calls)
            bc = bc_for_store(store, recorder=calls, priority="export", context=calls.context)
        except RemoteCallError as exc:
            _finish(session, row, ExportStatus.FAILED, utcnow(), _credentials_message(exc))
            return ExportStatus.FAILED.value
    job = Job(
        db=db,
        export_id=export_id,
        token=token,
        store=store,
        settings=settings,
        kind=ExportKind(snapshot["kind"]),
        from_utc=snapshot["from_utc"],
        to_utc=snapshot["to_utc"],
        tags=list(snapshot["tags"] or []),
        batch_size=snapshot["batch_size"],
        page_size=page_size,
        bc=bc,
        sm=sm,
        sm_once=sm_once,
        tracker=tracker,
        calls=calls,
        cursor=cursor,
        batches=batches,
        on_batch=on_batch,
    )
    started = get_clock().monotonic()
    try:
        _resolve_inflight(job)
        batches_iter = _contact_batches(job) if job.kind is ExportKind.CONTACTS else _event_batches(job)
        while True:
            status = _status(job)
            if status == ExportStatus.CANCELLING.value:
                return _end(job, ExportStatus.CANCELLED)
            if time_slice is not None and get_clock().monotonic() - started >= time_slice:
                _release(job)
                enqueue_export(export_id)
                return ExportStatus.RUNNING.value
            if next(batches_iter, None) is None:
                return _end(job, ExportStatus.DONE)
    except RemoteCallError as exc:
        return _on_error(job, exc)
    except LeaseLost:
        raise
    except Exception as exc:  # a bug: keep the export and its cursor, retry later, show the error
        log.exception("export %s failed", export_id)
        error = RemoteCallError(Outcome.RETRY, f"internal error: {type(exc).__name__}: {exc}")
        return _on_error(job, error)
    finally:
        http.close()


def _status(job: Job) -> str:
    with job.db.session() as session:
        row = session.get(Export, job.export_id)
        if row is None or row.lease_owner != job.token:
            raise LeaseLost()
        return row.status


def _release(job: Job) -> None:
    with job.db.session() as session:
        row = _locked_row(session, job)
        row.lease_owner = None
        job.calls.flush(session)


def _end(job: Job, status: ExportStatus) -> str:
    with job.db.session() as session:
        row = _locked_row(session, job)
        row.cursor = dict(job.cursor)
        job.calls.flush(session)
        _finish(session, row, status, utcnow())
    return status.value


def _credentials_message(exc: RemoteCallError) -> str:
    if exc.message.startswith("BigCommerce"):
        return f"BigCommerce refused the app's access ({exc.message}); reinstall the app, then export again."
    return f"SALESmanago refused the credentials ({exc.message}): log in again, then export again."


def retry_delay(attempts: int) -> float:
    ceiling = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _on_error(job: Job, exc: RemoteCallError) -> str:
    """Retryable: wait (backoff) and go on from the cursor; otherwise the export fails with the reason.

    The row keeps the cursor of the last committed batch: `job.cursor` may already point past work
    whose transaction failed (a claim, a ledger write), and saving it would skip that work."""
    now = utcnow()
    with job.db.session() as session:
        row = _locked_row(session, job)
        job.calls.flush(session)
        if exc.outcome.retryable:
            row.attempts += 1
            row.failing_since = row.failing_since or now
            if now - row.failing_since >= GIVE_UP_AFTER:
                _finish(
                    session, row, ExportStatus.FAILED, now, f"Gave up after 24 h of failures: {exc.message}"
                )
                return ExportStatus.FAILED.value
            wait = max(retry_delay(row.attempts), exc.retry_after or 0.0)
            row.next_attempt_at = now + timedelta(seconds=wait)
            row.last_error = exc.message[:2000]
            row.lease_owner = None
            attempts = row.attempts
        else:
            message = _credentials_message(exc) if exc.outcome is Outcome.CREDENTIALS else exc.message
            _finish(session, row, ExportStatus.FAILED, now, message)
            return ExportStatus.FAILED.value
    log.info("export %s: attempt %s failed (%s); retrying in %.0f s", job.export_id, attempts, exc, wait)
    enqueue_export(job.export_id, delay=wait)
    return ExportStatus.RUNNING.value


# -- the ledger ------------------------------------------------------------------------------------


def _insert_ignoring_conflicts(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(SentEvent).on_conflict_do_nothing(index_elements=["store_id", "kind", "key"])
    session.execute(statement, rows)  # executemany: one compiled statement for the whole batch


def _mark_unconfirmed(session: Session, store_id: int, owner: str, now: datetime) -> None:
    """A batch's claims whose send may have arrived: sent for every purpose, never re-sent by itself."""
    session.execute(
        update(SentEvent)
        .where(SentEvent.store_id == store_id, SentEvent.claimed_by == owner, SentEvent.state == "claimed")
        .values(state="unconfirmed", sent_at=now)
    )


def _resolve_inflight(job: Job) -> None:
    """A batch left in flight by a dead worker: SALESmanago may have it. It is not sent again."""
    inflight = job.cursor.get("inflight")
    if not inflight:
        return
    owner = f"{job.claim_prefix}{inflight['batch']}"
    now = utcnow()

    def mark(session: Session) -> None:
        _mark_unconfirmed(session, job.store.id, owner, now)

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
    _commit(job, result, extra=mark)


# -- contacts --------------------------------------------------------------------------------------


def _in_range(job: Job, value: str | None) -> bool:
    when = mapping.parse_bc_date(value)
    if when is None:
        return True  # no date to check: BigCommerce's own filter decided
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return job.from_utc <= when <= job.to_utc


def _bc_time(value: datetime) -> str:
    """`2024-05-14T09:34:00` in UTC: the documented v3 date form (reference §3.1)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _customers_page(job: Job, after: str | None) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """One page of customers in the range: (customers, the `after` of the next page, total if given)."""
    params: dict[str, Any] = {
        "date_created:min": _bc_time(job.from_utc),
        "date_created:max": _bc_time(job.to_utc),
        "include": "addresses",
        "limit": job.page_size,
    }
    if after is None:
        params["page"] = 1
    else:
        params["after"] = after
    body = job.bc.get("/v3/customers", params) or {}
    data = body.get("data") or []
    meta = body.get("meta") or {}
    cursor_meta = meta.get("cursor_pagination") or {}
    has_next = bool((cursor_meta.get("links") or {}).get("next")) and bool(cursor_meta.get("end_cursor"))
    total = (meta.get("pagination") or {}).get("total")
    return data, (str(cursor_meta["end_cursor"]) if has_next and data else None), total


def _subscribers_prefetch(job: Job) -> None:
    """Read every subscriber page into `export_subscribers` (one page a transaction, resumable)."""
    for page, data, last in ReadAhead(_subscriber_pages(job, int(job.cursor.get("subscriber_page") or 1))):
        states: dict[str, bool] = {}
        for item in data:
            email = rules.normalize_email(item.get("email"))
            if email:  # one e-mail on several channels: subscribed on any counts
                states[email] = states.get(email, False) or NEWSLETTER in (item.get("consents") or [])
        job.cursor["subscriber_page"] = page + 1
        if last:
            job.cursor["subscribers"] = "loaded"

        def store_states(session: Session, states: dict[str, bool] = states) -> None:
            if not states:
                return
            existing = {
                email: opted_in
                for email, opted_in in session.execute(
                    select(ExportSubscriber.email, ExportSubscriber.opted_in).where(
                        ExportSubscriber.export_id == job.export_id,
                        ExportSubscriber.email.in_(list(states)),
                    )
                )
            }
            new = [
                {"export_id": job.export_id, "email": email, "opted_in": opted_in}
                for email, opted_in in states.items()
                if email not in existing
            ]
            now_subscribed = [  # seen on an earlier page without consent, with it on this one
                {"export_id": job.export_id, "email": email, "opted_in": True}
                for email, opted_in in states.items()
                if opted_in and email in existing and not existing[email]
            ]
            if new:
                session.execute(insert(ExportSubscriber.__table__), new)
            if now_subscribed:
                session.execute(update(ExportSubscriber), now_subscribed)

        _commit(job, BatchResult(), extra=store_states)


def _subscriber_pages(job: Job, page: int) -> Iterator[tuple[int, list[dict[str, Any]], bool]]:
    """(page number, subscribers, is it the last page), from `page` on."""
    while True:
        body = job.bc.get("/v3/customers/subscribers", {"page": page, "limit": PAGE_LIMIT}) or {}
        data = body.get("data") or []
        total_pages = int(((body.get("meta") or {}).get("pagination") or {}).get("total_pages") or 0)
        last = not data or page >= total_pages
        yield page, data, last
        if last:
            return
        page += 1


def _newsletter_states(job: Job, emails: list[str]) -> dict[str, bool]:
    """E-mail -> subscribed (True) or a subscriber record without consent (False); absent: none."""
    if job.cursor.get("subscribers") == "loaded":
        with job.db.session() as session:
            rows = session.execute(
                select(ExportSubscriber.email, ExportSubscriber.opted_in).where(
                    ExportSubscriber.export_id == job.export_id, ExportSubscriber.email.in_(emails)
                )
            ).all()
        return {email: bool(opted_in) for email, opted_in in rows}
    states: dict[str, bool] = {}
    for email in emails:  # few customers in the range: one `email` lookup each is cheaper
        body = job.bc.get("/v3/customers/subscribers", {"email": email}) or {}
        for item in body.get("data") or []:
            states[email] = states.get(email, False) or NEWSLETTER in (item.get("consents") or [])
    return states


def _plan_subscriber_reads(job: Job) -> None:
    """Choose how to learn newsletter states: read every subscriber page once (a store's subscribers
    in few pages), or look each exported e-mail up (a small range in a big store)."""
    if "subscribers" in job.cursor:
        return
    customers_total = _count_customers(job)
    body = job.bc.get("/v3/customers/subscribers", {"page": 1, "limit": 1}) or {}
    subscribers_total = int(((body.get("meta") or {}).get("pagination") or {}).get("total") or 0)
    pages = math.ceil(subscribers_total / PAGE_LIMIT)
    if pages == 0:
        job.cursor["subscribers"] = "loaded"  # no subscriber at all: nobody is opted in or out
    elif pages <= (customers_total or 0):
        job.cursor["subscribers"] = "pages"
    else:
        job.cursor["subscribers"] = "lookup"


def _count_customers(job: Job) -> int | None:
    params = {
        "date_created:min": _bc_time(job.from_utc),
        "date_created:max": _bc_time(job.to_utc),
        "limit": 1,
        "page": 1,
    }
    body = job.bc.get("/v3/customers", params) or {}
    total = ((body.get("meta") or {}).get("pagination") or {}).get("total")
    if total is None:
        return None
    with job.db.session() as session:
        _locked_row(session, job).total = int(total)
    return int(total)


def _customer_stream(job: Job) -> Iterator[tuple[dict[str, Any], str | None, int]]:
    """(customer, the `after` of its page, its index in the page), from the saved position on."""
    skip = int(job.cursor.get("skip") or 0)
    for customers, after in ReadAhead(_customer_pages(job, job.cursor.get("after"))):
        for index, customer in enumerate(customers):
            if index >= skip:
                yield customer, after, index
        skip = 0


def _customer_pages(job: Job, after: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """(customers, the `after` that reads this page again), from `after` on."""
    while True:
        customers, next_after, _ = _customers_page(job, after)
        yield customers, after
        if next_after is None:
            return
        after = next_after


def _contact_batches(job: Job) -> Iterator[Export]:
    _plan_subscriber_reads(job)
    if job.cursor.get("subscribers") == "pages":
        _subscribers_prefetch(job)
    stream = _customer_stream(job)
    while True:
        chunk: list[tuple[dict[str, Any], str | None, int]] = []
        for item in stream:
            chunk.append(item)
            if len(chunk) >= job.batch_size:
                break
        if not chunk:
            return
        yield _send_contacts(job, chunk)


def _send_contacts(job: Job, chunk: list[tuple[dict[str, Any], str | None, int]]) -> Export:
    result = BatchResult(done=len(chunk))
    wanted: dict[str, dict[str, Any]] = {}
    for customer, _, _ in chunk:
        if not _in_range(job, customer.get("date_created")):
            result.done -= 1  # BigCommerce's filter let it through: not ours to count
            continue
        email = rules.normalize_email(customer.get("email"))
        problem = rules.email_problem(email, job.settings.ignored_domains)
        if problem:
            result.skipped[_reason(problem)] += 1
            continue
        wanted[email] = customer  # the same e-mail twice (channels): the later record wins
    emails = list(wanted)
    states = _newsletter_states(job, emails) if emails else {}
    with job.db.session() as session:
        known = {
            c.email: c.opted_in
            for c in session.scalars(
                select(SyncedContact).where(
                    SyncedContact.store_id == job.store.id, SyncedContact.email.in_(emails)
                )
            )
        }
    upserts: list[dict[str, Any]] = []
    remembered: list[tuple[str, int, bool | None, str]] = []
    for email, customer in wanted.items():
        subscribed = states.get(email)
        flags = rules.consent_flags(subscribed, known.get(email))
        tags = [*job.tags, *(job.settings.tags_newsletter if flags.force_opt_in else [])]
        # No double opt-in in an export: these shoppers already confirmed in the store, and a batch
        # would send every one of them a confirmation e-mail (the SDK's export does the same).
        contact = mapping.contact_from_customer(
            customer, owner=job.owner, tags=tags, lang=job.lang(), consent=flags
        )
        upserts.append(contact.to_payload())
        remembered.append((email, int(customer.get("id") or 0), subscribed, contact.digest()))
    contact_ids: dict[str, str] = {}
    if upserts:
        try:
            answer = job.sm.batch_upsert(upserts)
        except RemoteCallError as exc:
            if exc.outcome is not Outcome.INVALID:
                raise
            result.failed["refused by SALESmanago"] += len(upserts)
            result.messages.append(f"Batch {job.batches + 1}: SALESmanago refused it: {exc.message}"[:500])
            upserts = []
        else:
            ids = answer.get("contactIds") if isinstance(answer, dict) else None
            contact_ids = {str(k).lower(): str(v) for k, v in (ids or {}).items()}
            result.sent += len(upserts)
    _, last_after, last_index = chunk[-1]
    job.batches += 1
    job.cursor["after"] = last_after
    job.cursor["skip"] = last_index + 1

    def remember(session: Session) -> None:
        if not upserts:
            return
        sent = [
            ContactSent(email, contact_ids.get(email), customer_id or None, subscribed, digest)
            for email, customer_id, subscribed, digest in remembered
        ]
        remember_contacts(session, job.store.id, sent)

    return _commit(job, result, extra=remember)


@dataclass(frozen=True)
class ContactSent:
    email: str
    contact_id: str | None
    customer_id: int | None
    opted_in: bool | None
    payload_hash: str | None = None


def remember_contacts(session: Session, store_id: int, sent: Sequence[ContactSent]) -> None:
    """Real time's contact ledger (`SyncedContact`, as `realtime.remember_contact` keeps it) for a
    whole batch: one read, one executemany insert and one executemany update (no ORM objects: this
    runs for every record of an export)."""
    if not sent:
        return
    columns = ("contact_id", "customer_id", "opted_in", "payload_hash")
    current = {
        row.email: row
        for row in session.execute(
            select(
                SyncedContact.id, SyncedContact.email, *(getattr(SyncedContact, c) for c in columns)
            ).where(SyncedContact.store_id == store_id, SyncedContact.email.in_([c.email for c in sent]))
        )
    }
    now = utcnow()
    merged: dict[str, dict[str, Any]] = {}
    for contact in sent:  # a value this batch does not know keeps what the ledger had
        before = merged.get(contact.email)
        if before is None:
            row = current.get(contact.email)
            before = merged[contact.email] = {
                "id": row.id if row is not None else None,
                **{c: (getattr(row, c) if row is not None else None) for c in columns},
            }
        if contact.contact_id:
            before["contact_id"] = contact.contact_id
        if contact.customer_id:
            before["customer_id"] = contact.customer_id
        if contact.opted_in is not None:
            before["opted_in"] = contact.opted_in
        if contact.payload_hash is not None:
            before["payload_hash"] = contact.payload_hash
    inserts, updates = [], []
    for email, values in merged.items():
        values = {**values, "deleted": False, "updated_at": now}
        if values["id"] is None:
            del values["id"]
            values.update(store_id=store_id, email=email, payload_hash=values["payload_hash"] or "")
            inserts.append(values)
        else:
            updates.append(values)
    if inserts:  # Core, not the ORM's bulk insert, which splits the rows by which values are None
        session.execute(insert(SyncedContact.__table__), inserts)
    if updates:
        session.execute(update(SyncedContact), updates)  # by primary key, one executemany


def _reason(problem: str) -> str:
    """A per-record reason as a category to count ("ignored e-mail domain x.com" -> without x.com)."""
    for prefix in ("ignored e-mail domain", "invalid e-mail address"):
        if problem.startswith(prefix):
            return prefix
    return problem


# -- events ----------------------------------------------------------------------------------------


@dataclass
class PlannedEvent:
    kind: EventKind
    key: str
    order_id: int
    email: str
    item: dict[str, Any]  # one entry of addBatchContactExtEvent's `events`


@dataclass
class OrderPlan:
    order_id: int
    in_range: bool = True
    events: list[PlannedEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    contact: tuple[str, dict[str, Any], bool | None] | None = None  # email, upsert payload, subscribed


def _orders_total(job: Job) -> None:
    if job.cursor.get("counted"):
        return
    params = {
        "min_date_created": job.from_utc.isoformat(),
        "max_date_created": job.to_utc.isoformat(),
    }
    # UNCONFIRMED whether /v2/orders/count honours these filters; the total is only an estimate for
    # the progress bar and is set to the real count when the export ends.
    body = job.bc.get("/v2/orders/count", params) or {}
    with job.db.session() as session:
        row = _locked_row(session, job)
        if body.get("count") is not None:
            row.total = int(body["count"])
    job.cursor["counted"] = True


def _order_pages(job: Job) -> Iterator[list[dict[str, Any]]]:
    params = {
        **job.bc.ORDER_INCLUDE,
        "min_date_created": job.from_utc.isoformat(),
        "max_date_created": job.to_utc.isoformat(),
    }
    after = job.cursor.get("after_id")
    yield from V2Pages(job.bc, "/v2/orders", params, limit=job.page_size, cursor=after)


def _plan_page(job: Job, orders: list[dict[str, Any]]) -> list[OrderPlan]:
    """Map one page of orders as real time would, leaving out what the ledger already has."""
    ids = [int(o["id"]) for o in orders]
    refunded = [int(o["id"]) for o in orders if _money(o.get("refunded_amount")) > 0]
    refunds: dict[int, list[dict[str, Any]]] = {}
    if refunded:
        for refund in job.bc.refunds(order_ids=refunded):
            refunds.setdefault(int(refund.get("order_id") or 0), []).append(refund)
    with job.db.session() as session:
        ledger = {
            (kind, key): state
            for kind, key, state in session.execute(
                select(SentEvent.kind, SentEvent.key, SentEvent.state).where(
                    SentEvent.store_id == job.store.id, SentEvent.order_id.in_(ids)
                )
            )
        }
        emails = {mapping.order_email(o) for o in orders}
        known = {
            email: opted_in
            for email, opted_in in session.execute(
                select(SyncedContact.email, SyncedContact.opted_in).where(
                    SyncedContact.store_id == job.store.id, SyncedContact.email.in_(list(emails))
                )
            )
        }
    plans = []
    for order in orders:
        plans.append(_plan_order(job, order, refunds.get(int(order["id"]), []), ledger, known))
    return plans


def _money(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _plan_order(
    job: Job,
    order: dict[str, Any],
    refunds: list[dict[str, Any]],
    ledger: dict[tuple[str, str], str],
    known: dict[str, bool | None],
) -> OrderPlan:
    order_id = int(order["id"])
    plan = OrderPlan(order_id)
    if not _in_range(job, order.get("date_created")):
        plan.in_range = False  # BigCommerce's filter let it through: not ours to count
        return plan
    email = mapping.order_email(order)
    problem = rules.email_problem(email, job.settings.ignored_domains)
    if problem:
        plan.skipped[_reason(problem)] += 1
        return plan
    status_id = int(order.get("status_id") or 0)
    kind = rules.order_event_kind(status_id, job.settings.purchase_statuses)
    wanted: list[tuple[EventKind, str, dict[str, Any] | None]] = []
    if kind is EventKind.PURCHASE:
        wanted.append((kind, str(order_id), None))
    elif kind is EventKind.CANCELLATION:
        if ledger.get((EventKind.PURCHASE.value, str(order_id))) in SENT_STATES:
            wanted.append((kind, str(order_id), None))
        else:
            plan.skipped["cancelled before any PURCHASE was sent"] += 1
    elif not refunds:
        plan.skipped["order status sends no event"] += 1
    for refund in refunds:
        wanted.append((EventKind.RETURN, str(refund.get("id")), refund))
    todo = []
    for event_kind, key, refund in wanted:
        if (event_kind.value, key) in ledger:
            plan.skipped["already sent"] += 1
        else:
            todo.append((event_kind, key, refund))
    if not todo:
        return plan
    items = mapping.order_line_items(order)
    if items is None:
        items = job.bc.order_products(order_id)
    location = mapping.channel_location(
        job.settings, job.store.sites or [], int(order.get("channel_id") or 1)
    )
    for event_kind, key, refund in todo:
        if refund is not None:
            event = mapping.return_event(
                order, refund, items, settings=job.settings, location=location, owner=job.owner
            )
        else:
            modified = mapping.parse_bc_date(order.get("date_modified"))
            event = mapping.order_event(
                order,
                items,
                kind=event_kind,
                settings=job.settings,
                location=location,
                owner=job.owner,
                date=None if event_kind is EventKind.PURCHASE else modified,
            )
        item = {"email": email, "contactEvent": event.contact_event()}
        plan.events.append(PlannedEvent(event_kind, key, order_id, email, item))
    # The buyer as real time sends it with a PURCHASE: billing data, purchase/guest tags, and the
    # checkout's newsletter box (an unticked box says nothing, so nobody is opted in by accident).
    subscribed = True if order.get("is_email_opt_in") else None
    flags = rules.consent_flags(subscribed, known.get(email))
    contact = mapping.contact_from_order(
        order,
        owner=job.owner,
        settings=job.settings,
        consent=flags,
        extra_tags=job.settings.tags_newsletter if flags.force_opt_in else (),
    )
    plan.contact = (email, contact.to_payload(), subscribed)
    return plan


def _order_plans(job: Job) -> Iterator[OrderPlan]:
    for page in ReadAhead(_order_pages(job)):
        yield from _plan_page(job, page)


def plan_batches(plans: Iterable[OrderPlan], batch_size: int) -> Iterator[list[OrderPlan]]:
    """Whole orders per batch, at most `batch_size` events each (an order with more events than that
    goes alone); orders that send nothing ride along, so the cursor moves past them too."""
    batch: list[OrderPlan] = []
    count = 0
    for plan in plans:
        if batch and count + len(plan.events) > batch_size:
            yield batch
            batch, count = [], 0
        batch.append(plan)
        count += len(plan.events)
        if count >= batch_size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def _event_batches(job: Job) -> Iterator[Export]:
    _orders_total(job)
    for batch in plan_batches(_order_plans(job), job.batch_size):
        yield _send_events(job, batch)


def _send_events(job: Job, batch: list[OrderPlan]) -> Export:
    result = BatchResult(done=sum(1 for plan in batch if plan.in_range))
    for plan in batch:
        result.skipped.update(plan.skipped)
    after_id = max(plan.order_id for plan in batch)
    planned = [event for plan in batch for event in plan.events]
    if not planned:
        job.cursor["after_id"] = after_id
        return _commit(job, result)
    # 1. Buyers first (idempotent, so a crash here only means they are upserted again).
    contacts: dict[str, tuple[dict[str, Any], bool | None]] = {}
    for plan in batch:
        if plan.contact is not None:
            email, payload, subscribed = plan.contact
            earlier = contacts.get(email)
            # One upsert per buyer: the first order's data; subscribed if any order ticked the box.
            contacts[email] = (earlier[0], earlier[1] or subscribed) if earlier else (payload, subscribed)
    contact_ids: dict[str, str] = {}
    for start in range(0, len(contacts), job.batch_size):
        chunk = list(contacts.items())[start : start + job.batch_size]
        answer = job.sm.batch_upsert([payload for _, (payload, _) in chunk])
        ids = answer.get("contactIds") if isinstance(answer, dict) else None
        contact_ids.update({str(k).lower(): str(v) for k, v in (ids or {}).items()})
    # 2. Claim the events (insert first) and mark the batch in flight, in one transaction.
    job.batches += 1
    batch_no = job.batches
    owner = f"{job.claim_prefix}{batch_no}"
    now = utcnow()
    mine: set[tuple[str, str]] = set()

    def claim(session: Session) -> None:
        _insert_ignoring_conflicts(
            session,
            [
                {
                    "store_id": job.store.id,
                    "kind": e.kind.value,
                    "key": e.key,
                    "order_id": e.order_id,
                    "state": "claimed",
                    "claimed_by": owner,
                    "claimed_at": now,
                    "email": e.email,
                }
                for e in planned
            ],
        )
        rows = session.execute(
            select(SentEvent.kind, SentEvent.key).where(
                SentEvent.store_id == job.store.id, SentEvent.claimed_by == owner
            )
        ).all()
        mine.update((kind, key) for kind, key in rows)
        job.cursor["inflight"] = {
            "batch": batch_no,
            "after_id": after_id,
            "orders": len(batch),
            "events": len(mine),
            "skipped": dict(result.skipped + Counter({"already sent": len(planned) - len(mine)})),
        }

    with job.db.session() as session:
        row = _locked_row(session, job)
        claim(session)
        row.cursor = dict(job.cursor)
        row.batches = job.batches
        row.heartbeat_at = now
    sending = [e for e in planned if (e.kind.value, e.key) in mine]
    result.skipped["already sent"] += len(planned) - len(sending)
    if not sending:
        job.cursor.pop("inflight")
        job.cursor["after_id"] = after_id
        return _commit(job, result)
    # 3. Send once; record the answer with the cursor.
    try:
        answer = job.sm_once.add_batch_events([e.item for e in sending])
    except RemoteCallError as exc:
        return _events_failed(job, exc, sending, result, owner, after_id, batch_no)
    event_ids = answer.get("eventIds") if isinstance(answer, dict) else None
    if not isinstance(event_ids, list) or len(event_ids) != len(sending):
        event_ids = [None] * len(sending)  # UNCONFIRMED per-item answer format (reference §12.2)
    result.sent += len(sending)
    job.cursor.pop("inflight")
    job.cursor["after_id"] = after_id

    def mark_sent(session: Session) -> None:
        sent_at = utcnow()
        ids = {
            (kind, key): row_id
            for row_id, kind, key in session.execute(
                select(SentEvent.id, SentEvent.kind, SentEvent.key).where(
                    SentEvent.store_id == job.store.id, SentEvent.claimed_by == owner
                )
            )
        }
        session.execute(  # one executemany by primary key, not one statement per event
            update(SentEvent),
            [
                {
                    "id": ids[(event.kind.value, event.key)],
                    "state": "sent",
                    "event_id": str(event_id) if event_id else None,
                    "contact_id": contact_ids.get(event.email),
                    "sent_at": sent_at,
                }
                for event, event_id in zip(sending, event_ids, strict=True)
                if (event.kind.value, event.key) in ids
            ],
        )
        remember_contacts(
            session,
            job.store.id,
            [
                ContactSent(email, contact_ids.get(email), None, subscribed)
                for email, (_, subscribed) in contacts.items()
            ],
        )

    return _commit(job, result, extra=mark_sent)


def _events_failed(
    job: Job,
    exc: RemoteCallError,
    sending: list[PlannedEvent],
    result: BatchResult,
    owner: str,
    after_id: int,
    batch_no: int,
) -> Export:
    """Nothing arrived (an error answer, no connection): release the claims; a refusal is counted and
    the export goes on; anything retryable is planned again after a backoff. No answer at all after
    the request went out: SALESmanago may have it, so it counts as sent (unconfirmed)."""
    may_have_arrived = exc.status is None and not job.tracker.not_delivered
    if may_have_arrived:
        job.cursor.pop("inflight", None)
        job.cursor["after_id"] = after_id
        result.sent += len(sending)
        result.unconfirmed += len(sending)
        result.messages.append(
            f"Batch {batch_no}: no answer from SALESmanago ({exc.message}); the {len(sending)} events "
            "were not sent again, so nothing is duplicated. " + UNCONFIRMED_HINT
        )

        def mark(session: Session) -> None:
            _mark_unconfirmed(session, job.store.id, owner, utcnow())

        return _commit(job, result, extra=mark)

    def release(session: Session) -> None:
        session.execute(
            delete(SentEvent).where(
                SentEvent.store_id == job.store.id,
                SentEvent.claimed_by == owner,
                SentEvent.state == "claimed",
            )
        )

    job.cursor.pop("inflight", None)
    if exc.outcome is Outcome.INVALID:
        job.cursor["after_id"] = after_id
        result.failed["refused by SALESmanago"] += len(sending)
        result.messages.append(f"Batch {batch_no}: SALESmanago refused it: {exc.message}"[:500])
        return _commit(job, result, extra=release)
    with job.db.session() as session:  # the cursor stays before this batch: it is planned again
        row = _locked_row(session, job)
        release(session)
        row.cursor = dict(job.cursor)
    raise exc


# -- queue and sweep -------------------------------------------------------------------------------


@huey.task()
def run_export_task(export_id: int) -> None:
    run_export(export_id)


def enqueue_export(export_id: int, delay: float | None = None) -> None:
    """Ask a worker to run it; if the queue is down, the sweep finds the row later."""
    try:
        if delay:
            run_export_task.schedule((export_id,), delay=delay)
        else:
            run_export_task(export_id)
    except Exception:
        log.warning("could not enqueue export %s; the sweep will pick it up", export_id, exc_info=True)


def due_export_ids(db: Database, now: datetime | None = None) -> list[int]:
    """Active exports nobody runs: queued or waiting for a retry that is due, and those whose worker
    stopped sending heartbeats (killed, crashed)."""
    now = now or utcnow()
    with db.session() as session:
        return list(
            session.scalars(
                select(Export.id)
                .where(
                    Export.status.in_([s.value for s in ACTIVE_STATUSES]),
                    or_(Export.lease_owner.is_(None), Export.heartbeat_at < now - LEASE_STALE),
                    or_(Export.next_attempt_at.is_(None), Export.next_attempt_at <= now),
                )
                .order_by(Export.id)
            )
        )


def sweep_exports(db: Database | None = None, now: datetime | None = None) -> int:
    from smbc.core.runtime import get_runtime

    ids = due_export_ids(db or get_runtime().db, now)
    for export_id in ids:
        enqueue_export(export_id)
    return len(ids)


@huey.periodic_task(crontab(minute="*"))
def sweep_exports_task() -> None:
    sweep_exports()
