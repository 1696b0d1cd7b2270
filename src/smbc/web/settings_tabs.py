"""Account Settings (the SALESmanago login while not connected) and Platform Settings tabs.

Thin handlers: read the form, call the account/settings services, render a fragment (200 saved,
422 with every error next to its field and nothing saved). Every Account route that changes something
is for those `smbc.stores.access.may_steer` allows (403 for the others, who see the tab read-only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from smbc.account.credentials import (
    callback_urls,
    effective_locations,
    get_account,
    owner_fell_back,
    storefronts,
)
from smbc.account.login import LoginFailed, LoginResult
from smbc.actions import account as account_actions
from smbc.actions.settings import save_settings
from smbc.actions.store_lookup import StoreNotInstalled
from smbc.db.models import Store
from smbc.settings.store_settings import (
    COOKIE_DAYS_MAX,
    COOKIE_DAYS_MIN,
    SettingsInvalid,
    default_location,
    field_name,
    load_store_settings,
)
from smbc.stores.access import (
    NOT_ALLOWED,
    DashboardSession,
    may_steer,
    who_may_steer,
)
from smbc.web.forms import CART_WINDOWS, ORDER_STATUSES, PRODUCT_IDENTIFIERS, FormState, PostedForm
from smbc.web.session import CurrentSession
from smbc.web.templating import render

router = APIRouter()
# An account login with its form's fields bound: (db, store hash, *, settings, actor) -> result.
StoreLogin = Callable[..., LoginResult]

ACCOUNT_CHECKBOXES = ("double_opt_in.enabled", "opt_in_sync")
ACCOUNT_TEXT_KEYS = (
    "contact_owner",
    "double_opt_in.template_id",
    "double_opt_in.account_id",
    "double_opt_in.subject",
    "double_opt_in.email_id",
    "double_opt_in.language",
)
PLATFORM_TEXT_KEYS = (
    "tags.registration",
    "tags.newsletter",
    "tags.purchase",
    "tags.guest_purchase",
    "cart_event_window",
    "ignored_domains",
    "product_identifier",
)


# -- plumbing ------------------------------------------------------------------------------------------


def _not_installed() -> HTTPException:
    return HTTPException(status_code=404, detail="This store is not installed.")


@contextmanager
def _unit_of_work(request: Request, dash: DashboardSession) -> Iterator[tuple[Session, Store]]:
    with request.app.state.runtime.db.session() as session:
        store = session.scalar(select(Store).where(Store.hash == dash.store_hash))
        if store is None or not store.installed:
            raise _not_installed()
        yield session, store


def steering_session(request: Request, dash: CurrentSession) -> DashboardSession:
    """FastAPI dependency for the routes that steer the integration: 403 for everyone else."""
    with _unit_of_work(request, dash) as (session, store):
        if not may_steer(dash, load_store_settings(session, store.id)):
            raise HTTPException(status_code=403, detail=NOT_ALLOWED)
    return dash


SteeringSession = Annotated[DashboardSession, Depends(steering_session)]


def _access_context(session: Session, store: Store, dash: DashboardSession) -> dict[str, Any]:
    """What the Account tab shows of who may change it."""
    settings = load_store_settings(session, store.id)
    return {
        "can_steer": may_steer(dash, settings),
        "who_may_steer": who_may_steer(store, settings),
        "managers": ", ".join(settings.managers),
    }


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return render(request, name, context, status_code=status_code)


def _actor(dash: DashboardSession) -> str:
    return dash.email or f"user:{dash.user_id}"


def _errors_by_field(errors: dict[str, str]) -> dict[str, str]:
    return {field_name(key): message for key, message in errors.items()}


def _channel_ids(store: Store) -> set[int]:
    return {shop.channel_id for shop in storefronts(store)}


# -- Account Settings ------------------------------------------------------------------------------------


def _login_context(request: Request, mode: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    default_endpoint = request.app.state.settings.sm_default_endpoint
    base = {
        "email": "",
        "change_endpoint": False,
        "endpoint": default_endpoint if mode != "credentials" else "",
        "client_id": "",
        "owner": "",
    }
    base.update(values or {})
    return {"mode": mode, "values": base, "errors": {}, "notices": []}


def _account_context(
    request: Request,
    session: Session,
    store: Store,
    dash: DashboardSession,
    form: FormState = FormState(),
) -> dict[str, Any]:
    account = get_account(session, store.id)
    settings = load_store_settings(session, store.id)
    locations = effective_locations(store, settings)
    shops = [
        {"channel_id": s.channel_id, "name": s.name, "url": s.url, "default": default_location(s.url)}
        for s in storefronts(store)
    ]
    fallback = settings.contact_owner if account is not None and owner_fell_back(settings, account) else None
    owners = list(account.owners or []) if account is not None else []
    current = {
        "contact_owner": (account.login_email if fallback else settings.contact_owner) if account else "",
        "double_opt_in_enabled": settings.double_opt_in_enabled,
        "double_opt_in_template_id": settings.double_opt_in_template_id,
        "double_opt_in_account_id": settings.double_opt_in_account_id,
        "double_opt_in_subject": settings.double_opt_in_subject,
        "double_opt_in_email_id": settings.double_opt_in_email_id,
        "double_opt_in_language": settings.double_opt_in_language,
        "opt_in_sync": settings.opt_in_sync,
        **{f"location_{channel_id}": location for channel_id, location in locations.items()},
    }
    shown = form.context(current)
    owner = shown["values"]["contact_owner"]
    if owner and owner not in owners:
        owners.append(owner)  # keep a saved value visible rather than silently changing it
    access = _access_context(session, store, dash)
    # The callback URLs carry the token: only those who may steer see them (and get one made).
    urls = callback_urls(request.app.state.settings.app_url, store) if access["can_steer"] else {}
    return {
        **access,
        "account": account,
        "storefronts": shops,
        "owner_options": [(o, o) for o in owners],
        "owner_fallback": fallback,
        "callbacks": [
            ("callback_url_opt_in", "Opt-in callback URL", "opt-in", urls["opt_in"]),
            ("callback_url_opt_out", "Opt-out callback URL", "opt-out", urls["opt_out"]),
        ]
        if urls
        else [],
        **shown,
    }


def _account_tab(
    request: Request,
    session: Session,
    store: Store,
    dash: DashboardSession,
    *,
    status_code: int = 200,
    mode: str = "password",
    form: FormState = FormState(),
) -> HTMLResponse:
    if get_account(session, store.id) is None:
        login = _login_context(request, mode)
        login.update(_access_context(session, store, dash), errors=form.errors, notices=form.notices)
        return _render(request, "account_login.html", login, status_code)
    return _render(
        request,
        "account_settings.html",
        _account_context(request, session, store, dash, form),
        status_code,
    )


@router.get("/app/tabs/account", response_class=HTMLResponse)
def account_tab(request: Request, dash: CurrentSession, mode: str = "") -> HTMLResponse:
    with _unit_of_work(request, dash) as (session, store):
        return _account_tab(request, session, store, dash, mode=mode or "password")


@router.post("/app/account/login", response_class=HTMLResponse)
def account_login(request: Request, dash: SteeringSession, form: PostedForm) -> HTMLResponse:
    change_endpoint = "change_endpoint" in form
    endpoint = str(form.get("endpoint", "")).strip()
    values = {
        "email": str(form.get("email", "")).strip(),
        "change_endpoint": change_endpoint,
        "endpoint": endpoint,
    }
    login = partial(
        account_actions.login_with_password,
        email=values["email"],
        password=str(form.get("password", "")),
        endpoint=endpoint if change_endpoint else None,
    )
    return _log_in(request, dash, "password", values, login)


@router.post("/app/account/login-credentials", response_class=HTMLResponse)
def account_login_credentials(request: Request, dash: SteeringSession, form: PostedForm) -> HTMLResponse:
    values = {k: str(form.get(k, "")).strip() for k in ("endpoint", "client_id", "owner")}
    login = partial(
        account_actions.login_with_api_credentials,
        endpoint=values["endpoint"],
        client_id=values["client_id"],
        api_secret=str(form.get("api_secret", "")),
        owner=values["owner"],
    )
    return _log_in(request, dash, "credentials", values, login)


def _log_in(
    request: Request, dash: DashboardSession, mode: str, values: dict[str, Any], login: StoreLogin
) -> HTMLResponse:
    """Run one of the account's logins for this store: the connected tab, or the form with why not."""
    try:
        result = login(
            request.app.state.runtime.db,
            dash.store_hash,
            settings=request.app.state.settings,
            actor=_actor(dash),
        )
    except LoginFailed as exc:
        return _login_failed(request, dash, mode, values, exc)
    except StoreNotInstalled:
        raise _not_installed() from None
    return _connected(request, dash, result.warnings)


def _connected(request: Request, dash: DashboardSession, warnings: list[str]) -> HTMLResponse:
    notices = [("success", "Connected to SALESmanago.")] + [("warning", w) for w in warnings]
    with _unit_of_work(request, dash) as (session, store):
        return _account_tab(request, session, store, dash, form=FormState.told(*notices))


def _login_failed(
    request: Request, dash: DashboardSession, mode: str, values: dict[str, Any], exc: LoginFailed
) -> HTMLResponse:
    context = _login_context(request, mode, values)
    with _unit_of_work(request, dash) as (session, store):
        context.update(_access_context(session, store, dash))
    if exc.field:
        context["errors"] = {exc.field: exc.message}
        if exc.field == "endpoint":
            context["values"]["change_endpoint"] = True  # show the field the message is about
    else:
        context["notices"] = [("danger", exc.message)]
    return _render(request, "account_login.html", context, 422)


def account_form_changes(form: FormData, channel_ids: set[int]) -> dict[str, object]:
    """The Account Settings form as settings keys (an unticked checkbox is absent: false)."""
    changes: dict[str, object] = {key: str(form.get(field_name(key), "")) for key in ACCOUNT_TEXT_KEYS}
    changes.update({key: field_name(key) in form for key in ACCOUNT_CHECKBOXES})
    for channel_id in sorted(channel_ids):
        name = f"location_{channel_id}"
        if name in form:
            changes[f"location.{channel_id}"] = str(form.get(name, ""))
    return changes


@router.post("/app/account/settings", response_class=HTMLResponse)
def account_save(request: Request, dash: SteeringSession, form: PostedForm) -> HTMLResponse:
    with _unit_of_work(request, dash) as (session, store):
        if get_account(session, store.id) is None:
            return _account_tab(
                request,
                session,
                store,
                dash,
                form=FormState.told(("warning", "Log in to SALESmanago first.")),
            )
        changes = account_form_changes(form, _channel_ids(store))
    invalid = _save(request, dash, changes)
    with _unit_of_work(request, dash) as (session, store):
        if invalid is not None:
            submitted = {field_name(k): v for k, v in changes.items()}
            return _account_tab(
                request,
                session,
                store,
                dash,
                status_code=422,
                form=FormState.refused(submitted, _errors_by_field(invalid.errors)),
            )
        return _account_tab(
            request, session, store, dash, form=FormState.told(("success", "Settings saved."))
        )


def _save(request: Request, dash: DashboardSession, changes: dict[str, object]) -> SettingsInvalid | None:
    """Save through the settings action; the validation errors when nothing was saved."""
    try:
        save_settings(request.app.state.runtime.db, dash.store_hash, changes, _actor(dash))
    except SettingsInvalid as exc:
        return exc
    except StoreNotInstalled:
        raise _not_installed() from None
    return None


@router.post("/app/account/owners/refresh", response_class=HTMLResponse)
def account_refresh_owners(request: Request, dash: SteeringSession) -> HTMLResponse:
    try:
        refreshed = account_actions.refresh_owners(request.app.state.runtime.db, dash.store_hash)
        notices = [("success", f"Owners list refreshed: {len(refreshed.owners)} users.")]
    except LoginFailed as exc:
        notices = [("danger", exc.message)]
    except StoreNotInstalled:
        raise _not_installed() from None
    with _unit_of_work(request, dash) as (session, store):
        return _account_tab(request, session, store, dash, form=FormState.told(*notices))


@router.post("/app/account/callback-token/rotate", response_class=HTMLResponse)
def account_rotate_token(request: Request, dash: SteeringSession) -> HTMLResponse:
    try:
        db = request.app.state.runtime.db
        app_url = request.app.state.settings.app_url
        account_actions.rotate_callback_token(db, dash.store_hash, actor=_actor(dash), app_url=app_url)
    except StoreNotInstalled:
        raise _not_installed() from None
    notices = [("warning", "New callback URLs: paste both into SALESmanago, the old ones no longer work.")]
    with _unit_of_work(request, dash) as (session, store):
        return _account_tab(request, session, store, dash, form=FormState.told(*notices))


@router.post("/app/account/logout", response_class=HTMLResponse)
def account_logout(request: Request, dash: SteeringSession) -> HTMLResponse:
    try:
        result = account_actions.logout(
            request.app.state.runtime.db,
            dash.store_hash,
            settings=request.app.state.settings,
            actor=_actor(dash),
        )
    except StoreNotInstalled:
        raise _not_installed() from None
    notices = [("success", "Logged out of SALESmanago. Syncing is paused until you log in again.")]
    notices += [("warning", w) for w in result.warnings]
    with _unit_of_work(request, dash) as (session, store):
        return _account_tab(request, session, store, dash, form=FormState.told(*notices))


@router.post("/app/account/managers", response_class=HTMLResponse)
def account_managers(request: Request, dash: SteeringSession, form: PostedForm) -> HTMLResponse:
    changes: dict[str, object] = {"managers": str(form.get("managers", ""))}
    invalid = _save(request, dash, changes)
    with _unit_of_work(request, dash) as (session, store):
        if invalid is not None:
            refused = FormState.refused(
                {}, invalid.errors, "Nothing was saved: correct the field marked below."
            )
            return _account_tab(request, session, store, dash, status_code=422, form=refused)
        return _account_tab(
            request, session, store, dash, form=FormState.told(("success", "Managers saved."))
        )


# -- Platform Settings -------------------------------------------------------------------------------------


def platform_form_changes(form: FormData) -> tuple[dict[str, object], dict[str, str]]:
    """The Platform Settings form as settings keys, plus errors only the form itself can have."""
    changes: dict[str, object] = {key: str(form.get(field_name(key), "")) for key in PLATFORM_TEXT_KEYS}
    changes["purchase_statuses"] = ",".join(str(v) for v in form.getlist("purchase_statuses"))
    changes["delete_contact_on_customer_delete"] = "delete_contact_on_customer_delete" in form
    errors: dict[str, str] = {}
    days = str(form.get("monitoring_cookie_days", "")).strip()
    if "monitoring_cookie_custom" in form:
        if not days:
            errors["monitoring_cookie_days"] = (
                f"Enter a whole number of days from {COOKIE_DAYS_MIN} to {COOKIE_DAYS_MAX}."
            )
        changes["monitoring_cookie_days"] = days
    else:
        changes["monitoring_cookie_days"] = ""
    return changes, errors


def _platform_context(
    session: Session,
    store: Store,
    form: FormState = FormState(),
) -> dict[str, Any]:
    settings = load_store_settings(session, store.id)
    current: dict[str, Any] = {
        "tags_registration": ", ".join(settings.tags_registration),
        "tags_newsletter": ", ".join(settings.tags_newsletter),
        "tags_purchase": ", ".join(settings.tags_purchase),
        "tags_guest_purchase": ", ".join(settings.tags_guest_purchase),
        "cart_event_window": settings.cart_event_window,
        "monitoring_cookie_custom": settings.monitoring_cookie_days is not None,
        "monitoring_cookie_days": settings.monitoring_cookie_days or COOKIE_DAYS_MAX,
        "ignored_domains": ", ".join(settings.ignored_domains),
        "product_identifier": settings.product_identifier,
        "purchase_statuses": list(settings.purchase_statuses),
        "delete_contact_on_customer_delete": settings.delete_contact_on_customer_delete,
    }
    return {
        **form.context(current),
        "cart_windows": CART_WINDOWS,
        "product_identifiers": PRODUCT_IDENTIFIERS,
        "order_statuses": ORDER_STATUSES,
    }


@router.get("/app/tabs/platform", response_class=HTMLResponse)
def platform_tab(request: Request, dash: CurrentSession) -> HTMLResponse:
    with _unit_of_work(request, dash) as (session, store):
        return _render(request, "platform_settings.html", _platform_context(session, store))


@router.post("/app/platform/settings", response_class=HTMLResponse)
def platform_save(request: Request, dash: CurrentSession, form: PostedForm) -> HTMLResponse:
    changes, errors = platform_form_changes(form)
    if not errors:
        invalid = _save(request, dash, changes)
        errors = invalid.errors if invalid is not None else {}
    with _unit_of_work(request, dash) as (session, store):
        if errors:
            submitted: dict[str, Any] = {field_name(k): v for k, v in changes.items()}
            submitted["monitoring_cookie_custom"] = "monitoring_cookie_custom" in form
            submitted["monitoring_cookie_days"] = str(form.get("monitoring_cookie_days", ""))
            submitted["purchase_statuses"] = [
                int(v) for v in form.getlist("purchase_statuses") if str(v).isdigit()
            ]
            context = _platform_context(
                session,
                store,
                form=FormState.refused(submitted, _errors_by_field(errors)),
            )
            return _render(request, "platform_settings.html", context, 422)
        context = _platform_context(session, store, FormState.told(("success", "Settings saved.")))
        return _render(request, "platform_settings.html", context)
