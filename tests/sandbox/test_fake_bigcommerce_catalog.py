"""The fake BigCommerce's product catalog: what a catalog sync reads, and the webhooks the merchant's
product changes fire."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401
from openapi_schema_validator import OAS30Validator

from smbc.sandbox.bigcommerce import ActionError

BUILT_IN_IDS = [77, 78, 79, 80, 81, 82, 83, 84, 85]


def every_page(api: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = api.get(path, params={**params, "page": page})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows.extend(body["data"])
        if page >= body["meta"]["pagination"]["total_pages"]:
            return rows
        page += 1


def test_storefronts_see_their_own_products_with_variants_and_images(harness: Harness) -> None:
    h = harness
    with h.api(h.install()) as api:
        one = every_page(api, "/v3/catalog/products", {"channel_id:in": "1", "include": "variants,images"})
        two = every_page(api, "/v3/catalog/products", {"channel_id:in": "2", "limit": "3"})
        assigned = every_page(api, "/v3/catalog/products/channel-assignments", {"product_id:in": "83,84"})
        slim = api.get("/v3/catalog/products/82", params={"include": "variants", "include_fields": "sku"})
        lean = api.get("/v3/catalog/products/82", params={"exclude_fields": "description,name"})
    assert slim.json()["data"].keys() == {"id", "sku", "variants"}
    assert {"description", "name"}.isdisjoint(lean.json()["data"]) and "sku" in lean.json()["data"]
    assert [p["id"] for p in one] == [77, 78, 79, 80, 81, 82, 83, 85]
    assert [p["id"] for p in two] == [77, 78, 79, 80, 81, 82, 84, 85]
    assert assigned == [{"product_id": 83, "channel_id": 1}, {"product_id": 84, "channel_id": 2}]
    sneakers = next(p for p in one if p["id"] == 82)
    assert sneakers["base_variant_id"] is None and sneakers["inventory_tracking"] == "variant"
    assert [(v["id"], v["sku"], v["calculated_price"]) for v in sneakers["variants"]] == [
        (182, "SNK-01-S", 59.0),
        (183, "SNK-01-M", 59.0),
        (184, "SNK-01-L", 64.0),
    ]
    assert sneakers["inventory_level"] == 10 and len(sneakers["images"]) == 3
    assert sneakers["custom_url"]["url"] == "/sandbox-sneakers/" and "<strong>" in sneakers["description"]
    mug = one[0]
    assert (mug["sku"], mug["base_variant_id"], mug["variants"][0]["sku"]) == ("MUG-01", 177, "MUG-01")
    assert httpx.get(mug["images"][0]["url_standard"]).headers["content-type"] == "image/png"


def test_cart_lines_carry_the_catalog_identifiers(harness: Harness) -> None:
    h = harness
    cart = h.bc.storefront(h.store_hash).add_to_cart(product_id=82, variant_id=184, quantity=2)
    cart = h.bc.storefront(h.store_hash).add_to_cart(cart["id"], product_id=83)
    lines = cart["line_items"]["physical_items"]
    assert [(i["product_id"], i["variant_id"], i["sku"], i["sale_price"]) for i in lines] == [
        (82, 184, "SNK-01-L", 64.0),
        (83, 185, "TOTE-01", 12.0),
    ]
    with pytest.raises(ActionError, match="no variant 999"):
        h.bc.storefront(h.store_hash).add_to_cart(product_id=82, variant_id=999)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"id:greater": "79"}, [80, 81, 82, 83, 85]),
        ({"id:greater": "76", "id:less": "80"}, [77, 78, 79]),
        ({"id:min": "80", "id:max": "83"}, [80, 81, 82, 83]),
        ({"id:greater": "81", "id:max": "85", "id:min": "83"}, [83, 85]),
        ({"id:greater": "85"}, []),
    ],
)
def test_id_bounds_cut_the_filtered_list(
    harness: Harness, bounds: dict[str, str], expected: list[int]
) -> None:
    # A keyset read asks `id:greater` each page, with the storefront's filter; the bounds apply to the
    # filtered list (84 is not on channel 1), as any other filter does.
    h = harness
    with h.api(h.install()) as api:
        listed = every_page(api, "/v3/catalog/products", {"channel_id:in": "1", **bounds})
        refused = api.get("/v3/catalog/products", params={"id:greater": "eighty"})
    assert [p["id"] for p in listed] == expected
    assert refused.status_code == 422 and "id:greater" in refused.text


def test_bulk_products_are_made_on_read(harness: Harness) -> None:
    h = harness
    counts = h.bc.seed(h.store_hash, products=50_000, products_with_variants=20_000)
    assert counts["products"] == 50_000
    with h.api(h.install()) as api:
        first = api.get("/v3/catalog/products", params={"limit": 250, "include": "variants"}).json()
        assert first["meta"]["pagination"]["total"] == 50_000 + len(BUILT_IN_IDS)
        assert first["meta"]["pagination"]["total_pages"] == 201
        last = api.get(
            "/v3/catalog/products", params={"limit": 250, "page": 201, "include": "variants"}
        ).json()
        assert last["data"][-1]["id"] == 149_999
        some = api.get(
            "/v3/catalog/products", params={"id:in": "100000,100001,100002", "include": "variants"}
        )
        variants = [len(p["variants"]) for p in some.json()["data"]]
        recent = api.get(
            "/v3/catalog/products", params={"date_modified:min": last["data"][-1]["date_modified"]}
        )
        again = api.get("/v3/catalog/products/100001", params={"include": "variants"}).json()["data"]
    assert variants == [1, 1, 3]  # two in five have three variants
    # Bulk products were modified one second apart, up to the moment of seeding.
    assert [p["id"] for p in recent.json()["data"] if p["id"] >= 100_000] == [149_999]
    assert again == next(p for p in some.json()["data"] if p["id"] == 100_001)


def test_product_changes_fire_the_documented_webhooks(harness: Harness, openapi_dir: Path) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/product/*")
    h.hook(token, "store/sku/*")
    h.bc.seed(h.store_hash, products=10)
    admin = h.bc.admin(h.store_hash)
    created = admin.create_product("Sandbox Lamp", "LAMP-01", "30.00", stock=5, channel_ids=[2])
    updated = admin.update_product(100_003, price="11.00", name="Renamed bulk product")
    admin.set_stock(77, 7)
    admin.set_stock(82, 2, variant_id=183)
    admin.delete_product(79)
    assert h.bc.webhooks.flush(timeout=10)
    bodies = {body["scope"]: body for _, _, body in h.app.webhooks}
    assert bodies["store/product/created"]["data"] == {"type": "product", "id": created["id"]}
    assert bodies["store/product/updated"]["data"] == {"type": "product", "id": 100_003}
    stock = {"product_id": 77, "method": "absolute", "value": -33}  # the change: 40 -> 7
    assert bodies["store/product/inventory/updated"]["data"] == {
        "type": "product",
        "id": 77,
        "inventory": stock,
    }
    sku = {"product_id": 82, "method": "absolute", "value": 2, "variant_id": 183}  # 0 -> 2
    assert bodies["store/sku/inventory/updated"]["data"] == {"type": "sku", "id": 183, "inventory": sku}
    assert bodies["store/product/deleted"]["data"] == {"type": "product", "id": 79}
    for scope, body in bodies.items():
        sample = json.loads(
            (openapi_dir / "webhook-payloads" / f"{scope.replace('/', '_')}.json").read_text()
        )
        assert body.keys() == sample.keys() and body["data"].keys() == sample["data"].keys(), scope
    with h.api(token) as api:
        assert api.get("/v3/catalog/products/79").status_code == 404
        product = api.get("/v3/catalog/products/100003").json()["data"]
        sneakers = api.get("/v3/catalog/products/82", params={"include": "variants"}).json()["data"]
        lamp = api.get("/v3/catalog/products", params={"channel_id:in": "2", "sku": "LAMP-01"}).json()["data"]
    assert (product["name"], product["price"]) == ("Renamed bulk product", 11.0) == (updated["name"], 11.0)
    assert [v["inventory_level"] for v in sneakers["variants"]] == [4, 2, 6]
    assert [p["id"] for p in lamp] == [created["id"]]


def test_bad_product_changes_are_refused_and_change_nothing(harness: Harness) -> None:
    h = harness
    admin = h.bc.admin(h.store_hash)
    before = h.bc.store(h.store_hash).products[77]
    snapshot = (before.name, before.price, before.inventory_level)
    for bad in (
        lambda: admin.update_product(77, price="12", colour="red"),
        lambda: admin.update_product(77, name="  "),
        lambda: admin.update_product(77, availability="sold"),
        lambda: admin.set_stock(77, -1),
        lambda: admin.set_stock(82, 3),
        lambda: admin.delete_product(12345),
        lambda: admin.create_product("", "X", "1"),
    ):
        with pytest.raises(ActionError):
            bad()
    after = h.bc.store(h.store_hash).products[77]
    assert (after.name, after.price, after.inventory_level) == snapshot
    assert h.bc.webhooks.flush(timeout=10) and h.bc.webhooks.log == []


def test_catalog_needs_the_products_scope(harness: Harness) -> None:
    h = harness
    token = h.bc.issue_token(h.store_hash, "other", ["store_v2_orders_read_only"])
    with h.api(token) as api:
        answer = api.get("/v3/catalog/products")
        bad = api.get("/v3/catalog/products", params={"include": "everything"})
    assert answer.status_code == 403 and "store_v2_products" in answer.json()["title"]
    assert bad.status_code == 403
    with h.api(h.install()) as api:
        assert api.get("/v3/catalog/products", params={"include": "everything"}).status_code == 422
        assert api.get("/v3/catalog/products", params={"sort": "colour"}).status_code == 422


def test_categories_trees_and_brands_name_what_products_point_to(harness: Harness) -> None:
    h = harness
    with h.api(h.install()) as api:
        children = api.get("/v3/catalog/categories", params={"parent_id:in": "20"}).json()["data"]
        tree = api.get("/v3/catalog/trees", params={"channel_id:in": "2"}).json()["data"]
        nodes = api.get("/v3/catalog/trees/1/categories").json()["data"]
        flat = api.get("/v3/catalog/trees/categories", params={"category_id:in": "25"}).json()["data"]
        brands = api.get("/v3/catalog/brands", params={"id:in": "32"}).json()["data"]
        umbrella = api.get("/v3/catalog/products/84").json()["data"]
    assert [c["name"] for c in children] == ["Kitchen", "Apparel", "Decor", "Stationery", "Bags"]
    assert tree == [{"id": 1, "name": "Sandbox storefronts", "channels": [1, 2]}]
    shop_all = nodes[0]
    apparel = next(c for c in shop_all["children"] if c["name"] == "Apparel")
    assert [(c["name"], c["path"], c["depth"]) for c in apparel["children"]] == [("Shoes", [20, 22], 3)]
    assert [n["name"] for n in nodes] == ["Shop All", "Outlet"]
    assert flat[0]["url"]["path"] == "/apparel/shoes/" and flat[0]["parent_id"] == 22
    assert umbrella["brand_id"] == 32 and [b["name"] for b in brands] == ["Outlet Co."]
    assert umbrella["categories"] == [27]


def test_the_control_panel_and_storefronts_show_the_catalog(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/product/*")
    h.hook(token, "store/sku/*")
    h.bc.seed(h.store_hash, products=20)
    with httpx.Client(base_url=h.url, follow_redirects=True) as browser:
        panel = browser.get("/manage", params={"store": h.store_hash}).text
        assert "Stock of Sandbox Sneakers L" in panel and "20 bulk products" in panel
        owner = str(h.bc.store(h.store_hash).owner.id)
        form = {"store": h.store_hash, "user_id": owner, "product_id": "78"}
        assert (
            "Price of product 78 saved."
            in browser.post("/manage/products/price", data={**form, "price": "21.5"}).text
        )
        stock = {**form, "product_id": "82", "variant_id": "184", "stock": "1"}
        assert "Stock of product 82 saved." in browser.post("/manage/products/stock", data=stock).text
        refused = browser.post("/manage/products/price", data={**form, "price": "cheap"}).text
        assert "Price and stock must be numbers." in refused
        assert (
            "Product 79 deleted."
            in browser.post("/manage/products/delete", data={**form, "product_id": "79"}).text
        )
        one = browser.get(f"/storefront/{h.store_hash}/1/").text
        two = browser.get(f"/storefront/{h.store_hash}/2/").text
        browser.post(
            f"/storefront/{h.store_hash}/1/actions/add", data={"product_id": "82", "variant_id": "183"}
        )
    assert (
        "Add Sandbox Tote Bag to cart" in one and "Outlet Umbrella" not in one and "Sandbox Poster" not in one
    )
    assert "Add Outlet Umbrella to cart" in two and "Sandbox Tote Bag" not in two and "Gift Wrap" not in two
    assert "Size of Sandbox Sneakers" in one
    assert h.bc.webhooks.flush(timeout=10)
    scopes = sorted(body["scope"] for _, _, body in h.app.webhooks)
    assert scopes == ["store/product/deleted", "store/product/updated", "store/sku/inventory/updated"]
    assert h.bc.store(h.store_hash).products[78].price == Decimal("21.50")
    carts = list(h.bc.store(h.store_hash).carts.values())
    assert [(i.variant_id, i.sku) for i in carts[0].line_items] == [(183, "SNK-01-M")]


def test_an_order_takes_its_items_from_stock(harness: Harness, openapi_dir: Path) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/product/*")
    h.hook(token, "store/sku/*")
    sf = h.bc.storefront(h.store_hash)
    cart = sf.add_to_cart(product_id=81, quantity=5)  # 3 in stock: the level stops at 0
    cart = sf.add_to_cart(cart["id"], product_id=82, variant_id=184, quantity=2)
    sf.checkout(cart["id"], guest_email="stock@shop.test")
    assert h.bc.webhooks.flush(timeout=10)
    events = {body["scope"]: body for _, _, body in h.app.webhooks}
    assert events["store/product/inventory/order/updated"]["data"] == {
        "type": "product",
        "id": 81,
        "inventory": {"product_id": 81, "method": "relative", "value": -3},
    }
    assert events["store/sku/inventory/order/updated"]["data"]["inventory"] == {
        "product_id": 82,
        "method": "relative",
        "value": -2,
        "variant_id": 184,
    }
    spec = yaml.safe_load((openapi_dir / "webhooks.v3.yml").read_text())
    for scope, body in events.items():
        schema = spec["components"]["schemas"][scope.replace("/", "_")]
        OAS30Validator({**schema, "components": spec["components"]}).validate(body)
    with h.api(token) as api:
        levels = api.get("/v3/catalog/variants", params={"sku:in": "NOTE-01,SNK-01-L"}).json()["data"]
    assert [(v["sku"], v["inventory_level"]) for v in levels] == [("NOTE-01", 0), ("SNK-01-L", 4)]
