"""The archival export's actions (the Export Data tab and `smbc export` alike): start an export from
the form's text, cancel one, send an export's unconfirmed events again. The store is named by its
hash; the export's own rules live in `smbc.export.service`."""

from __future__ import annotations

from dataclasses import dataclass

from smbc.actions.store_lookup import installed_store
from smbc.db.session import Database
from smbc.export import service
from smbc.export.models import Export, ExportKind


@dataclass(frozen=True)
class ExportStarted:
    export: Export  # the queued row, detached
    timezone: str


def start_export(
    db: Database,
    store_hash: str,
    kind: ExportKind | str,
    *,
    date_from: str,
    date_to: str,
    tags: str = "",
    actor: str,
    enqueue: bool = True,
) -> ExportStarted:
    """Check the request (dates as typed, whole days in the store's time zone; tags for contacts
    only) and record the export; `enqueue` hands it to a worker (the CLI runs it itself). Raises
    StoreNotInstalled, ExportInvalid (nothing recorded) or ExportAlreadyRunning."""
    kind = ExportKind(kind)
    with db.session() as session:
        store = installed_store(session, store_hash)
        store_id, today = store.id, service.store_today(store)
    if kind is ExportKind.EVENTS and tags.strip():
        raise service.ExportInvalid({"tags": "Tags apply to contacts exports only."})
    first, last, tag_list = service.parse_request(date_from, date_to, tags, today=today)
    export_id = service.start_export(
        db, store_id, kind, first, last, tags=tag_list, actor=actor, enqueue=enqueue
    )
    return _started(db, export_id)


def resend_unconfirmed(
    db: Database, store_hash: str, export_id: int, *, actor: str, enqueue: bool = True
) -> ExportStarted:
    """A new events export that sends the unconfirmed events of `export_id` again. Raises
    StoreNotInstalled, ExportInvalid (nothing to send again) or ExportAlreadyRunning."""
    export_id = service.resend_unconfirmed(
        db, _store_id(db, store_hash), export_id, actor=actor, enqueue=enqueue
    )
    return _started(db, export_id)


def cancel_export(db: Database, store_hash: str, export_id: int) -> bool:
    """Stop a running export after its current batch; False when it is not running (or not this
    store's). Raises StoreNotInstalled."""
    return service.cancel_export(db, _store_id(db, store_hash), export_id)


def _store_id(db: Database, store_hash: str) -> int:
    with db.session() as session:
        return installed_store(session, store_hash).id


def _started(db: Database, export_id: int) -> ExportStarted:
    row = service.export_row(db, export_id)
    return ExportStarted(export=row, timezone=row.timezone)
