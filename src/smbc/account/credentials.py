"""A store's SALESmanago account: stored credentials, the effective contact owner, storefront
locations, callback URLs, and wiping it all (log out, uninstall)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.account.models import SalesmanagoAccount
from smbc.core.config import random_secret
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service
from smbc.db.models import Store
from smbc.salesmanago.client import Recorder, SalesmanagoClient, SalesmanagoCredentials
from smbc.salesmanago.endpoints import EndpointAllowlist
from smbc.settings.store_settings import StoreSettings, default_location, load_store_settings

_GONE_STATUSES = {"deleted", "archived", "terminated", "disconnected"}


def get_account(session: Session, store_id: int) -> SalesmanagoAccount | None:
    return session.scalar(select(SalesmanagoAccount).where(SalesmanagoAccount.store_id == store_id))


def effective_owner(settings: StoreSettings, account: SalesmanagoAccount) -> str:
    """The saved contact owner while SALESmanago still lists it (spelled as SALESmanago lists it),
    otherwise the login e-mail."""
    owners = list(account.owners or [])
    owner = settings.contact_owner.strip()
    if not owner:
        return account.login_email
    if not owners:
        return owner
    return next((o for o in owners if o.lower() == owner.lower()), account.login_email)


def owner_fell_back(settings: StoreSettings, account: SalesmanagoAccount) -> bool:
    """True when a saved owner is no longer a user of the account (the page says so)."""
    saved = settings.contact_owner.strip().lower()
    return bool(saved) and effective_owner(settings, account).lower() != saved


def store_credentials(session: Session, store: Store) -> SalesmanagoCredentials:
    """The v2 credentials of a connected store; RemoteCallError(CREDENTIALS) when not connected."""
    account = get_account(session, store.id)
    if account is None:
        raise RemoteCallError(
            Outcome.CREDENTIALS,
            "This store is not connected to SALESmanago: log in under Account Settings.",
            service=Service.SALESMANAGO,
        )
    settings = load_store_settings(session, store.id)
    return SalesmanagoCredentials(
        endpoint=account.endpoint,
        client_id=account.client_id,
        api_key=account.api_key,
        sha=account.sha,
        owner=effective_owner(settings, account),
    )


def salesmanago_client(
    session: Session,
    store: Store,
    *,
    recorder: Recorder,
    http: httpx.Client | None = None,
    policy: BackoffPolicy | None = None,
    context: str = "",
    allowlist: EndpointAllowlist | None = None,
) -> SalesmanagoClient:
    """The SALESmanago client of a connected store, owner = the saved contact owner (or the login
    e-mail); RemoteCallError(CREDENTIALS) when not connected.

    Its calls go to `recorder` (written later, in a transaction of their own: the session given
    here is only read, and must not be open while the client calls). The stored endpoint is checked
    against `allowlist` (default: `SMBC_SM_ENDPOINT_HOSTS`) before every call."""
    return SalesmanagoClient(
        store_credentials(session, store),
        allowlist=allowlist,
        http=http,
        recorder=recorder,
        policy=policy,
        context=context,
    )


def wipe_credentials(session: Session, store: Store) -> SalesmanagoAccount | None:
    """Forget every SALESmanago secret of the store (log out and uninstall). Returns the deleted row,
    whose attributes stay readable, so a caller can still revoke its v3 key."""
    account = get_account(session, store.id)
    if account is None:
        return None
    session.delete(account)
    session.flush()
    return account


# -- storefronts and locations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Storefront:
    channel_id: int
    name: str
    url: str


def storefronts(store: Store) -> list[Storefront]:
    """The store's storefront channels with their primary URL (channel 1 when nothing is known yet)."""
    urls = _site_urls(store.sites or [])
    result: list[Storefront] = []
    for channel in store.channels or []:
        if not isinstance(channel, dict) or "id" not in channel:
            continue
        if channel.get("type", "storefront") != "storefront" or channel.get("status") in _GONE_STATUSES:
            continue
        channel_id = int(channel["id"])
        name = str(channel.get("name") or f"Storefront {channel_id}")
        result.append(Storefront(channel_id, name, urls.get(channel_id) or _store_url(store)))
    if not result:
        result.append(
            Storefront(1, str((store.info or {}).get("name") or "Default storefront"), _store_url(store))
        )
    return sorted(result, key=lambda s: s.channel_id)


def _site_urls(sites: list[dict[str, Any]]) -> dict[int, str]:
    urls: dict[int, str] = {}
    for site in sites:
        if not isinstance(site, dict) or site.get("channel_id") is None:
            continue
        primary = next(
            (
                u.get("url")
                for u in site.get("urls") or []
                if isinstance(u, dict) and u.get("type") == "primary"
            ),
            None,
        )
        url = primary or site.get("url")
        if url:
            urls.setdefault(int(site["channel_id"]), str(url))
    return urls


def _store_url(store: Store) -> str:
    info = store.info or {}
    if info.get("secure_url"):
        return str(info["secure_url"])
    if info.get("domain"):
        return "https://" + str(info["domain"])
    return f"https://store-{store.hash}.mybigcommerce.com"


def effective_locations(store: Store, settings: StoreSettings) -> dict[int, str]:
    """Location (e-store ID) per storefront channel: the saved one or `sm_` + md5 of its URL."""
    out = {
        s.channel_id: settings.locations.get(s.channel_id) or default_location(s.url)
        for s in storefronts(store)
    }
    for channel_id, location in settings.locations.items():  # a saved value for a channel not listed
        out.setdefault(channel_id, location)
    return out


# -- callback URLs ---------------------------------------------------------------------------------------


def ensure_callback_secret(store: Store) -> str:
    if not store.callback_secret:
        store.callback_secret = random_secret(24)
    return store.callback_secret


def rotate_callback_secret(store: Store) -> str:
    """A new callback token: the old URLs stop working until pasted again into SALESmanago."""
    store.callback_secret = random_secret(24)
    return store.callback_secret


def callback_urls(app_url: str, store: Store) -> dict[str, str]:
    """The opt-in / opt-out URLs to paste into SALESmanago (`$email$` is SALESmanago's placeholder)."""
    secret = ensure_callback_secret(store)
    base = app_url.rstrip("/") + "/callbacks/salesmanago"
    query = f"?email=$email$&store={quote(store.hash)}&token={quote(secret)}"
    return {"opt_in": f"{base}/opt-in{query}", "opt_out": f"{base}/opt-out{query}"}
