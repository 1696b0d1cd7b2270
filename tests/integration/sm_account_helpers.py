"""Helpers for the SALESmanago-account tests: the app with a migrated database, an installed store
with a user, a minted dashboard session token, and a connected account row."""

from __future__ import annotations

import zlib
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.db.models import Store, StoreUser, User
from smbc.db.session import Database
from smbc.stores.access import DashboardSession
from smbc.web.app import create_app
from smbc.web.session import mint_session_token

CHANNELS = [
    {"id": 1, "name": "Main shop", "type": "storefront", "status": "active"},
    {"id": 2, "name": "Outlet", "type": "storefront", "status": "active"},
    {"id": 3, "name": "Amazon", "type": "marketplace", "status": "active"},
]
SITES = [
    {"id": 1000, "channel_id": 1, "url": "https://main.example.test", "urls": []},
    {
        "id": 1001,
        "channel_id": 2,
        "url": "https://outlet.example.test",
        "urls": [{"url": "https://www.outlet.example.test", "type": "primary"}],
    },
]


def make_app(settings: Settings) -> FastAPI:
    if not settings.is_sqlite:  # the app migrates SQLite itself; PostgreSQL is migrated by `smbc db upgrade`
        Database(settings.database_url).upgrade()
    return create_app(settings, start_workers=False)


def add_store(
    app: FastAPI, store_hash: str = "abc123", email: str = "merchant@shop.test", role: str = "owner"
) -> str:
    """An installed store with one user; returns that user's dashboard session token."""
    db = app.state.runtime.db
    with db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == store_hash))
        if store is None:
            store = Store(
                hash=store_hash, status="installed", channels=CHANNELS, sites=SITES, info={"name": "Shop"}
            )
            s.add(store)
        user = User(bc_user_id=zlib.crc32(f"{store_hash}:{email}".encode()), email=email)
        s.add(user)
        s.flush()
        s.add(StoreUser(store_id=store.id, user_id=user.id, role=role))
        dash = DashboardSession(
            store_hash=store_hash, user_id=user.id, bc_user_id=user.bc_user_id, role=role, email=email
        )
    return mint_session_token(dash, app.state.settings.secret_keys)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def connect_account(app: FastAPI, store_hash: str = "abc123", **fields: Any) -> None:
    """A connected account row, as a successful login leaves it (no remote call)."""
    values: dict[str, Any] = {
        "endpoint": "http://127.0.0.1:9",
        "client_id": "cid123",
        "api_key": "k" * 32,
        "sha": "s" * 40,
        "login_email": "merchant@sandbox.test",
        "owners": ["merchant@sandbox.test", "team@sandbox.test"],
        "auth_mode": "login",
    }
    values.update(fields)
    with app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == store_hash))
        assert store is not None
        s.add(SalesmanagoAccount(store_id=store.id, **values))


def store_row(app: FastAPI, store_hash: str = "abc123") -> Store:
    with app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == store_hash))
        assert store is not None
        return store
