"""`smbc catalog list` and `smbc catalog sync` against both fakes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from export_support import World, export_world
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.account.models import SalesmanagoAccount
from smbc.cli.main import app
from smbc.core.config import Settings
from support import settings_in_environment

runner = CliRunner()


def new_v3_key(world: World) -> str:
    normal = world.sb.sm.NORMAL
    body = {"email": normal.email, "password": normal.password, "keyName": "BC_test", "expiry": "NEVER"}
    return httpx.post(f"{world.sb.sm_url}/v3/auth/create", json=body).json()["apiKey"]


@pytest.fixture
def w(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with export_world(backend_settings) as world, settings_in_environment(world.settings, monkeypatch):
        yield world


def catalog(*args: str):
    return runner.invoke(app, ["catalog", *args])


def test_list_and_sync(w: World) -> None:
    without_key = catalog("list", "--store", w.store_hash)
    assert without_key.exit_code == 1 and "API v3 key" in without_key.output
    with w.db.session() as s:
        s.scalars(select(SalesmanagoAccount)).one().v3_key = new_v3_key(w)

    empty = catalog("list", "--store", w.store_hash)
    assert empty.exit_code == 0, empty.output
    nothing = catalog("sync", "--store", w.store_hash)
    assert nothing.exit_code == 1 and "pick or create one first" in nothing.output

    key = w.sb.sm.v3_keys(w.cid)[0]["apiKey"]
    created = httpx.post(
        f"{w.sb.sm_url}/v3/product/catalogUpsert",
        json={"name": "Shop", "currency": "USD", "location": "sm_cli", "setAsDefault": True},
        headers={"API-KEY": key},
    ).json()["catalogId"]
    listed = catalog("list", "--store", w.store_hash)
    assert listed.exit_code == 0 and f"{created}\tShop\tUSD\tsm_cli" in listed.output

    w.set({"catalog.1": created})
    synced = catalog("sync", "--store", w.store_hash, "--channel", "1")
    assert synced.exit_code == 0, synced.output
    sent = len(w.sb.sm.catalogs.products(w.cid, created))
    assert sent > 0 and f"Storefront 1: done; {sent} products read, {sent} sent" in synced.output
    unknown = catalog("sync", "--store", w.store_hash, "--channel", "9")
    assert unknown.exit_code == 1 and "no storefront channel 9" in unknown.output
