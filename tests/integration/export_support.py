"""The export tests' world: both fakes on local servers, a migrated database, the sandbox store
installed (a row with the fake's token) and connected to the fake SALESmanago's NORMAL account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store
from smbc.export.models import Export
from smbc.salesmanago.client import compute_sha
from smbc.sandbox import Sandbox
from smbc.sandbox.bigcommerce import DEFAULT_APP_SCOPES
from smbc.settings.store_settings import save_store_settings

API_KEY = "export-tests-api-key"


@dataclass
class World:
    sb: Sandbox
    settings: Settings
    runtime: Runtime
    store_id: int
    store_hash: str

    @property
    def db(self):
        return self.runtime.db

    @property
    def cid(self) -> str:
        return self.sb.sm.NORMAL.client_id

    def export(self, export_id: int) -> Export:
        with self.db.session() as s:
            row = s.get(Export, export_id)
            assert row is not None
            s.expunge(row)
            return row

    def set(self, changes: dict[str, object]) -> None:
        with self.db.session() as s:
            save_store_settings(s, self.store_id, changes, "tests")

    def bc_store(self):
        return self.sb.bc.store(self.store_hash)

    def seed_completed_orders(self, orders: int, customers: int = 0) -> None:
        """Orders created 2 to 20 February 2026, all Completed and none refunded (one PURCHASE each)."""
        self.sb.bc.seed(
            self.store_hash, customers=customers, orders=orders, start=date(2026, 2, 2), end=date(2026, 2, 20)
        )
        with self.sb.bc.lock:
            for order in self.bc_store().orders.values():
                order.status_id, order.refunded_amount = 10, Decimal("0")

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        return self.sb.sm.events(self.cid, type=type)

    def contacts(self) -> list[dict[str, Any]]:
        """The account's contacts once SALESmanago applied the asynchronous batches it accepted."""
        self.sb.sm.apply_pending_batches()
        return self.sb.sm.contacts(self.cid)

    def sm_calls(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.sb.sm.calls if c["path"] == path]


@contextmanager
def export_world(settings: Settings, *, timezone: str = "UTC", quota: int = 100_000) -> Iterator[World]:
    with Sandbox() as sb:
        app_settings = settings.model_copy(update=sb.app_settings())
        runtime = init_runtime(app_settings, migrate=True)
        # A store of its own: the per-store limiter keys in a shared Redis never meet another suite's.
        store_hash = sb.bc.add_store(f"exp{uuid.uuid4().hex[:8]}")
        sb.bc.set_quota(store_hash, requests=quota, window_s=30)
        token = sb.bc.issue_token(store_hash, app_settings.bc_client_id, DEFAULT_APP_SCOPES)
        normal = sb.sm.NORMAL
        try:
            with runtime.db.session() as s:
                store = Store(
                    hash=store_hash,
                    status="installed",
                    access_token=token,
                    timezone=timezone,
                    info={"language": "en"},
                    channels=[],
                    sites=[],
                )
                s.add(store)
                s.flush()
                s.add(
                    SalesmanagoAccount(
                        store_id=store.id,
                        endpoint=sb.sm_url,
                        client_id=normal.client_id,
                        api_key=API_KEY,
                        sha=compute_sha(API_KEY, normal.client_id, normal.api_secret),
                        login_email=normal.email,
                        owners=list(normal.owners),
                        auth_mode="credentials",
                    )
                )
                store_id = store.id
            yield World(sb, app_settings, runtime, store_id, store_hash)
        finally:
            close_runtime()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def store_id_of(world: World) -> int:
    with world.db.session() as s:
        return s.scalars(select(Store.id).where(Store.hash == world.store_hash)).one()
