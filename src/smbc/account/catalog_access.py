"""The store's SALESmanago Product Catalog client: the account's API v3 key (created at login) on the
operator's v3 URL. Without a key there is no catalog to talk to, which is not a credentials failure
of the store (its contacts and events still flow): `NoCatalogKey` says what to do instead."""

from __future__ import annotations

import httpx
from sqlalchemy.orm import Session

from smbc.account.credentials import get_account
from smbc.core.remote_calls import BackoffPolicy
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.salesmanago.catalog import CatalogApi
from smbc.salesmanago.client import Recorder

NO_KEY_MESSAGE = (
    "This store has no SALESmanago API v3 key, which the product catalog needs. Log in to SALESmanago "
    "again under Account Settings with your e-mail and password: a key is created at login."
)


class NoCatalogKey(Exception):
    """The store is not connected, or its account has no API v3 key."""

    def __init__(self) -> None:
        super().__init__(NO_KEY_MESSAGE)


def has_catalog_key(session: Session, store_id: int) -> bool:
    account = get_account(session, store_id)
    return account is not None and bool(account.v3_key)


def catalog_api(
    session: Session,
    store: Store,
    *,
    recorder: Recorder | None = None,
    context: str = "",
    http: httpx.Client | None = None,
    policy: BackoffPolicy | None = None,
) -> CatalogApi:
    """The catalog client of a connected store (the session is only read; close it before calling)."""
    account = get_account(session, store.id)
    if account is None or not account.v3_key:
        raise NoCatalogKey()
    return CatalogApi(
        account.v3_key,
        v3_url=get_runtime().settings.sm_v3_url,
        http=http,
        recorder=recorder,
        policy=policy,
        context=context,
    )
