"""The store's set-up job, run after every install/re-auth: read the store, its channels and sites,
register the app's webhooks (idempotent), then keep what was read on the Store row.

A plain function (`run_store_setup`) plus a Huey task carrying only the store's row id. A periodic
sweep re-enqueues stores whose set-up has not completed, so a lost queue message or a BigCommerce
outage only delays it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import CallBuffer, for_store
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.engine.pausing import PauseReason, resume_store
from smbc.stores.hooks import register_webhooks

log = logging.getLogger(__name__)


_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _store_lock(store_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(store_id, threading.Lock())


def run_store_setup(store_id: int, *, http: httpx.Client | None = None) -> bool:
    """Returns True when the store is set up (False: not installed, or BigCommerce failed: the
    sweep tries again). Network calls happen outside database transactions."""
    # One set-up per store at a time in this process (the queued job and a sweep or a direct call
    # would otherwise race to create the same webhooks).
    with _store_lock(store_id):
        return _run_store_setup(store_id, http)


def _run_store_setup(store_id: int, http: httpx.Client | None) -> bool:
    runtime = get_runtime()
    calls = CallBuffer(context="setup")
    with runtime.db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed or not store.access_token:
            return False
    client = for_store(store, recorder=calls, context="setup", http=http)
    try:
        info, channels, sites = client.store_info(), client.channels(), client.sites()
        register_webhooks(runtime.db, store_id, client)  # None when uninstalled meanwhile: seen below
    except RemoteCallError as exc:
        with runtime.db.session() as session:
            calls.flush(session)
        log.warning("store set-up failed", extra={"store_id": store_id, "reason": exc.message})
        return False
    with runtime.db.session() as session:
        calls.flush(session)
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            return False
        apply_store_info(store, info, channels, sites)
        store.setup_completed_at = utcnow()
        token_was_refused = store.sync_paused_reason == PauseReason.BIGCOMMERCE_CREDENTIALS
    if token_was_refused:  # the token works again (re-install / re-auth): what waited goes on
        resume_store(store_id, reasons=(PauseReason.BIGCOMMERCE_CREDENTIALS,))
    log.info("store set up", extra={"store_id": store_id})
    return True


def apply_store_info(
    store: Store, info: dict[str, Any], channels: list[dict[str, Any]], sites: list[dict[str, Any]]
) -> None:
    """Pure mapping of the three reads onto the Store row."""
    store.info = info
    store.channels = channels
    store.sites = sites
    if info.get("store_id") is not None:
        store.store_id = str(info["store_id"])
    timezone = info.get("timezone")
    if isinstance(timezone, dict) and timezone.get("name"):
        store.timezone = str(timezone["name"])


def enqueue_store_setup(store_id: int) -> None:
    """Queue the set-up; when the queue is down the periodic sweep catches up later."""
    try:
        store_setup_task(store_id)
    except Exception:
        log.exception("could not enqueue store set-up", extra={"store_id": store_id})


def stores_needing_setup(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Store.id).where(Store.status == "installed", Store.setup_completed_at.is_(None))
        )
    )


@huey.task()
def store_setup_task(store_id: int) -> bool:
    return run_store_setup(store_id)


@huey.periodic_task(crontab(minute="*/10"))
def store_setup_sweep() -> None:
    with get_runtime().db.session() as session:
        pending = stores_needing_setup(session)
    for store_id in pending:
        enqueue_store_setup(store_id)
