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
)
from smbc.stores.setup import enqueue_store_setup
from smbc.stores.trust import PayloadReplayed, use_once
from smbc.stores.uninstall import UninstallOutcome, uninstall_when_confirmed
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


def _used_once(request: Request) -> SignedPayload:
    """The verified payload, recorded as used (a second use raises `PayloadReplayed`)."""
    payload = _verify(request)
    with request.app.state.runtime.db.session() as db:
        use_once(db, payload)
    return payload


def _used_once_or_error(request: Request) -> SignedPayload | HTMLResponse:
    """`_used_once`'s payload, or the error page to answer (uninstall and remove-user)."""
    try:
        return _used_once(request)
    except AppNotConfiguredError:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    except SignedPayloadError as exc:
        return error_page(request, exc.status, "This request is not valid", exc.message)


UNINSTALL_NOTICES = {
    UninstallOutcome.UNINSTALLED: "The app was removed.",
    UninstallOutcome.NOT_INSTALLED: "The app is not installed on this store.",
    UninstallOutcome.STILL_INSTALLED: "BigCommerce reports the app as installed: nothing was changed.",
    UninstallOutcome.UNCONFIRMED: "The store is paused until BigCommerce confirms the uninstall.",
}


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
        with request.app.state.runtime.db.session() as db:  # a refused load leaves its jti unused
            use_once(db, payload)
            opened = open_app(db, payload)
    except AppNotConfiguredError:
        return error_page(request, 500, "The app is not configured", NOT_CONFIGURED)
    except PayloadReplayed as exc:
        APP_LOADS.labels(outcome="refused").inc()
        return error_page(request, exc.status, "This link was already used", exc.message)
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
    payload = _used_once_or_error(request)
    if isinstance(payload, HTMLResponse):
        return payload
    outcome = uninstall_when_confirmed(request.app.state.runtime.db, payload.store_hash)
    if outcome is UninstallOutcome.UNINSTALLED:
        UNINSTALLS.inc()
    # 2xx in every case: BigCommerce uninstalls whatever we answer; only a confirmed uninstall wipes.
    return render(request, "notice.html", {"title": "Uninstall", "message": UNINSTALL_NOTICES[outcome]})


@router.get("/remove-user", response_class=HTMLResponse)
def remove_user(request: Request) -> HTMLResponse:
    payload = _used_once_or_error(request)
    if isinstance(payload, HTMLResponse):
        return payload
    with request.app.state.runtime.db.session() as db:
        removed = remove_store_user(db, payload.store_hash, payload.user.id)
    if removed:
        USERS_REMOVED.inc()
    return render(
        request, "notice.html", {"title": "User removed", "message": "The user's access was removed."}
    )
