"""Archival export, what the dashboard and the CLI call: check a request, start, cancel, send the
unconfirmed events of an export again, list recent exports and their progress.

An export is a row (`smbc.export.models.Export`) that a worker runs batch by batch (`runner`): customers
as contacts (`contacts`) or orders as external events (`events`), created in a date range."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.account.credentials import get_account
from smbc.bigcommerce.client import PAGE_LIMIT
from smbc.core.clock import get_clock, utcnow
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.export.job import MESSAGES_KEPT, finish_export
from smbc.export.ledger import release_unconfirmed
from smbc.export.models import Export, ExportKind, ExportStatus
from smbc.export.runner import enqueue_export, run_export
from smbc.settings.store_settings import normalize_tags

BATCH_SIZE = 400  # contacts or events per SALESmanago call, as SALESmanago's own plugins send
TAG_MAX = 255


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
    released = release_unconfirmed(session, store_id, old_id)
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
            finish_export(session, row, ExportStatus.CANCELLED, now)
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


# -- running in the foreground (the CLI) ------------------------------------------------------------


def export_row(db: Database, export_id: int) -> Export:
    """The export's row as it is now (detached: readable after the session)."""
    with db.session() as session:
        row = session.get(Export, export_id)
        if row is None:
            raise LookupError(f"There is no export #{export_id}.")
        session.expunge(row)
        return row


def run_in_foreground(
    db: Database,
    export_id: int,
    *,
    on_batch: Callable[[Export], None],
    on_wait: Callable[[Export, float], None],
) -> Export:
    """Run the export in this process until it ends (the CLI): batch after batch, waiting out each
    retry (`on_wait(row, seconds)` first: the row says which attempt failed and why), or watching
    while a worker runs it. The final row."""
    while True:
        ran = run_export(export_id, db=db, time_slice=None, on_batch=on_batch, force=True)
        current = export_row(db, export_id)
        on_batch(current)
        if current.status != ExportStatus.RUNNING.value:
            return current
        if ran is None:
            get_clock().sleep(1.0)  # a worker runs it right now: show its progress
        elif current.next_attempt_at is not None:
            wait = max((current.next_attempt_at - utcnow()).total_seconds(), 0.0)
            on_wait(current, wait)
            get_clock().sleep(wait)
