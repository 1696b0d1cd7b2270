"""Catalog prices in the catalog's currency, end to end: a storefront whose catalog is in EUR gets
the store's USD prices at BigCommerce's rate; a catalog in a currency the store does not have gets
no price at all, and its sync stops with the reason (the tab's status and `smbc catalog sync`)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from export_support import World, export_world
from realtime_env import RealtimeEnv
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.account.models import SalesmanagoAccount
from smbc.catalog import service
from smbc.catalog.sync import run_sync
from smbc.cli.main import app
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.sandbox.bigcommerce import FakeBigCommerce
from smbc.sandbox.bigcommerce.state import Currency
from support import settings_in_environment

NOT_IN_STORE = "catalog currency PLN is not a currency of this store"


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


def storefront_currency(bc: FakeBigCommerce, store_hash: str, channel_id: int, code: str) -> None:
    """The merchant makes `code` the storefront's default currency (its catalog is created in it)."""
    with bc.lock:
        bc.store(store_hash).channel_currencies[channel_id] = ([code], code)


def test_a_catalog_in_euro_gets_prices_converted_at_the_store_rate(env: RealtimeEnv) -> None:
    storefront_currency(env.bc, env.store_hash, 1, "EUR")
    euro = service.create_catalog(env.db, env.store_id, 1, "Euro", recommendations=False, actor="test")
    dollar = service.create_catalog(env.db, env.store_id, 2, "Dollar", recommendations=False, actor="test")
    listed = {c["catalogId"]: c["currency"] for c in env.sm.catalogs.catalogs(env.client_id)}
    assert (listed[euro], listed[dollar]) == ("EUR", "USD")

    for channel_id in (1, 2):
        [sync_id] = service.start_sync(env.db, env.store_id, [channel_id], actor="test", enqueue=False)
        assert run_sync(sync_id, db=env.db, time_slice=None, force=True) == "done"

    in_euro = {p["productId"]: p for p in env.sm.catalogs.products(env.client_id, euro)}
    in_dollar = {p["productId"]: p for p in env.sm.catalogs.products(env.client_id, dollar)}
    assert in_euro["77"]["price"] == 11.44  # the mug: 12.50 USD x 0.915 = 11.4375
    tote = in_euro["83"]  # 15.00 USD, on sale at 12.00
    assert (tote["price"], tote["discountPrice"]) == (13.73, 10.98)  # 13.725 and 10.98, half up
    assert (in_dollar["84"]["price"], in_dollar["84"]["discountPrice"]) == (18.0, 9.99)  # USD as it is
    with env.db.session() as s:
        reads = s.scalars(select(RemoteCall.id).where(RemoteCall.endpoint.like("%/v2/currencies"))).all()
    assert len(reads) == 2  # once per run, not per page or product

    env.admin.update_product(77, name="Euro Mug")  # real time converts too
    env.settle()
    mug = next(p for p in env.sm.catalogs.products(env.client_id, euro) if p["productId"] == "77")
    assert (mug["name"], mug["price"]) == ("Euro Mug", 11.44)


def test_a_catalog_in_a_currency_the_store_lacks_gets_no_price_and_says_why(env: RealtimeEnv) -> None:
    storefront_currency(env.bc, env.store_hash, 1, "PLN")
    zloty = service.create_catalog(env.db, env.store_id, 1, "Zloty", recommendations=False, actor="test")
    [sync_id] = service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    assert run_sync(sync_id, db=env.db, time_slice=None, force=True) == "failed"
    assert env.sm.catalogs.products(env.client_id, zloty) == []
    _, statuses = service.catalog_status(env.db, env.store_id)
    [shown] = [s for s in statuses if s.storefront.channel_id == 1]
    assert shown.last is not None and shown.last.last_error.startswith(NOT_IN_STORE)
    env.admin.update_product(77, name="Zloty Mug")  # nor does real time send a price in USD there
    env.settle()
    assert env.sm.catalogs.products(env.client_id, zloty) == []

    with env.bc.lock:  # the merchant adds the currency in BigCommerce: the next sync goes on
        env.bc.store(env.store_hash).currencies["PLN"] = Currency(
            9, "PLN", "Zloty", Decimal("3.9"), "zł", "PL"
        )
    [again] = service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    assert run_sync(again, db=env.db, time_slice=None, force=True) == "done"
    assert env.sm.catalogs.products(env.client_id, zloty)[0]["price"] > 0


@pytest.fixture
def w(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with export_world(backend_settings) as world, settings_in_environment(world.settings, monkeypatch):
        yield world


def test_the_cli_sync_says_the_currency_is_not_the_stores(w: World) -> None:
    normal = w.sb.sm.NORMAL
    body = {"email": normal.email, "password": normal.password, "keyName": "BC_test", "expiry": "NEVER"}
    key = httpx.post(f"{w.sb.sm_url}/v3/auth/create", json=body).json()["apiKey"]
    with w.db.session() as s:
        s.scalars(select(SalesmanagoAccount)).one().v3_key = key
    created = httpx.post(
        f"{w.sb.sm_url}/v3/product/catalogUpsert",
        json={"name": "Zloty", "currency": "PLN", "location": "sm_cli", "setAsDefault": False},
        headers={"API-KEY": key},
    ).json()["catalogId"]
    w.set({"catalog.1": created})
    synced = CliRunner().invoke(app, ["catalog", "sync", "--store", w.store_hash, "--channel", "1"])
    assert synced.exit_code == 1 and NOT_IN_STORE in synced.output
    assert w.sb.sm.catalogs.products(w.cid, created) == []
