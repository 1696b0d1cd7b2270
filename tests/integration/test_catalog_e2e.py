"""The product catalog end to end: the app installed in the fake BigCommerce and logged in to the fake
SALESmanago (which creates the API v3 key), full syncs per storefront, webhooks, refusals, a killed
sync resumed, a catalog deleted in SALESmanago."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from realtime_env import RealtimeEnv
from sqlalchemy import select, update

from smbc.bigcommerce import catalog as bc_catalog
from smbc.catalog import service
from smbc.catalog import sync as sync_module
from smbc.catalog.models import CatalogSync
from smbc.catalog.sync import run_sync
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.realtime import inbox
from smbc.realtime import processing as realtime


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


def catalog_for(env: RealtimeEnv, channel_id: int, name: str) -> str:
    return service.create_catalog(env.db, env.store_id, channel_id, name, recommendations=True, actor="test")


def full_sync(env: RealtimeEnv, channel_id: int) -> CatalogSync:
    [sync_id] = service.start_sync(env.db, env.store_id, [channel_id], actor="test", enqueue=False)
    assert run_sync(sync_id, db=env.db, time_slice=None, force=True) == "done"
    [row] = service.sync_rows(env.db, [sync_id])
    return row


def products(env: RealtimeEnv, catalog_id: str) -> dict[str, dict[str, Any]]:
    return {p["productId"]: p for p in env.sm.catalogs.products(env.client_id, catalog_id)}


def test_full_sync_per_storefront_matches_the_events_identifiers(env: RealtimeEnv) -> None:
    main = catalog_for(env, 1, "Main store")
    outlet = catalog_for(env, 2, "Outlet")
    listed = {c["catalogId"]: c for c in env.sm.catalogs.catalogs(env.client_id)}
    assert (listed[main]["name"], listed[main]["currency"]) == ("Main_store", "USD")
    assert listed[outlet]["setAsDefault"] is True  # "use in recommendation frames"

    first, second = full_sync(env, 1), full_sync(env, 2)
    on_one, on_two = products(env, main), products(env, outlet)
    assert first.failed == 0 and first.sent == len(on_one)
    assert {"77", "82", "83"} <= set(on_one) and "84" not in on_one  # 84 is on storefront 2 only
    assert "84" in on_two and "83" not in on_two
    assert "85" not in on_one and "85" not in on_two  # not visible
    mug = on_one["77"]
    assert mug["name"] == "Sandbox Mug" and "<" not in mug.get("description", "")
    assert mug["productUrl"].startswith(env.bc.storefront_url(env.store_hash, 1))
    assert mug["mainImageUrl"] and mug["available"] is True and mug["price"] == 12.5
    assert second.sent == len(on_two)

    cart = env.storefront.add_to_cart(product_id=77, quantity=1)
    env.storefront.add_to_cart(cart["id"], product_id=83)
    env.storefront.set_cart_email(cart["id"], "shopper@example.com")
    env.storefront.checkout(cart["id"], guest_email="shopper@example.com")
    env.settle()
    [purchase] = env.events("PURCHASE")
    assert set(purchase["products"].split(",")) <= set(on_one)


def test_variant_identifiers_and_a_product_update_and_delete_by_webhook(env: RealtimeEnv) -> None:
    env.configure(product_identifier="variant_id")
    main = catalog_for(env, 1, "Variants")
    full_sync(env, 1)
    sneakers = {key: p for key, p in products(env, main).items() if key in ("182", "183", "184")}
    assert set(sneakers) == {"182", "183", "184"}  # one SALESmanago product per variant
    assert sneakers["184"]["price"] == 64.0 and sneakers["183"]["available"] is False  # out of stock

    cart = env.storefront.add_to_cart(product_id=82, variant_id=184)
    env.storefront.set_cart_email(cart["id"], "variant@example.com")
    env.settle()
    [cart_event] = env.events("CART")
    assert cart_event["products"] == "184"

    env.admin.update_product(77, name="Sandbox Mug XL")
    env.admin.update_product(77, name="Sandbox Mug XXL")
    env.admin.set_stock(82, 9, variant_id=183)
    env.settle()
    now = products(env, main)
    assert now["177"]["name"] == "Sandbox Mug XXL"
    assert now["183"]["available"] is True and now["183"]["quantity"] == 9

    env.admin.set_stock(82, 5, variant_id=182)  # 4 -> 5: still available, only the quantity changes
    env.settle()
    assert products(env, main)["182"]["quantity"] == 5
    assert [c for c in env.sm.calls if c["path"] == "/v3/product/updateQuantity"]

    env.admin.delete_product(77)
    env.settle()
    gone = products(env, main)["177"]
    assert gone["available"] is False and gone["active"] is False


def test_a_refused_product_is_counted_and_the_rest_goes_in(env: RealtimeEnv) -> None:
    broken = env.admin.create_product("Broken", "BRK-1", "1.00", channel_ids=[1])
    env.settle()  # no catalog yet: the webhook sends nothing
    with env.bc.lock:  # a price SALESmanago refuses (negative), changed without a webhook
        env.bc.store(env.store_hash).products[broken["id"]].price = Decimal("-1")
    main = catalog_for(env, 1, "Refusals")
    row = full_sync(env, 1)
    in_catalog = products(env, main)
    assert row.failed == 1 and str(broken["id"]) not in in_catalog
    assert any("price" in reason for reason in row.reasons)
    assert [r["product_id"] for r in row.refused] == [str(broken["id"])]
    assert row.sent == len(in_catalog) and "77" in in_catalog


def test_a_killed_sync_resumes_from_its_cursor_and_gone_products_become_unavailable(env: RealtimeEnv) -> None:
    env.bc.seed(env.store_hash, products=600, products_with_variants=0)
    main = catalog_for(env, 1, "Bulk")
    [sync_id] = service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    pages: list[int] = []

    class Killed(BaseException):  # a kill: no handler of the product sees it
        pass

    def die_after_two_pages(row: CatalogSync) -> None:
        pages.append(row.after_id)
        if len(pages) == 2:
            raise Killed()

    with pytest.raises(Killed):
        run_sync(sync_id, db=env.db, time_slice=None, on_page=die_after_two_pages, force=True)
    [row] = service.sync_rows(env.db, [sync_id])
    assert row.active and row.after_id == pages[0]  # the page whose transaction failed is not saved
    with env.db.session() as s:  # the worker died: its lease goes stale
        s.execute(
            update(CatalogSync).where(CatalogSync.id == sync_id).values(heartbeat_at=None, lease_owner=None)
        )
    assert run_sync(sync_id, db=env.db, time_slice=None, force=True) == "done"
    [row] = service.sync_rows(env.db, [sync_id])
    # Every product counted once: the page saved before the kill was not sent again.
    assert row.failed == 0 and row.products_read == row.sent == len(products(env, main)) > 500

    with env.bc.lock:  # gone from BigCommerce without a webhook (as the fake's delete, unannounced)
        store = env.bc.store(env.store_hash)
        store.deleted_products.add(78)
        store.removed(store.products, 78)
    again = full_sync(env, 1)
    assert products(env, main)["78"]["available"] is False
    assert products(env, main)["78"]["active"] is False and again.gone == 1


def test_a_catalog_deleted_in_salesmanago_pauses_that_storefront(env: RealtimeEnv) -> None:
    main = catalog_for(env, 1, "Doomed")
    env.sm.catalogs.delete(env.client_id, main)
    [sync_id] = service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    assert run_sync(sync_id, db=env.db, time_slice=None, force=True) == "failed"
    has_key, storefronts = service.catalog_status(env.db, env.store_id)
    paused = next(s for s in storefronts if s.storefront.channel_id == 1)
    assert has_key and paused.paused and main in paused.paused
    upserts = [c for c in env.sm.calls if c["path"] == "/v3/product/upsert"]
    assert len(upserts) == 1  # no retry storm
    with pytest.raises(service.CatalogProblem):
        service.start_sync(env.db, env.store_id, [1], actor="test", enqueue=False)
    assert service.start_due_syncs(env.db) == 0  # the nightly sync leaves a paused storefront alone
    catalog_for(env, 1, "Fresh")  # picking another catalog goes on
    assert full_sync(env, 1).status == "done"


def test_a_burst_on_one_product_is_one_read_and_one_upsert(env: RealtimeEnv) -> None:
    main = catalog_for(env, 1, "Burst")
    full_sync(env, 1)
    env.admin.update_product(77, name="Burst Mug")  # BigCommerce has the last state; three hooks say so
    env.settle()
    burst = [
        ("store/product/updated", {"type": "product", "id": 77}),
        ("store/product/updated", {"type": "product", "id": 77}),
        ("store/product/inventory/updated", {"type": "product", "id": 77, "inventory": {"product_id": 77}}),
    ]
    ids = [
        inbox.record_synthetic(env.db, env.store_id, scope, data, created_at=1767300000 + n, source="test")
        for n, (scope, data) in enumerate(burst)
    ]
    upserts = len([c for c in env.sm.calls if c["path"] == "/v3/product/upsert"])
    results = realtime.drain(env.db, [ids[0]])
    assert sorted(delivery_id for delivery_id, _ in results) == sorted(ids)
    assert all(result.status.value == "done" for _, result in results)
    with env.db.session() as s:
        reads = s.scalars(
            select(RemoteCall).where(
                RemoteCall.context == f"delivery:{ids[0]}", RemoteCall.endpoint == "/v3/catalog/products"
            )
        ).all()
    assert len(reads) == 1
    assert len([c for c in env.sm.calls if c["path"] == "/v3/product/upsert"]) == upserts + 1
    assert products(env, main)["77"]["name"] == "Burst Mug"


def test_the_next_page_is_read_while_a_page_is_sent_and_every_product_goes_once(
    env: RealtimeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600 bulk products, most of them visible on storefront 1: three pages. While a page's upserts are
    # on their way, the next page is already being read (the reads set the pace, not reads plus sends).
    env.bc.seed(env.store_hash, products=600)
    main = catalog_for(env, 1, "Main store")
    reads: list[int] = []
    reading = threading.Condition()
    overlapped: list[bool] = []
    read_page, send = bc_catalog.product_page, sync_module.send_items

    def product_page(bc: Any, channel_id: int, after_id: int = 0, limit: int = 250) -> list[dict[str, Any]]:
        with reading:
            reads.append(after_id)
            reading.notify_all()
        return read_page(bc, channel_id, after_id, limit)

    def send_items(api: Any, catalog_id: str, items: Any) -> Any:
        last_read = max((int(i["productId"]) for i in items), default=0)
        with reading:  # a read past this page's products has started, or will while this waits
            overlapped.append(reading.wait_for(lambda: any(a >= last_read for a in reads), timeout=5.0))
        return send(api, catalog_id, items)

    monkeypatch.setattr(bc_catalog, "product_page", product_page)
    monkeypatch.setattr(sync_module, "send_items", send_items)
    row = full_sync(env, 1)
    on_one = products(env, main)
    assert row.status == "done" and row.failed == 0 and row.sent == len(on_one) > 500
    assert len(reads) == 3 and len(overlapped) >= 2
    assert all(overlapped[:-1])  # the last page has nothing after it to read
