"""The Product Catalog tab: per storefront, pick one of the account's catalogs (listed live from
SALESmanago) or create one, see the last full sync (products sent, refused with reasons) and start
one. Every action is one call of `smbc.catalog.service`, as `smbc catalog`'s."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from smbc.account.catalog_access import NO_KEY_MESSAGE, NoCatalogKey
from smbc.catalog import service
from smbc.core.remote_calls import RemoteCallError
from smbc.settings.store_settings import SettingsInvalid
from smbc.stores.access import DashboardSession
from smbc.web.forms import PostedForm
from smbc.web.session import CurrentSession, installed_store_or_404
from smbc.web.templating import render

router = APIRouter()
REFRESH_MS = 2000


def _store_id(request: Request, session: DashboardSession) -> int:
    with request.app.state.runtime.db.session() as db_session:
        return installed_store_or_404(db_session, session.store_hash).id


def _actor(session: DashboardSession) -> str:
    return session.email or f"user:{session.user_id}"


def _status_context(request: Request, store_id: int) -> dict[str, Any]:
    has_key, storefronts = service.catalog_status(request.app.state.runtime.db, store_id)
    running = any(s.running for s in storefronts)
    return {"has_key": has_key, "storefronts": storefronts, "refresh_ms": REFRESH_MS if running else None}


def _render(
    request: Request,
    store_id: int,
    messages: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = _status_context(request, store_id)
    catalogs: list[Any] = []
    messages = list(messages or [])
    if context["has_key"]:
        try:
            catalogs = service.list_catalogs(request.app.state.runtime.db, store_id)
        except RemoteCallError as exc:
            messages.append(
                {"kind": "warning", "text": f"SALESmanago did not list the catalogs: {exc.message}"}
            )
    context.update(catalogs=catalogs, messages=messages, errors=errors or {}, no_key=NO_KEY_MESSAGE)
    return render(request, "catalog_tab.html", context, status_code=status_code)


@router.get("/app/tabs/catalog", response_class=HTMLResponse)
def catalog_tab(request: Request, session: CurrentSession) -> HTMLResponse:
    return _render(request, _store_id(request, session))


@router.get("/app/catalog/status", response_class=HTMLResponse)
def catalog_status(request: Request, session: CurrentSession) -> HTMLResponse:
    """The storefronts' sync status only (what the page polls while a sync runs)."""
    return render(request, "catalog_status.html", _status_context(request, _store_id(request, session)))


@router.post("/app/catalog/{channel_id}/choose", response_class=HTMLResponse)
def choose_catalog(
    channel_id: int, request: Request, session: CurrentSession, form: PostedForm
) -> HTMLResponse:
    store_id = _store_id(request, session)
    catalog_id = str(form.get("catalog_id", "")).strip()
    try:
        service.choose_catalog(
            request.app.state.runtime.db, store_id, channel_id, catalog_id, actor=_actor(session)
        )
    except SettingsInvalid as exc:
        errors = {f"catalog_{channel_id}": next(iter(exc.errors.values()))}
        return _render(
            request, store_id, [{"kind": "danger", "text": "The catalog was not saved."}], errors, 422
        )
    except service.CatalogProblem as exc:
        return _render(request, store_id, [{"kind": "danger", "text": str(exc)}], status_code=422)
    text = (
        f"Storefront {channel_id} now syncs to catalog {catalog_id}."
        if catalog_id
        else (f"Storefront {channel_id}'s products are no longer synced.")
    )
    return _render(request, store_id, [{"kind": "success", "text": text}])


@router.post("/app/catalog/{channel_id}/create", response_class=HTMLResponse)
def create_catalog(
    channel_id: int, request: Request, session: CurrentSession, form: PostedForm
) -> HTMLResponse:
    store_id = _store_id(request, session)
    name = str(form.get("name", ""))
    try:
        catalog_id = service.create_catalog(
            request.app.state.runtime.db,
            store_id,
            channel_id,
            name,
            recommendations=form.get("recommendations") in ("on", "true", "1"),
            actor=_actor(session),
        )
    except service.CatalogProblem as exc:
        message = [{"kind": "danger", "text": "The catalog was not created."}]
        return _render(request, store_id, message, {f"name_{channel_id}": str(exc)}, 422)
    except NoCatalogKey as exc:
        return _render(request, store_id, [{"kind": "danger", "text": str(exc)}], status_code=422)
    except RemoteCallError as exc:
        text = f"SALESmanago did not create the catalog: {exc.message}"
        return _render(request, store_id, [{"kind": "danger", "text": text}], status_code=422)
    text = f"Catalog {name} ({catalog_id}) created; storefront {channel_id} now syncs to it."
    return _render(request, store_id, [{"kind": "success", "text": text}])


@router.post("/app/catalog/{channel_id}/sync", response_class=HTMLResponse)
def sync_now(channel_id: int, request: Request, session: CurrentSession) -> HTMLResponse:
    store_id = _store_id(request, session)
    try:
        service.start_sync(request.app.state.runtime.db, store_id, [channel_id], actor=_actor(session))
    except (service.CatalogProblem, NoCatalogKey) as exc:
        return _render(request, store_id, [{"kind": "warning", "text": str(exc)}], status_code=422)
    text = f"Full sync of storefront {channel_id} started: it runs in the background."
    return _render(request, store_id, [{"kind": "success", "text": text}])
