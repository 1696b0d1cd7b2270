"""The control-panel callbacks: install/re-auth, load, uninstall, remove-user. Thin handlers: the
work is in `installation.py`, the JWT check in `signed_payload.py`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from smbc.bigcommerce.signed_payload import (
    AppNotConfiguredError,
    SignedPayload,
    SignedPayloadError,
    safe_deep_link,
    verify_signed_payload,
)
from smbc.core.metrics import APP_LOADS, INSTALLS, UNINSTALLS, USERS_REMOVED
from smbc.stores.installation import (
    CallbackError,
    exchange_code,
    open_app,
    parse_auth_callback,
    record_install,
    remove_store_user,
    uninstall_store,
)
from smbc.stores.setup import enqueue_store_setup
from smbc.web.dashboard import render_dashboard
from smbc.web.templating import error_page, render

log = logging.getLogger(__name__)
router = APIRouter(prefix="/bigcommerce")

NOT_CONFIGURED = (
    "The app is not configured: SMBC_BC_CLIENT_ID and SMBC_BC_CLIENT_SECRET must be set by its operator."
)


def _verify(request: Request) -> SignedPayload:
    settings = request.app.state.settings
    return verify_signed_payload(
        request.query_params.get("signed_payload_jwt"),
        client_id=settings.bc_client_id,
        client_secret=settings.bc_client_secret,
    )


@router.get("/auth", response_class=HTMLResponse)
def auth(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    if not settings.bc_client_id or not settings.bc_client_secret:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    try:
        callback = parse_auth_callback(request.query_params)
        grant = exchange_code(settings, callback)
        with request.app.state.runtime.db.session() as db:
            result = record_install(db, grant)
    except CallbackError as exc:
        INSTALLS.labels(outcome="refused").inc()
        log.info("install refused", extra={"status": exc.status, "reason": exc.message})
        return error_page(request, exc.status, exc.title, exc.message)
    INSTALLS.labels(outcome=result.kind).inc()
    log.info("store %s", result.kind, extra={"store_id": result.store_id})
    enqueue_store_setup(result.store_id)
    return render_dashboard(request, result.session, store_name=result.store_name, onboarding=True)


@router.get("/load", response_class=HTMLResponse)
def load(request: Request) -> HTMLResponse:
    try:
        payload = _verify(request)
        with request.app.state.runtime.db.session() as db:
            opened = open_app(db, payload)
    except AppNotConfiguredError:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    except SignedPayloadError as exc:
        APP_LOADS.labels(outcome="refused").inc()
        return error_page(request, exc.status, "This link is not valid", exc.message)
    except CallbackError as exc:
        APP_LOADS.labels(outcome="refused").inc()
        return error_page(request, exc.status, exc.title, exc.message)
    APP_LOADS.labels(outcome="opened").inc()
    if opened.needs_setup:
        enqueue_store_setup(opened.store_id)
    return render_dashboard(
        request, opened.session, store_name=opened.store_name, deep_link=safe_deep_link(payload.url)
    )


@router.get("/uninstall", response_class=HTMLResponse)
def uninstall(request: Request) -> HTMLResponse:
    try:
        payload = _verify(request)
    except AppNotConfiguredError:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    except SignedPayloadError as exc:
        return error_page(request, exc.status, "This request is not valid", exc.message)
    with request.app.state.runtime.db.session() as db:
        removed = uninstall_store(db, payload.store_hash)
    if removed:
        UNINSTALLS.inc()
        log.info("store uninstalled", extra={"store_hash": payload.store_hash})
    return render(request, "notice.html", {"title": "Uninstalled", "message": "The app was removed."})


@router.get("/remove-user", response_class=HTMLResponse)
def remove_user(request: Request) -> HTMLResponse:
    try:
        payload = _verify(request)
    except AppNotConfiguredError:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    except SignedPayloadError as exc:
        return error_page(request, exc.status, "This request is not valid", exc.message)
    with request.app.state.runtime.db.session() as db:
        removed = remove_store_user(db, payload.store_hash, payload.user.id)
    if removed:
        USERS_REMOVED.inc()
    return render(
        request, "notice.html", {"title": "User removed", "message": "The user's access was removed."}
    )
