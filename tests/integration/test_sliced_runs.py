"""The engine's sliced run as both long jobs use it: a job whose store uninstalled the app ends failed
with the reason before any remote call, and a used-up time slice gives the lease back and queues the
job again with its cursor saved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from export_support import World, export_world
from realtime_env import RealtimeEnv
from sqlalchemy import func, select

from smbc.catalog import service as catalog_service
from smbc.catalog import sync
from smbc.catalog.models import CatalogSync
from smbc.core.clock import FakeClock, set_clock, utcnow
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.sliced_runs import UNINSTALLED
from smbc.export import runner
from smbc.export import service as export_service

FEB = (date(2026, 2, 1), date(2026, 2, 28))


@pytest.fixture
def w(backend_settings: Settings) -> Iterator[World]:
    with export_world(backend_settings) as world:
        yield world


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


def _uninstall(db: Database, store_id: int) -> None:
    with db.session() as s:
        s.get(Store, store_id).status = "uninstalled"


def _calls(db: Database, context: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).where(RemoteCall.context == context)) or 0


def test_an_export_of_a_store_that_uninstalled_the_app_fails_saying_so(w: World) -> None:
    export_id = export_service.start_export(w.db, w.store_id, "contacts", *FEB, enqueue=False)
    _uninstall(w.db, w.store_id)
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "failed"
    row = w.export(export_id)
    assert (row.last_error, row.active_slot, row.lease_owner) == (UNINSTALLED, None, None)
    assert _calls(w.db, f"export:{export_id}") == 0


def test_a_catalog_sync_of_a_store_that_uninstalled_the_app_fails_saying_so(env: RealtimeEnv) -> None:
    catalog_service.create_catalog(env.db, env.store_id, 1, "Shop", recommendations=False, actor="test")
    [sync_id] = catalog_service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    _uninstall(env.db, env.store_id)
    assert sync.run_sync(sync_id, db=env.db, time_slice=None, force=True) == "failed"
    with env.db.session() as s:
        row = s.get(CatalogSync, sync_id)
        assert (row.status, row.last_error, row.active_slot, row.lease_owner) == (
            "failed",
            UNINSTALLED,
            None,
            None,
        )
    assert _calls(env.db, f"catalog:{sync_id}") == 0


def test_a_used_up_time_slice_releases_the_sync_and_queues_it_again(
    env: RealtimeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog_service.create_catalog(env.db, env.store_id, 1, "Shop", recommendations=False, actor="test")
    [sync_id] = catalog_service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    queued: list[int] = []
    monkeypatch.setattr(sync, "enqueue_sync", lambda row_id, delay=None: queued.append(row_id))
    clock = FakeClock(utcnow())
    previous = set_clock(clock)
    try:
        status = sync.run_sync(sync_id, db=env.db, time_slice=10, on_page=lambda row: clock.advance(11))
    finally:
        set_clock(previous)
    assert (status, queued) == ("running", [sync_id])
    with env.db.session() as s:
        row = s.get(CatalogSync, sync_id)
        assert (row.status, row.lease_owner, row.phase) == ("running", None, "gone")
    assert _calls(env.db, f"catalog:{sync_id}") > 0  # recorded when the lease was given back
    assert sync.run_sync(sync_id, db=env.db, time_slice=None) == "done"
