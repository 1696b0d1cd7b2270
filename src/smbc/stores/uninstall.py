"""An uninstall acted on only when BigCommerce confirms it, and the SALESmanago v3 key revoked after.

The uninstall callback's signed payload proves only that BigCommerce signed something for this store
(a load payload verifies alike), so the app asks BigCommerce: the app is gone when the store's token
is refused (401), or when the token no longer lists the app's webhooks (BigCommerce deletes them on
uninstall). When BigCommerce cannot be asked, the store is paused (`UNINSTALL_UNCONFIRMED`) and a
queued row asks again with retries; nothing is wiped until it confirms. Once confirmed, the store's
secrets are wiped and another queued row revokes the v3 key (it never expires on its own)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import Index, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.account.credentials import get_account
from smbc.account.login import revoke_v3_key
from smbc.bigcommerce.client import BigCommerceClient, shared_http
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.base import Base
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.db.types import EncryptedText
from smbc.engine import queue
from smbc.engine.context import Result, RowStatus
from smbc.engine.pausing import PauseReason, pause_store, resume_store
from smbc.stores.hooks import webhook_destination
from smbc.stores.installation import uninstall_store

log = logging.getLogger(__name__)

CONFIRM = "confirm"
REVOKE_V3_KEY = "revoke_v3_key"
ONE_TRY = BackoffPolicy(attempts=1)  # the callback answers BigCommerce now; retries are queued rows
# BigCommerce may be unreachable for a while; the store stays paused, and the key alive, meanwhile.
RETRY = queue.RetryPolicy(give_up_after=timedelta(days=7))


class UninstallTask(queue.QueuedRow, Base):
    """Work left after an uninstall callback: confirm it with BigCommerce, or revoke the v3 key."""

    __tablename__ = "uninstall_tasks"
    __table_args__ = (Index("ix_uninstall_tasks_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # confirm | revoke_v3_key
    v3_key: Mapped[str | None] = mapped_column(EncryptedText)  # cleared once revoked or given up


class Answer(StrEnum):
    UNINSTALLED = "uninstalled"  # the token is refused, or the app's webhooks are gone
    INSTALLED = "installed"  # the token works and lists the app's webhooks
    UNKNOWN = "unknown"  # BigCommerce could not be asked


class UninstallOutcome(StrEnum):
    UNINSTALLED = "uninstalled"
    STILL_INSTALLED = "still_installed"
    UNCONFIRMED = "unconfirmed"  # paused; a queued row asks again
    NOT_INSTALLED = "not_installed"  # unknown store, or uninstalled already


@dataclass(frozen=True)
class _StoreToken:
    id: int
    hash: str
    access_token: str
    set_up: bool  # set-up registered the webhooks: their absence then means something


def ask_bigcommerce(store: _StoreToken, http: httpx.Client | None = None) -> Answer:
    """Whether the app is still installed, by what the store's token can still do (no transaction)."""
    client = BigCommerceClient(
        store.hash,
        store.access_token,
        get_runtime().settings.bc_api_url,
        http=http or shared_http(),
        policy=ONE_TRY,
        store_id=store.id,
        context="uninstall",
    )
    try:
        hooks = client.hooks()
    except RemoteCallError as exc:
        if exc.status == 401:
            return Answer.UNINSTALLED
        log.warning("uninstall of store %s not confirmed yet: %s", store.id, exc.outcome)
        return Answer.UNKNOWN
    destination = webhook_destination(get_runtime().settings.app_url)
    if store.set_up and not any(hook.get("destination") == destination for hook in hooks):
        return Answer.UNINSTALLED
    return Answer.INSTALLED


def _installed_token(store: Store | None) -> _StoreToken | None:
    if store is None or not store.installed or not store.access_token:
        return None
    return _StoreToken(store.id, store.hash, store.access_token, store.setup_completed_at is not None)


def uninstall_when_confirmed(
    db: Database, store_hash: str, *, http: httpx.Client | None = None
) -> UninstallOutcome:
    """The uninstall callback's work: ask BigCommerce, then wipe, do nothing, or pause and ask later."""
    with db.session() as session:
        token = _installed_token(session.scalar(select(Store).where(Store.hash == store_hash)))
    if token is None:
        return UninstallOutcome.NOT_INSTALLED
    answer = ask_bigcommerce(token, http)
    if answer is Answer.UNINSTALLED:
        confirm_uninstall(db, token.id)
        return UninstallOutcome.UNINSTALLED
    if answer is Answer.INSTALLED:
        log.warning(
            "uninstall callback for store %s refused: BigCommerce says the app is still installed", token.id
        )
        return UninstallOutcome.STILL_INSTALLED
    with db.session() as session:
        pause_store(session, token.id, PauseReason.UNINSTALL_UNCONFIRMED)
        row_id = _pending_confirmation(session, token.id)
    enqueue_uninstall_task(row_id)
    return UninstallOutcome.UNCONFIRMED


def _pending_confirmation(session: Session, store_id: int) -> int:
    """The store's confirmation row that is still to run, or a new one."""
    existing = session.scalar(
        select(UninstallTask.id).where(
            UninstallTask.store_id == store_id,
            UninstallTask.kind == CONFIRM,
            UninstallTask.status.in_((RowStatus.PENDING.value, RowStatus.PROCESSING.value)),
        )
    )
    if existing is not None:
        return existing
    row = UninstallTask(store_id=store_id, kind=CONFIRM, status=RowStatus.PENDING.value)
    session.add(row)
    session.flush()
    return row.id


def confirm_uninstall(db: Database, store_id: int) -> None:
    """Wipe the store's token and secrets (BigCommerce confirmed), then queue the v3 key's revocation."""
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            return
        account = get_account(session, store.id)
        v3_key = account.v3_key if account is not None else None
        uninstall_store(session, store.hash)
        session.execute(
            update(UninstallTask)
            .where(UninstallTask.store_id == store_id, UninstallTask.kind == CONFIRM)
            .where(UninstallTask.status == RowStatus.PENDING.value)
            .values(status=RowStatus.DONE.value, reason="uninstall confirmed", processed_at=utcnow())
        )
        revoke_id = None
        if v3_key:
            row = UninstallTask(store_id=store_id, kind=REVOKE_V3_KEY, v3_key=v3_key)
            session.add(row)
            session.flush()
            revoke_id = row.id
    log.info("store uninstalled", extra={"store_id": store_id})
    if revoke_id is not None:
        enqueue_uninstall_task(revoke_id)


# -- the queued rows ------------------------------------------------------------------------------


@huey.task()
def uninstall_task(row_id: int) -> None:
    run_uninstall_task(row_id)


def enqueue_uninstall_task(row_id: int) -> None:
    queue.enqueue_or_leave(uninstall_task, row_id, what="uninstall task")


def run_uninstall_task(
    row_id: int, *, db: Database | None = None, http: httpx.Client | None = None
) -> Result | None:
    """Run one row (None: not due, or another worker has it)."""
    db = db or get_runtime().db
    now = utcnow()
    with db.session() as session:
        if not queue.claim(session, UninstallTask, row_id, now):
            return None
        row = session.get(UninstallTask, row_id)
        assert row is not None
        token = _installed_token(session.get(Store, row.store_id))
        session.expunge(row)
    result = _revoke(db, row, http) if row.kind == REVOKE_V3_KEY else _confirm(db, row, token, http)
    with db.session() as session:
        result = queue.finish(session, UninstallTask, row, result, utcnow(), RETRY)
        if result.status is not RowStatus.PENDING:
            session.execute(update(UninstallTask).where(UninstallTask.id == row.id).values(v3_key=None))
    if row.kind == REVOKE_V3_KEY and result.status is RowStatus.FAILED:
        log.error(
            "the SALESmanago API v3 key of uninstalled store %s could not be revoked (%s): remove it in "
            "SALESmanago under Settings > Integration > API v3",
            row.store_id,
            result.error or result.reason,
        )
    return result


def _confirm(
    db: Database, row: UninstallTask, token: _StoreToken | None, http: httpx.Client | None
) -> Result:
    if token is None:
        return Result.done("store not installed")
    answer = ask_bigcommerce(token, http)
    if answer is Answer.UNINSTALLED:
        confirm_uninstall(db, token.id)
        return Result.done("uninstall confirmed")
    if answer is Answer.INSTALLED:
        log.warning(
            "uninstall callback for store %s refused: BigCommerce says the app is still installed", token.id
        )
        resume_store(token.id, db=db, reasons=(PauseReason.UNINSTALL_UNCONFIRMED,))
        return Result.done("still installed")
    return Result.retry("BigCommerce could not be asked")


def _revoke(db: Database, row: UninstallTask, http: httpx.Client | None) -> Result:
    if not row.v3_key:
        return Result.done("no key")
    try:
        revoke_v3_key(db, row.store_id, get_runtime().settings, row.v3_key, http, context="uninstall")
    except RemoteCallError as exc:
        log.warning("v3 key of store %s not revoked yet: %s", row.store_id, exc.outcome)
        if exc.outcome is Outcome.CREDENTIALS:  # SALESmanago no longer knows the key
            return Result.done("v3 key gone")
        result = queue.result_for(exc)
        result.error = result.error.replace(row.v3_key, "***")
        result.reason = result.reason.replace(row.v3_key, "***")
        return result
    return Result.done("v3 key revoked")


def due_uninstall_task_ids(
    db: Database, now: datetime | None = None, limit: int = queue.SWEEP_LIMIT
) -> list[int]:
    """Rows to run now: due retries, rows whose queue message was lost, rows of a worker that died."""
    now = now or utcnow()
    with db.session() as session:
        return queue.due_row_ids(session, UninstallTask, now, limit, resumable_stores=select(Store.id))


UNINSTALL_TASKS = queue.register_queue(
    queue.QueueKind("uninstall_tasks", due_uninstall_task_ids, enqueue_uninstall_task)
)
