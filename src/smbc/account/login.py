"""Connecting a store to SALESmanago (e-mail + password, or API credentials), refreshing the owners
list and logging out. Every failure becomes a `LoginFailed` whose message says what to do next;
nothing about the account is saved unless every required step succeeded."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from smbc.account.credentials import (
    ensure_callback_secret,
    get_account,
    salesmanago_client,
    wipe_credentials,
)
from smbc.account.models import SalesmanagoAccount
from smbc.core.clock import get_clock, utcnow
from smbc.core.config import Settings
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, record_call
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.pausing import LIFTED_BY_LOGIN, PauseReason
from smbc.salesmanago.client import (
    MSG_USER_NOT_AUTHENTICATED,
    EndpointError,
    SalesmanagoAccountApi,
    SalesmanagoClient,
    SalesmanagoCredentials,
    UnexpectedAnswerError,
    new_api_key,
    normalize_endpoint,
    record_calls_into,
)
from smbc.salesmanago.endpoints import EndpointAllowlist, EndpointRefused
from smbc.settings.store_settings import load_store_settings, record_change, save_store_settings

log = logging.getLogger(__name__)

LOGIN_POLICY = BackoffPolicy(attempts=2, base=0.3, cap=2.0)
LOGIN_TIMEOUT = httpx.Timeout(15.0, connect=8.0)
_TWO_FACTOR_HINTS = (
    "two-factor",
    "two factor",
    "2fa",
    "second factor",
    "two-step",
    "2-step",
    "verification code",
)

MSG_WRONG_LOGIN = (
    "SALESmanago did not accept this e-mail and password. Check both (the password is case-sensitive) "
    "and try again."
)
MSG_INACTIVE = (
    "This SALESmanago account is inactive. Contact SALESmanago Customer Success to reactivate it, "
    "then log in again."
)
MSG_TWO_FACTOR = (
    "This SALESmanago user has two-factor authentication, which an app cannot complete. Choose "
    "“Use API credentials instead” and enter the endpoint, client ID and API secret shown in "
    "SALESmanago under Settings → Integration → API."
)
MSG_UNREACHABLE = (
    "The endpoint {host} does not resolve or does not answer. Check the endpoint shown in SALESmanago "
    "under Settings → Integration → API, or untick “Change endpoint” to use the default one."
)
MSG_NOT_SALESMANAGO = (
    "{host} answered, but not like a SALESmanago server does. Check the endpoint: it looks like "
    "app3.salesmanago.com (SALESmanago → Settings → Integration → API)."
)
MSG_DOWN = "SALESmanago is not available right now ({detail}). Nothing was saved; try again in a few minutes."
MSG_BAD_API_CREDENTIALS = (
    "SALESmanago did not accept this client ID and API secret. Copy both again from SALESmanago "
    "(Settings → Integration → API) and check that the endpoint is the one shown there."
)
MSG_CREDENTIALS_BROKEN = "SALESmanago no longer accepts this store's credentials: log out and log in again."
MSG_OWNER_NOT_USER = "{owner} is not a user of this SALESmanago account. Use one of: {owners}."


class LoginFailed(Exception):
    """Log in (or an account action) failed; `message` is for the merchant, `field` is the form field
    it belongs to (None: a page-level message)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self)


@dataclass
class LoginResult:
    account: SalesmanagoAccount
    warnings: list[str] = field(default_factory=list)


@dataclass
class LogoutResult:
    was_connected: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class OwnersRefresh:
    owners: list[str]
    fell_back_from: str | None  # the saved owner that is no longer a user


def _check_email(value: str, field_name: str, what: str = "e-mail address") -> str:
    email = (value or "").strip()
    if "@" not in email or " " in email or "." not in email.rsplit("@", 1)[-1]:
        raise LoginFailed(f"Enter a valid {what}.", field_name)
    return email


def _endpoint(value: str | None, default: str) -> str:
    try:
        return normalize_endpoint(value if value and value.strip() else default)
    except EndpointError as exc:
        raise LoginFailed(str(exc), "endpoint") from None


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _explain(exc: RemoteCallError, endpoint: str, bad_credentials: LoginFailed) -> LoginFailed:
    """One place that turns a failed login step into the merchant's message (`bad_credentials`
    when SALESmanago refused the credentials themselves)."""
    if isinstance(exc, EndpointRefused):  # nothing was sent: the same message whatever is there
        return LoginFailed(exc.message, "endpoint")
    text = exc.message.lower()
    if any(hint in text for hint in _TWO_FACTOR_HINTS):
        return LoginFailed(MSG_TWO_FACTOR)
    if exc.outcome is Outcome.RATE_LIMITED or (exc.status is not None and exc.status >= 500):
        detail = f"HTTP {exc.status}" if exc.status else "too many requests"
        return LoginFailed(MSG_DOWN.format(detail=detail))
    if exc.status is None and exc.outcome is Outcome.RETRY:  # DNS failure, refused, timed out
        return LoginFailed(MSG_UNREACHABLE.format(host=_host(endpoint)), "endpoint")
    if isinstance(exc, UnexpectedAnswerError):
        return LoginFailed(MSG_NOT_SALESMANAGO.format(host=_host(endpoint)), "endpoint")
    if exc.outcome is Outcome.CREDENTIALS:
        if MSG_USER_NOT_AUTHENTICATED in text or exc.status in (401, 403):
            return bad_credentials
        return LoginFailed(MSG_INACTIVE)  # "Not authenticated": SDK code 102, inactive account
    return LoginFailed(f"SALESmanago refused the login: {exc.message or 'no reason given'}.")


Calls = list[dict[str, Any]]


def _account_api(
    settings: Settings,
    store_id: int,
    calls: Calls,
    http: httpx.Client | None,
    hide: tuple[str, ...],
    context: str = "login",
) -> SalesmanagoAccountApi:
    return SalesmanagoAccountApi(
        v3_url=settings.sm_v3_url,
        allowlist=EndpointAllowlist.parse(settings.sm_endpoint_hosts),
        http=http,
        recorder=record_calls_into(calls.append, store_id),
        policy=LOGIN_POLICY,
        context=context,
        timeout=LOGIN_TIMEOUT,
        secrets_to_hide=hide,
    )


def _write_calls(session: Session, calls: Calls) -> None:
    for fields in calls:
        record_call(session, **fields)
    calls.clear()


@contextmanager
def _calls_kept_on_failure(db: Database, calls: Calls) -> Iterator[None]:
    """The remote steps run with no transaction open; when one fails, its calls are still recorded."""
    try:
        yield
    except BaseException:
        if calls:
            with db.session() as session:
                _write_calls(session, calls)
        raise


def _store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise LoginFailed("This store does not have the app installed.")
    return store


def login_with_password(
    db: Database,
    store_id: int,
    *,
    email: str,
    password: str,
    endpoint: str | None,
    settings: Settings,
    actor: str,
    http: httpx.Client | None = None,
) -> LoginResult:
    """Token → integration (fresh apiKey) → listByClient → v3 key, with no transaction open; then
    one short transaction saves the account with the call records."""
    email = _check_email(email, "email")
    if not password:
        raise LoginFailed("Enter your SALESmanago password.", "password")
    start = _endpoint(endpoint, settings.sm_default_endpoint)
    calls: Calls = []
    api = _account_api(settings, store_id, calls, http, (password,))
    warnings: list[str] = []

    with _calls_kept_on_failure(db, calls):
        try:
            answer = api.token(start, email, password)
        except RemoteCallError as exc:
            raise _explain(exc, start, LoginFailed(MSG_WRONG_LOGIN, "password")) from None
        token = str(answer["token"])
        try:  # the account's real app host; every later call goes there
            account_endpoint = normalize_endpoint(str(answer.get("endpoint") or start))
        except EndpointError:
            account_endpoint = start
        smapp = answer.get("smapp")

        api_key = new_api_key()
        try:
            client_id, sha = api.integration(account_endpoint, token, api_key)
        except RemoteCallError as exc:
            raise _explain(exc, account_endpoint, LoginFailed(MSG_WRONG_LOGIN, "password")) from None

        credentials = SalesmanagoCredentials(account_endpoint, client_id, api_key, sha, owner=email)
        owners = _list_owners(settings, store_id, calls, credentials, http, LoginFailed(MSG_INACTIVE))

        v3_key: str | None = None
        try:
            v3_key = api.v3_create(
                email, password, account_endpoint, f"bigcommerce_{int(get_clock().time())}"
            )
        except RemoteCallError as exc:  # not fatal: only the v3 features need the key
            log.info("SALESmanago v3 key not created for store %s: %s", store_id, exc.outcome)
            warnings.append(
                "Connected, but SALESmanago did not create an API v3 key "
                f"({exc.message or exc.outcome}). Contacts and events sync without it."
            )

    smapp_id = None if smapp in (None, "", 0, "0") else str(smapp)
    account = _new_account(credentials, email, owners, "login", token=token, smapp=smapp_id, v3_key=v3_key)
    _save(db, store_id, settings, actor, calls, account, http)
    return LoginResult(account, warnings)


def login_with_api_credentials(
    db: Database,
    store_id: int,
    *,
    endpoint: str,
    client_id: str,
    api_secret: str,
    owner: str,
    settings: Settings,
    actor: str,
    http: httpx.Client | None = None,
) -> LoginResult:
    """For users with two-factor authentication: we compute `sha` and check it with listByClient
    (no transaction open), then a short transaction saves the account."""
    account_endpoint = _endpoint(endpoint, "")
    client_id = (client_id or "").strip()
    if not client_id or not client_id.replace("-", "").replace("_", "").isalnum():
        raise LoginFailed(
            "Enter the client ID shown in SALESmanago under Settings → Integration → API.", "client_id"
        )
    if not (api_secret or "").strip():
        raise LoginFailed(
            "Enter the API secret shown in SALESmanago under Settings → Integration → API.", "api_secret"
        )
    owner = _check_email(owner, "owner", "owner e-mail (a SALESmanago user)")
    credentials = SalesmanagoCredentials.from_api_secret(account_endpoint, client_id, api_secret, owner)
    calls: Calls = []
    with _calls_kept_on_failure(db, calls):
        refused = LoginFailed(MSG_BAD_API_CREDENTIALS, "api_secret")
        owners = _list_owners(settings, store_id, calls, credentials, http, refused)
        if owner.lower() not in [o.lower() for o in owners]:
            raise LoginFailed(MSG_OWNER_NOT_USER.format(owner=owner, owners=", ".join(owners)), "owner")
    account = _new_account(credentials, owner, owners, "credentials")
    _save(db, store_id, settings, actor, calls, account, http)
    return LoginResult(account, [])


def _list_owners(
    settings: Settings,
    store_id: int,
    calls: Calls,
    credentials: SalesmanagoCredentials,
    http: httpx.Client | None,
    bad_credentials: LoginFailed,
) -> list[str]:
    client = SalesmanagoClient(
        credentials,
        allowlist=EndpointAllowlist.parse(settings.sm_endpoint_hosts),
        http=http,
        recorder=record_calls_into(calls.append, store_id),
        policy=LOGIN_POLICY,
        context="login",
        timeout=LOGIN_TIMEOUT,
    )
    try:
        return client.list_users()
    except RemoteCallError as exc:
        raise _explain(exc, credentials.endpoint, bad_credentials) from None


def _new_account(
    credentials: SalesmanagoCredentials,
    login_email: str,
    owners: list[str],
    auth_mode: str,
    *,
    token: str | None = None,
    smapp: str | None = None,
    v3_key: str | None = None,
) -> SalesmanagoAccount:
    """The account a login found, not yet saved."""
    now = utcnow()
    account = SalesmanagoAccount(login_email=login_email, owners=owners, auth_mode=auth_mode, v3_key=v3_key)
    account.endpoint, account.client_id = credentials.endpoint, credentials.client_id
    account.api_key, account.sha = credentials.api_key, credentials.sha
    account.token, account.smapp = token, smapp
    account.connected_at = account.owners_refreshed_at = now
    return account


def _save(
    db: Database,
    store_id: int,
    settings: Settings,
    actor: str,
    calls: Calls,
    account: SalesmanagoAccount,
    http: httpx.Client | None,
) -> None:
    """One short transaction: the new account replaces the old one, with the call records. The old
    v3 key is revoked after the commit."""
    login_email, owners, v3_key = account.login_email, account.owners, account.v3_key
    with db.session() as session:
        _write_calls(session, calls)
        store = _store(session, store_id)
        previous = wipe_credentials(session, store)
        previous_v3_key = previous.v3_key if previous is not None else None
        account.store_id = store.id
        session.add(account)
        # After login, an owner SALESmanago no longer lists is reset to the login e-mail.
        current = load_store_settings(session, store.id)
        if not current.contact_owner or current.contact_owner.lower() not in [o.lower() for o in owners]:
            save_store_settings(session, store.id, {"contact_owner": login_email.lower()}, actor)
        ensure_callback_secret(store)
        if store.sync_paused_reason in LIFTED_BY_LOGIN:
            store.sync_paused_reason = None
        record_change(
            session, store.id, actor, "sm.connected", "false", f"true (client ID {account.client_id})"
        )
    if previous_v3_key and previous_v3_key != v3_key:
        _revoke_quietly(db, store_id, settings, previous_v3_key, http)


def revoke_v3_key(
    db: Database,
    store_id: int,
    settings: Settings,
    v3_key: str,
    http: httpx.Client | None = None,
    *,
    context: str = "logout",
) -> None:
    """Revoke a v3 key (no transaction open), then record the call; raises the RemoteCallError."""
    calls: Calls = []
    api = _account_api(settings, store_id, calls, http, (v3_key,), context=context)
    try:
        api.v3_revoke(v3_key)
    finally:
        with db.session() as session:
            _write_calls(session, calls)


def _revoke_quietly(
    db: Database, store_id: int, settings: Settings, v3_key: str, http: httpx.Client | None
) -> str | None:
    """Revoke a v3 key; the problem, if any."""
    try:
        revoke_v3_key(db, store_id, settings, v3_key, http)
    except RemoteCallError as exc:
        return exc.message or str(exc.outcome)
    return None


def logout(
    db: Database, store_id: int, *, settings: Settings, actor: str, http: httpx.Client | None = None
) -> LogoutResult:
    """Wipe the credentials and pause syncing for the store (committed first), then revoke the v3
    key."""
    with db.session() as session:
        store = _store(session, store_id)
        account = get_account(session, store.id)
        if account is None:
            return LogoutResult(was_connected=False)
        client_id, v3_key = account.client_id, account.v3_key
        wipe_credentials(session, store)
        store.sync_paused_reason = PauseReason.LOGGED_OUT
        record_change(session, store.id, actor, "sm.connected", f"true (client ID {client_id})", "false")
    warnings: list[str] = []
    problem = _revoke_quietly(db, store_id, settings, v3_key, http) if v3_key else None
    if problem:
        warnings.append(
            f"Logged out, but SALESmanago did not revoke the API v3 key ({problem}). "
            "Remove it in SALESmanago under Settings → Integration → API v3."
        )
    return LogoutResult(was_connected=True, warnings=warnings)


def refresh_owners(
    db: Database,
    store_id: int,
    *,
    http: httpx.Client | None = None,
    allowlist: EndpointAllowlist | None = None,
) -> OwnersRefresh:
    """Fetch the owners list again (no transaction open); a saved owner no longer listed falls back
    to the login e-mail. The stored endpoint must pass `allowlist` (default: the process's)."""
    calls: Calls = []
    with db.session() as session:
        store = _store(session, store_id)
        account = get_account(session, store.id)
        if account is None:
            raise LoginFailed("Log in to SALESmanago first.")
        endpoint = account.endpoint
        client = salesmanago_client(
            session,
            store,
            http=http,
            recorder=record_calls_into(calls.append, store.id),
            policy=LOGIN_POLICY,
            context="owners",
            allowlist=allowlist,
        )
    with _calls_kept_on_failure(db, calls):
        try:
            owners = client.list_users()
        except RemoteCallError as exc:
            raise _explain(exc, endpoint, LoginFailed(MSG_CREDENTIALS_BROKEN)) from None
    with db.session() as session:
        _write_calls(session, calls)
        account = get_account(session, store_id)
        if account is None:
            raise LoginFailed("Log in to SALESmanago first.")
        account.owners = owners
        account.owners_refreshed_at = utcnow()
        saved = load_store_settings(session, store_id).contact_owner
    gone = saved if saved and saved.lower() not in [o.lower() for o in owners] else None
    return OwnersRefresh(owners=owners, fell_back_from=gone)
