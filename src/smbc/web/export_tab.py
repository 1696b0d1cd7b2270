"""The Export Data tab: a form for customers as contacts, one for orders as external events, the
running exports with their progress (the fragment refreshes itself while one runs) and the past
exports' counts. Every action is one call of `smbc.actions.export`, as `smbc export`'s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from smbc.account.credentials import get_account
from smbc.actions import export as export_actions
from smbc.actions.store_lookup import StoreNotInstalled
from smbc.core.clock import utcnow
from smbc.db.models import Store
from smbc.export import service
from smbc.export.models import Export, ExportKind
from smbc.stores.access import DashboardSession
from smbc.web.forms import PostedForm
from smbc.web.session import CurrentSession, installed_store_or_404
from smbc.web.templating import render

router = APIRouter()
REFRESH_MS = 2000
T = TypeVar("T")
NOT_STARTED = "The export was not started: correct the fields marked below."


@dataclass
class TabView:
    store: Store
    connected: bool
    today: str
    form: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)


def _view(request: Request, store_hash: str) -> TabView:
    with request.app.state.runtime.db.session() as session:
        store = installed_store_or_404(session, store_hash)
        connected = get_account(session, store.id) is not None
        session.expunge(store)
    return TabView(store=store, connected=connected, today=service.store_today(store).isoformat())


def _describe(row: Export) -> dict[str, Any]:
    view = service.progress(row, utcnow())
    left = None
    if view.seconds_left is not None:
        minutes, seconds = divmod(view.seconds_left, 60)
        left = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    return {
        "row": row,
        "kind_label": "Contacts" if row.kind == ExportKind.CONTACTS else "Events",
        "progress": view,
        "rate": f"{view.rate_per_min:.0f}" if view.rate_per_min is not None else None,
        "time_left": left,
        "skipped_total": sum((row.skipped or {}).values()),
        "failed_total": sum((row.failed or {}).values()),
    }


def _status_context(request: Request, store_id: int) -> dict[str, Any]:
    with request.app.state.runtime.db.session() as session:
        rows = service.recent_exports(session, store_id)
        session.expunge_all()
    running = [_describe(r) for r in rows if r.active]
    return {
        "running": running,
        "past": [_describe(r) for r in rows if not r.active],
        "refresh_ms": REFRESH_MS if running else None,
    }


def _render(request: Request, view: TabView, status_code: int = 200) -> HTMLResponse:
    context = {
        "connected": view.connected,
        "today": view.today,
        "timezone": view.store.timezone or "UTC",
        "form": view.form,
        "errors": view.errors,
        "messages": view.messages,
        **_status_context(request, view.store.id),
    }
    return render(request, "export_tab.html", context, status_code=status_code)


@router.get("/app/tabs/export", response_class=HTMLResponse)
def export_tab(request: Request, session: CurrentSession) -> HTMLResponse:
    return _render(request, _view(request, session.store_hash))


@router.get("/app/export/status", response_class=HTMLResponse)
def export_status(request: Request, session: CurrentSession) -> HTMLResponse:
    """The running and past exports only (what the page polls while an export runs)."""
    view = _view(request, session.store_hash)
    return render(request, "export_status.html", _status_context(request, view.store.id))


def _on_store(
    request: Request, session: DashboardSession, action: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run an export action on the dashboard's store (404 if the app was uninstalled meanwhile)."""
    try:
        return action(request.app.state.runtime.db, session.store_hash, *args, **kwargs)
    except StoreNotInstalled:
        raise HTTPException(status_code=404, detail="This store does not have the app installed.") from None


def _actor(session: DashboardSession) -> str:
    return session.email or f"user:{session.user_id}"


@router.post("/app/export/{kind}", response_class=HTMLResponse)
def start_export(
    kind: ExportKind, request: Request, session: CurrentSession, form: PostedForm
) -> HTMLResponse:
    """Start a contacts or an events export (`/app/export/contacts`, `/app/export/events`)."""
    view = _view(request, session.store_hash)
    prefix = kind.value
    texts = {name: str(form.get(name, "")) for name in ("date_from", "date_to", "tags")}
    view.form = {f"{prefix}_{name}": value for name, value in texts.items()}
    try:
        started = _on_store(
            request,
            session,
            export_actions.start_export,
            kind,
            date_from=texts["date_from"],
            date_to=texts["date_to"],
            tags=texts["tags"] if kind is ExportKind.CONTACTS else "",
            actor=_actor(session),
        )
    except service.ExportInvalid as exc:
        view.errors = {f"{prefix}_{name}": message for name, message in exc.errors.items()}
        view.messages.append({"kind": "danger", "text": exc.errors.get("form") or NOT_STARTED})
        return _render(request, view, status_code=422)
    except service.ExportAlreadyRunning as exc:
        view.messages.append({"kind": "warning", "text": str(exc)})
        return _render(request, view, status_code=422)  # the page shows 422 answers
    row = started.export
    label = "Contacts" if kind is ExportKind.CONTACTS else "Events"
    view.form = {}
    view.messages.append(
        {"kind": "success", "text": f"{label} export #{row.id} started ({row.date_from} to {row.date_to})."}
    )
    return _render(request, view)


@router.post("/app/export/{export_id}/resend-unconfirmed", response_class=HTMLResponse)
def resend_unconfirmed(export_id: int, request: Request, session: CurrentSession) -> HTMLResponse:
    view = _view(request, session.store_hash)
    try:
        started = _on_store(
            request, session, export_actions.resend_unconfirmed, export_id, actor=_actor(session)
        )
    except service.ExportInvalid as exc:
        view.messages.append({"kind": "warning", "text": exc.errors["form"]})
        return _render(request, view, status_code=422)
    except service.ExportAlreadyRunning as exc:
        view.messages.append({"kind": "warning", "text": str(exc)})
        return _render(request, view, status_code=422)
    view.messages.append(
        {
            "kind": "success",
            "text": f"Export #{started.export.id} sends the unconfirmed events of export #{export_id} again.",
        }
    )
    return _render(request, view)


@router.post("/app/export/{export_id}/cancel", response_class=HTMLResponse)
def cancel(export_id: int, request: Request, session: CurrentSession) -> HTMLResponse:
    view = _view(request, session.store_hash)
    cancelled = _on_store(request, session, export_actions.cancel_export, export_id)
    if cancelled:
        view.messages.append(
            {"kind": "success", "text": f"Export #{export_id} is stopping after the batch in hand."}
        )
    else:
        view.messages.append({"kind": "warning", "text": f"Export #{export_id} is not running."})
    return _render(request, view)
