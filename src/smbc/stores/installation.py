"""What the control-panel callbacks do to the database: install (and re-auth), open the app,
uninstall, remove a user, and purge a store. No HTTP handling here; `oauth.py` calls these.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from smbc.account.credentials import wipe_credentials
from smbc.bigcommerce.answers import OAuthToken
from smbc.bigcommerce.scopes import missing_scopes, parse_scopes
from smbc.bigcommerce.signed_payload import BcUser, SignedPayload
from smbc.core.answers import AnswerError, read_answer
from smbc.core.clock import utcnow
from smbc.core.config import Settings, random_secret
from smbc.db.base import Base
from smbc.db.models import Store, StoreUser, User, _import_feature_models
from smbc.engine.pausing import PauseReason
from smbc.settings.store_settings import load_store_settings
from smbc.stores.access import DashboardSession, rotate_if_manager_left
from smbc.stores.trust import record_removal, refuse_if_removed

log = logging.getLogger(__name__)

_CONTEXT = re.compile(r"^stores/([A-Za-z0-9]{1,64})$")
TOKEN_EXCHANGE_TIMEOUT = 15.0


class CallbackError(Exception):
    """A callback that cannot be honoured; rendered as an HTML error page with `status`."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


# --- install (auth callback) ------------------------------------------------------------------


@dataclass(frozen=True)
class AuthCallback:
    code: str
    scopes: set[str]
    context: str
    store_hash: str
    account_uuid: str | None


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    scopes: set[str]
    store_hash: str
    user: BcUser
    owner: BcUser
    account_uuid: str | None


@dataclass(frozen=True)
class InstallResult:
    store_id: int
    kind: str  # installed | reinstalled | reauthorized
    session: DashboardSession
    store_name: str


def store_hash_from_context(context: str | None) -> str | None:
    match = _CONTEXT.match(context or "")
    return match.group(1) if match else None


def parse_auth_callback(params: Mapping[str, str]) -> AuthCallback:
    code = (params.get("code") or "").strip()
    context = (params.get("context") or "").strip()
    if not code:
        raise CallbackError(400, "Installation failed", "The install request has no authorization code.")
    store_hash = store_hash_from_context(context)
    if store_hash is None:
        raise CallbackError(400, "Installation failed", "The install request does not name a store.")
    granted = parse_scopes(params.get("scope"))
    # The query lists what the merchant approved; refuse before the exchange when it is short.
    if params.get("scope") is not None:
        check_scopes(granted)
    return AuthCallback(
        code=code,
        scopes=granted,
        context=context,
        store_hash=store_hash,
        account_uuid=params.get("account_uuid") or None,
    )


def check_scopes(granted: set[str]) -> None:
    missing = missing_scopes(granted)
    if missing:
        raise CallbackError(
            403,
            "Permissions missing",
            "The app needs these BigCommerce permissions, which were not granted: "
            + ", ".join(missing)
            + ". Ask the app's developer to add them to the app profile, then install again.",
        )


def exchange_code(
    settings: Settings, callback: AuthCallback, *, client: httpx.Client | None = None
) -> TokenGrant:
    """POST the grant code to `SMBC_BC_LOGIN_URL/oauth2/token` and validate the answer."""
    form = {
        "client_id": settings.bc_client_id,
        "client_secret": settings.bc_client_secret,
        "code": callback.code,
        "context": callback.context,
        "scope": " ".join(sorted(callback.scopes)),
        "grant_type": "authorization_code",
        "redirect_uri": f"{settings.app_url}/bigcommerce/auth",
    }
    url = f"{settings.bc_login_url}/oauth2/token"
    try:
        if client is None:
            with httpx.Client(timeout=TOKEN_EXCHANGE_TIMEOUT) as own:
                response = own.post(url, data=form, headers={"Accept": "application/json"})
        else:
            response = client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        log.warning("token exchange failed: %s", type(exc).__name__)
        raise CallbackError(
            502, "BigCommerce is not reachable", "The app could not reach BigCommerce. Try again in a minute."
        ) from None
    return _grant_from_response(response, callback)


def _grant_from_response(response: httpx.Response, callback: AuthCallback) -> TokenGrant:
    if response.status_code >= 500:
        log.warning("token exchange: BigCommerce answered %s", response.status_code)
        raise CallbackError(
            502, "BigCommerce is not reachable", "BigCommerce could not complete the installation. Try again."
        )
    if response.status_code != 200:
        log.warning("token exchange refused with status %s", response.status_code)
        raise CallbackError(
            401,
            "Installation was refused",
            "BigCommerce did not accept the authorization code (it may have expired or been used already). "
            "Install the app again from the control panel.",
        )
    try:
        body = read_answer(OAuthToken, response.json(), call="BigCommerce POST /oauth2/token")
    except AnswerError as error:
        log.warning("%s", error)  # names the unreadable fields, never their values
        raise CallbackError(
            401,
            "Installation was refused",
            "BigCommerce's answer could not be read: " + "; ".join(error.problems),
        ) from None
    except ValueError:
        raise CallbackError(401, "Installation was refused", "BigCommerce's answer was not JSON.") from None
    token = body.access_token
    if not token or store_hash_from_context(body.context) != callback.store_hash:
        raise CallbackError(401, "Installation was refused", "BigCommerce's answer is for another store.")
    user = BcUser(id=body.user.id, email=body.user.email or "")
    owner = BcUser(id=body.owner.id, email=body.owner.email or "") if body.owner is not None else user
    scopes = parse_scopes(body.scope) if body.scope is not None else callback.scopes
    check_scopes(scopes)
    return TokenGrant(
        access_token=token,
        scopes=scopes,
        store_hash=callback.store_hash,
        user=user,
        owner=owner,
        account_uuid=body.account_uuid or callback.account_uuid,
    )


def record_install(session: Session, grant: TokenGrant) -> InstallResult:
    """Create the store or replace its token (re-install, or re-auth after a scope change)."""
    store = session.scalar(select(Store).where(Store.hash == grant.store_hash))
    if store is None:
        kind = "installed"
        store = Store(hash=grant.store_hash, installed_at=utcnow())
        session.add(store)
    elif store.installed:
        kind = "reauthorized"
    else:
        kind = "reinstalled"
        store.installed_at = utcnow()
    store.status = "installed"
    store.uninstalled_at = None
    store.access_token = grant.access_token
    store.scopes = " ".join(sorted(grant.scopes))
    store.owner_bc_id = grant.owner.id
    store.owner_email = grant.owner.email or store.owner_email
    store.account_uuid = grant.account_uuid or store.account_uuid
    # Kept across re-auth: SALESmanago and BigCommerce already hold URLs/headers built from them.
    store.webhook_secret = store.webhook_secret or random_secret()
    store.callback_secret = store.callback_secret or random_secret()
    if store.sync_paused_reason in (PauseReason.UNINSTALLED, PauseReason.UNINSTALL_UNCONFIRMED):
        store.sync_paused_reason = None
    if kind != "reauthorized":
        store.setup_completed_at = None
    session.flush()
    role = "owner" if grant.user.id == grant.owner.id else "user"
    user, _link = link_user(session, store, grant.user, role)
    return InstallResult(
        store_id=store.id,
        kind=kind,
        session=DashboardSession(
            store_hash=store.hash, user_id=user.id, bc_user_id=user.bc_user_id, role=role, email=user.email
        ),
        store_name=store_display_name(store),
    )


def link_user(session: Session, store: Store, bc_user: BcUser, role: str) -> tuple[User, StoreUser]:
    """Provision a user the app has not seen and (re)link them to the store with `role`."""
    user = session.scalar(select(User).where(User.bc_user_id == bc_user.id))
    if user is None:
        user = User(bc_user_id=bc_user.id, email=bc_user.email, locale=bc_user.locale)
        session.add(user)
        session.flush()
    else:
        user.email = bc_user.email or user.email
        user.locale = bc_user.locale or user.locale
    link = session.scalar(
        select(StoreUser).where(StoreUser.store_id == store.id, StoreUser.user_id == user.id)
    )
    if link is None:
        link = StoreUser(store_id=store.id, user_id=user.id, role=role)
        session.add(link)
    else:
        link.role = role
    session.flush()
    return user, link


def store_display_name(store: Store) -> str:
    name = (store.info or {}).get("name") if isinstance(store.info, dict) else None
    return str(name) if name else store.hash


# --- load -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedApp:
    store_id: int
    session: DashboardSession
    store_name: str
    needs_setup: bool


def open_app(session: Session, payload: SignedPayload) -> OpenedApp:
    store = installed_store(session, payload.store_hash)
    refuse_if_removed(session, store.id, payload)
    role = "owner" if payload.is_owner else "user"
    user, _link = link_user(session, store, payload.user, role)
    return OpenedApp(
        store_id=store.id,
        session=DashboardSession(
            store_hash=store.hash, user_id=user.id, bc_user_id=user.bc_user_id, role=role, email=user.email
        ),
        store_name=store_display_name(store),
        needs_setup=store.setup_completed_at is None,
    )


def installed_store(session: Session, store_hash: str) -> Store:
    store = session.scalar(select(Store).where(Store.hash == store_hash))
    if store is None or not store.installed:
        raise CallbackError(
            403,
            "The app is not installed",
            "This store has not installed the app (or has uninstalled it). "
            "Install it from the BigCommerce control panel's Apps menu.",
        )
    return store


# --- uninstall / remove user / purge ----------------------------------------------------------


def uninstall_store(session: Session, store_hash: str) -> bool:
    """Forget the token and every secret, pause syncing; keep settings and ledgers (no resend on
    re-install). Returns False when the store is unknown (nothing to do)."""
    store = session.scalar(select(Store).where(Store.hash == store_hash))
    if store is None:
        return False
    store.access_token = None
    store.webhook_secret = None
    store.callback_secret = None
    store.status = "uninstalled"
    store.uninstalled_at = utcnow()
    store.sync_paused_reason = PauseReason.UNINSTALLED
    wipe_credentials(session, store)
    session.flush()
    return True


def remove_store_user(session: Session, store_hash: str, bc_user_id: int) -> bool:
    store = session.scalar(select(Store).where(Store.hash == store_hash))
    if store is not None:  # kept even for a user never seen: they may hold a load link
        record_removal(session, store.id, bc_user_id)
    user = session.scalar(select(User).where(User.bc_user_id == bc_user_id))
    if store is None or user is None:
        return False
    email = user.email
    removed = session.execute(
        delete(StoreUser).where(StoreUser.store_id == store.id, StoreUser.user_id == user.id)
    ).rowcount
    _delete_orphan_users(session)
    if removed:  # a manager saw the callback token: it changes with them gone
        rotate_if_manager_left(session, store, load_store_settings(session, store.id), email)
    return bool(removed)


def _delete_orphan_users(session: Session) -> None:
    linked = select(StoreUser.user_id)
    session.execute(delete(User).where(User.id.not_in(linked)))


def store_tables() -> list[tuple[str, str]]:
    """(table, column) for every table with a foreign key to stores.id, children first."""
    _import_feature_models()
    found = []
    for table in reversed(Base.metadata.sorted_tables):
        for fk in table.foreign_keys:
            if fk.column.table.name == "stores" and fk.column.name == "id":
                found.append((table.name, fk.parent.name))
    return found


def purge_store(session: Session, store_hash: str) -> dict[str, int] | None:
    """Delete everything of a store: its rows in every table that references it, then the store."""
    store = session.scalar(select(Store).where(Store.hash == store_hash))
    if store is None:
        return None
    counts: dict[str, int] = {}
    for table_name, column in store_tables():
        table = Base.metadata.tables[table_name]
        counts[table_name] = session.execute(delete(table).where(table.c[column] == store.id)).rowcount
    session.execute(delete(Store).where(Store.id == store.id))
    counts["stores"] = 1
    _delete_orphan_users(session)
    return counts
