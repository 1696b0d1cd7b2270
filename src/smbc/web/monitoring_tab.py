"""The Monitoring Code tab: on/off, the optional extras (custom script, banners, popups), storefronts,
consent category, and the code live now, read back from BigCommerce (so it changes only after Save).

Saving validates, saves the settings, then makes BigCommerce match at once (inline, so the merchant
sees the result on the page); database work and BigCommerce calls never share a transaction. Save
and Restore are the actions `smbc settings set` and `smbc monitoring restore` call too.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from smbc.actions import monitoring as monitoring_actions
from smbc.actions.settings import save_settings
from smbc.actions.store_lookup import StoreNotInstalled
from smbc.core.remote_calls import RemoteCallError
from smbc.monitoring.scripts import (
    MAX_APP_SCRIPTS,
    MonitoringStatus,
    SyncResult,
    live_status,
    load_account,
    load_settings,
    refresh_storefronts,
    storefront_channels,
)
from smbc.settings.store_settings import SettingsInvalid, StoreSettings
from smbc.web.forms import CONSENT_CATEGORIES, NOT_SAVED, PostedForm
from smbc.web.session import CurrentSession, installed_store_or_404
from smbc.web.templating import render

router = APIRouter()

STATE_TEXT = {
    "missing": "Missing: deleted in Script Manager?",
    "not_installed": "Not installed",
    "outdated": "Changed outside the app",
}


@dataclass
class TabForm:
    enabled: bool
    extras: bool
    custom_script: bool
    banners: bool
    popups: bool
    channels_mode: str
    selected: list[int]
    consent_category: str

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> TabForm:
        flags = (settings.monitoring_custom_script, settings.monitoring_banners, settings.monitoring_popups)
        channels = settings.monitoring_channels
        return cls(
            enabled=settings.monitoring_enabled,
            extras=any(flags),
            custom_script=flags[0],
            banners=flags[1],
            popups=flags[2],
            channels_mode="all" if channels == "all" else "selected",
            selected=[] if channels == "all" else list(channels),
            consent_category=settings.monitoring_consent_category,
        )


@dataclass
class TabView:
    form: TabForm
    channels: list[dict[str, Any]]
    connected: bool
    status: MonitoringStatus | None = None
    live_error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)


def parse_form(form: Any, storefront_ids: list[int]) -> tuple[TabForm, dict[str, object], dict[str, str]]:
    """The posted form -> (what to show again, settings changes by key, errors by field)."""

    def ticked(name: str) -> bool:
        return form.get(name) == "true"

    extras = ticked("monitoring_extras")
    errors: dict[str, str] = {}
    selected: list[int] = []
    for raw in form.getlist("monitoring_channel"):
        if not raw.isdigit() or int(raw) not in storefront_ids:
            errors["monitoring_channels"] = "Choose storefronts from the list."
        elif int(raw) not in selected:
            selected.append(int(raw))
    mode = form.get("monitoring_channels_mode", "all")
    if mode not in ("all", "selected"):
        mode = "all"
        errors["monitoring_channels"] = "Choose all active storefronts or the storefronts ticked below."
    shown = TabForm(
        enabled=ticked("monitoring_enabled"),
        extras=extras,
        custom_script=ticked("monitoring_custom_script"),
        banners=ticked("monitoring_banners"),
        popups=ticked("monitoring_popups"),
        channels_mode=mode,
        selected=sorted(selected),
        consent_category=form.get("monitoring_consent_category", ""),
    )
    count = len(storefront_ids) if mode == "all" else len(selected)
    if mode == "selected" and not selected and "monitoring_channels" not in errors:
        errors["monitoring_channels"] = "Tick at least one storefront, or choose all active storefronts."
    elif shown.enabled and count > MAX_APP_SCRIPTS and "monitoring_channels" not in errors:
        errors["monitoring_channels"] = (
            f"BigCommerce lets an app put its code on at most {MAX_APP_SCRIPTS} storefronts; "
            f"{count} are chosen. Tick at most {MAX_APP_SCRIPTS} storefronts."
        )
    changes: dict[str, object] = {
        "monitoring.enabled": shown.enabled,
        "monitoring.custom_script": extras and shown.custom_script,
        "monitoring.banners": extras and shown.banners,
        "monitoring.popups": extras and shown.popups,
        "monitoring.channels": "all" if mode == "all" else ",".join(map(str, shown.selected)),
        "monitoring.consent_category": shown.consent_category,
    }
    return shown, changes, errors


def _store_id(request: Request, store_hash: str) -> int:
    with request.app.state.runtime.db.session() as session:
        return installed_store_or_404(session, store_hash).id


def _read_live(request: Request, store_hash: str, view: TabView) -> None:
    """Fill `view.status` from what BigCommerce lists now (no transaction held during the call)."""
    try:
        view.status = live_status(
            request.app.state.runtime.db,
            _store_id(request, store_hash),
            app_url=request.app.state.settings.app_url,
        )
    except RemoteCallError as exc:
        view.live_error = exc.message


def _base_view(request: Request, store_hash: str, form: TabForm | None = None) -> TabView:
    with request.app.state.runtime.db.session() as session:
        store = installed_store_or_404(session, store_hash)
        settings = load_settings(session, store)
        connected = load_account(session, store) is not None
    return TabView(
        form=form or TabForm.from_settings(settings),
        channels=storefront_channels(store),
        connected=connected,
    )


def _render(request: Request, view: TabView, status_code: int = 200) -> HTMLResponse:
    live = []
    if view.status is not None:
        for item in view.status.channels:
            live.append(
                {
                    "channel_id": item.channel_id,
                    "channel_name": item.channel_name,
                    "state": item.state,
                    "state_text": STATE_TEXT.get(item.state, ""),
                    "html": item.html,
                    "consent_category": item.consent_category,
                }
            )
        for script in view.status.extra:
            live.append(
                {
                    "channel_id": script.get("channel_id"),
                    "channel_name": f"Channel {script.get('channel_id')}",
                    "state": "extra",
                    "state_text": "Not selected: removed on the next save",
                    "html": script.get("html", ""),
                    "consent_category": script.get("consent_category", ""),
                }
            )
    problems = view.status.problems if view.status is not None else []
    context = {
        "form": view.form,
        "channels": view.channels,
        "connected": view.connected,
        "errors": view.errors,
        "messages": view.messages,
        "consent_categories": CONSENT_CATEGORIES,
        "live": [item for item in live if item["html"] or item["state"] != "extra"],
        "live_error": view.live_error,
        "problems": problems,
    }
    return render(request, "monitoring_tab.html", context, status_code=status_code)


def _not_installed() -> HTTPException:
    return HTTPException(status_code=404, detail="This store does not have the app installed.")


def _sync_message(result: SyncResult, enabled: bool) -> dict[str, str]:
    if not result.ok:
        return {"kind": "danger", "text": f"Saved, but {result.error}"}
    count = len(result.live)
    if not enabled or count == 0:
        return {"kind": "success", "text": "Saved. The monitoring code is not on any storefront."}
    noun = "storefront" if count == 1 else "storefronts"
    return {"kind": "success", "text": f"Saved. The monitoring code is live on {count} {noun}."}


def _refresh_storefronts(request: Request, store_hash: str) -> None:
    """Re-read channels and sites, so the list of storefronts is as BigCommerce has it now."""
    # On failure the stored lists stay; the scripts read that follows reports it.
    with suppress(RemoteCallError):
        refresh_storefronts(request.app.state.runtime.db, _store_id(request, store_hash))


@router.get("/app/tabs/monitoring", response_class=HTMLResponse)
def monitoring_tab(request: Request, session: CurrentSession) -> HTMLResponse:
    _refresh_storefronts(request, session.store_hash)
    view = _base_view(request, session.store_hash)
    _read_live(request, session.store_hash, view)
    return _render(request, view)


@router.post("/app/tabs/monitoring", response_class=HTMLResponse)
def save_monitoring(request: Request, session: CurrentSession, form: PostedForm) -> HTMLResponse:
    view = _base_view(request, session.store_hash)
    shown, changes, errors = parse_form(form, [c["id"] for c in view.channels])
    view.form = shown
    synced: SyncResult | None = None
    if not errors:
        try:
            saved = save_settings(
                request.app.state.runtime.db,
                session.store_hash,
                changes,
                session.email or f"user:{session.user_id}",
                app_url=request.app.state.settings.app_url,
            )
            synced = saved.monitoring
        except SettingsInvalid as exc:
            errors = {key.replace(".", "_"): message for key, message in exc.errors.items()}
        except StoreNotInstalled:
            raise _not_installed() from None
    if errors:
        view.errors = errors
        view.messages.append({"kind": "danger", "text": NOT_SAVED})
        _read_live(request, session.store_hash, view)
        return _render(request, view, status_code=422)
    view = _base_view(request, session.store_hash)  # the storefront list may have been refreshed
    view.messages.append(_sync_message(synced or SyncResult(), shown.enabled))
    _read_live(request, session.store_hash, view)
    return _render(request, view)


@router.post("/app/tabs/monitoring/restore", response_class=HTMLResponse)
def restore_monitoring(request: Request, session: CurrentSession) -> HTMLResponse:
    try:
        result = monitoring_actions.restore_monitoring(
            request.app.state.runtime.db, session.store_hash, app_url=request.app.state.settings.app_url
        )
    except StoreNotInstalled:
        raise _not_installed() from None
    view = _base_view(request, session.store_hash)
    if result.ok:
        view.messages.append({"kind": "success", "text": "The monitoring code was restored."})
    else:
        view.messages.append({"kind": "danger", "text": f"Not restored: {result.error}"})
    _read_live(request, session.store_hash, view)
    return _render(request, view)
