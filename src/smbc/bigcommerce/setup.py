"""The store's set-up job, run after every install/re-auth: read the store, its channels and sites,
keep them on the Store row, then register the app's webhooks.

A plain function (`run_store_setup`) plus a Huey task carrying only the store's row id. A periodic
sweep re-enqueues stores whose set-up has not completed, so a lost queue message or a BigCommerce
outage only delays it.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

import httpx
from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.clock import utcnow
from smbc.db.models import Store
from smbc.jobs import huey
from smbc.remote_calls import Outcome, record_call
from smbc.runtime import get_runtime

log = logging.getLogger(__name__)

SETUP_TIMEOUT = 20.0


class SetupFailed(Exception):
    pass


def run_store_setup(store_id: int, *, transport: httpx.BaseTransport | None = None) -> bool:
    """Returns True when the store is set up (False: not installed any more, nothing done)."""
    runtime = get_runtime()
    with runtime.db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed or not store.access_token:
            return False
        base = f"{runtime.settings.bc_api_url}/stores/{store.hash}"
        headers = {"X-Auth-Token": store.access_token, "Accept": "application/json"}
    # Minimal reads of our own until the REST client (bigcommerce/client.py) lands.
    with httpx.Client(base_url=base, headers=headers, timeout=SETUP_TIMEOUT, transport=transport) as http:
        calls: list[dict[str, Any]] = []
        try:
            info = _get(http, "/v2/store", calls)
            channels = _get_list(http, "/v3/channels", calls)
            sites = _get_list(http, "/v3/sites", calls)
        except SetupFailed as exc:
            with runtime.db.session() as session:
                _record(session, store_id, calls)
            log.warning("store set-up failed", extra={"store_id": store_id, "reason": str(exc)})
            return False
    with runtime.db.session() as session:
        _record(session, store_id, calls)
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            return False
        apply_store_info(store, info, channels, sites)
        # Real-time area's registration, used once it exists (switched to a direct call at merge).
        register = getattr(_optional_module("smbc.bigcommerce.webhooks"), "register_webhooks", None)
        if register is not None:
            register(session, store)
        store.setup_completed_at = utcnow()
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


def _get(http: httpx.Client, path: str, calls: list[dict[str, Any]]) -> Any:
    started = time.monotonic()
    try:
        response = http.get(path)
    except httpx.HTTPError as exc:
        calls.append(_call(path, Outcome.RETRY, None, started, type(exc).__name__))
        raise SetupFailed(f"{path}: {type(exc).__name__}") from None
    ok = response.status_code == 200
    outcome = (
        Outcome.SUCCESS
        if ok
        else Outcome.CREDENTIALS
        if response.status_code in (401, 403)
        else Outcome.RETRY
    )
    calls.append(
        _call(path, outcome, response.status_code, started, "" if ok else f"HTTP {response.status_code}")
    )
    if not ok:
        raise SetupFailed(f"{path}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SetupFailed(f"{path}: not JSON") from None


def _get_list(http: httpx.Client, path: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A v3 list, all pages (`data` + `meta.pagination`)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = _get(http, f"{path}?page={page}&limit=250", calls)
        items.extend(body.get("data") or [])
        pagination = (body.get("meta") or {}).get("pagination") or {}
        if page >= int(pagination.get("total_pages") or 1):
            return items
        page += 1


def _call(path: str, outcome: Outcome, status: int | None, started: float, message: str) -> dict[str, Any]:
    return {
        "service": "bigcommerce",
        "method": "GET",
        "endpoint": path.split("?", 1)[0],
        "outcome": outcome.value,
        "status": status,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "message": message,
        "context": "setup",
    }


def _record(session: Session, store_id: int, calls: list[dict[str, Any]]) -> None:
    for call in calls:
        record_call(session, store_id=store_id, **call)


def _optional_module(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


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
