from __future__ import annotations

from datetime import date
from email.utils import parsedate_to_datetime

import pytest
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401

from smbc.sandbox.bigcommerce import ActionError


def test_missing_or_wrong_token_is_401_in_each_api_version(harness: Harness) -> None:
    with harness.api() as api:
        v3 = api.get("/v3/customers")
        assert v3.status_code == 401
        assert v3.json()["status"] == 401 and v3.json()["title"]
    with harness.api("not-a-token") as api:
        v2 = api.get("/v2/orders")
        assert v2.status_code == 401
        assert v2.json()[0]["status"] == 401


def test_missing_scope_is_403(harness: Harness) -> None:
    h = harness
    read_only = h.bc.issue_token(h.store_hash, "other-client", ["store_v2_customers_read_only"])
    with h.api(read_only) as api:
        assert api.get("/v3/customers").status_code == 200
        assert api.get("/v3/customers/subscribers").status_code == 200
        denied = api.post("/v3/customers/subscribers", json={"email": "x@y.test"})
        assert denied.status_code == 403
        assert "store_v2_customers" in denied.json()["title"]
        assert api.get("/v2/orders").status_code == 403
        assert api.get("/v3/content/scripts").status_code == 403
    orders_read_only = h.bc.issue_token(h.store_hash, "other-client", ["store_v2_orders_read_only"])
    with h.api(orders_read_only) as api:
        refund = {"items": [{"item_type": "ORDER", "item_id": 100}], "payments": [{"amount": 1}]}
        assert api.post("/v3/orders/100/payment_actions/refunds", json=refund).status_code == 403
    assert h.bc.store(h.store_hash).subscribers == {}


def test_unknown_store_is_404(harness: Harness) -> None:
    with harness.api("x", store_hash="nosuchstore") as api:
        assert api.get("/v3/customers").status_code == 404


def test_store_time_channels_and_sites(harness: Harness) -> None:
    h = harness
    token = h.install()
    with h.api(token) as api:
        store = api.get("/v2/store").json()
        assert store["store_id"] == h.bc.store(h.store_hash).store_id
        assert store["default_channel_id"] == 1
        assert abs(api.get("/v2/time").json()["time"] - h.bc.now().timestamp()) < 5  # the fake's clock
        channels = api.get("/v3/channels").json()["data"]
        assert [c["id"] for c in channels] == [1, 2]
        assert all(c["type"] == "storefront" for c in channels)
        sites = api.get("/v3/sites").json()["data"]
        assert {s["channel_id"]: s["url"] for s in sites} == {
            1: f"{h.url}/storefront/{h.store_hash}/1",
            2: f"{h.url}/storefront/{h.store_hash}/2",
        }
        assert api.get("/v3/channels/2/site").json()["data"]["urls"][0]["type"] == "primary"
        assert api.get("/v3/sites", params={"channel_id:in": "2"}).json()["data"][0]["id"] == 1001


def test_customer_pagination_meta_cursor_and_limit_cap(harness: Harness) -> None:
    h = harness
    h.bc.seed(h.store_hash, customers=300, orders=0, start=date(2025, 1, 1), end=date(2025, 12, 31))
    token = h.install()
    with h.api(token) as api:
        first = api.get("/v3/customers", params={"limit": 100}).json()
        assert [c["id"] for c in first["data"]] == list(range(1, 101))
        meta = first["meta"]
        assert meta["pagination"]["total"] == 300 and meta["pagination"]["total_pages"] == 3
        assert "next" in meta["pagination"]["links"]
        assert "cursor_pagination" in meta  # first page carries both
        second = api.get("/v3/customers", params={"limit": 100, "page": 2}).json()
        assert second["data"][0]["id"] == 101 and "cursor_pagination" not in second["meta"]
        cursor = first["meta"]["cursor_pagination"]["end_cursor"]
        after = api.get("/v3/customers", params={"limit": 100, "after": cursor}).json()
        assert after["data"][0]["id"] == 101
        assert set(after["meta"]) == {"cursor_pagination"}
        seen = [c["id"] for c in first["data"]]
        while cursor:
            page = api.get("/v3/customers", params={"limit": 100, "after": cursor}).json()
            seen += [c["id"] for c in page["data"]]
            cursor = (
                page["meta"]["cursor_pagination"]["links"].get("next")
                and page["meta"]["cursor_pagination"]["end_cursor"]
            )
        assert seen == list(range(1, 301))
        capped = api.get("/v3/customers", params={"limit": 1000}).json()
        assert len(capped["data"]) == 250 and capped["meta"]["pagination"]["per_page"] == 250
        assert api.get("/v3/customers", params={"limit": "x"}).status_code == 422
        assert api.get("/v3/customers", params={"after": "garbage!"}).status_code == 422


def test_customer_filters_include_and_sort(harness: Harness) -> None:
    h = harness
    sf = h.bc.storefront(h.store_hash)
    a = sf.register("ann@shop.test", "Ann", "Zed", address={"city": "Denver"})
    b = sf.register("bob@shop.test", "Bob", "Abe")
    h.bc.seed(h.store_hash, customers=20, orders=0, start=date(2024, 1, 1), end=date(2024, 1, 31))
    token = h.install()
    with h.api(token) as api:
        by_email = api.get("/v3/customers", params={"email:in": "BOB@shop.test,ann@shop.test"}).json()["data"]
        assert {c["id"] for c in by_email} == {a["id"], b["id"]}
        by_id = api.get("/v3/customers", params={"id:in": f"{a['id']}", "include": "addresses"}).json()[
            "data"
        ]
        assert by_id[0]["addresses"][0]["city"] == "Denver"
        assert "addresses" not in api.get("/v3/customers", params={"id:in": str(a["id"])}).json()["data"][0]
        jan = api.get(
            "/v3/customers",
            params={"date_created:min": "2024-01-01", "date_created:max": "2024-02-01", "limit": 250},
        ).json()["data"]
        assert len(jan) == 20
        created = [c["date_created"] for c in jan]
        assert all("2024-01" in d for d in created)
        newest = api.get("/v3/customers", params={"sort": "date_created:desc", "limit": 1}).json()["data"][0]
        assert newest["id"] in (a["id"], b["id"])  # registered now, seeded in 2024
        by_name = api.get("/v3/customers", params={"sort": "last_name:asc", "id:in": f"{a['id']},{b['id']}"})
        assert [c["last_name"] for c in by_name.json()["data"]] == ["Abe", "Zed"]
        assert api.get("/v3/customers", params={"date_modified:min": "not a date"}).status_code == 422
        assert api.get("/v3/customers", params={"sort": "email:asc"}).status_code == 422


def test_subscriber_crud_conflicts_and_guarded_delete(harness: Harness) -> None:
    h = harness
    token = h.install()
    with h.api(token) as api:
        created = api.post(
            "/v3/customers/subscribers",
            json={"email": "news@shop.test", "channel_id": 2, "consents": ["marketing_newsletter"]},
        )
        assert created.status_code == 200
        sub = created.json()["data"]
        assert sub["channel_id"] == 2 and sub["source"] == "custom"
        assert api.post("/v3/customers/subscribers", json={"email": "news@shop.test"}).status_code == 409
        bad = api.post("/v3/customers/subscribers", json={"email": "nope"})
        assert bad.status_code == 422 and "email" in bad.json()["errors"]
        assert (
            api.put(f"/v3/customers/subscribers/{sub['id']}", json={"consents": ["spam"]}).status_code == 422
        )
        put = api.put(f"/v3/customers/subscribers/{sub['id']}", json={"consents": []})
        assert put.status_code == 200 and put.json()["data"]["consents"] == []
        listed = api.get("/v3/customers/subscribers", params={"email": "news@shop.test"}).json()
        assert [s["id"] for s in listed["data"]] == [sub["id"]]
        assert listed["meta"]["pagination"]["total"] == 1
        assert api.get("/v3/customers/subscribers/999").status_code == 404
        refused = api.delete("/v3/customers/subscribers")
        assert refused.status_code == 422
        assert len(h.bc.store(h.store_hash).subscribers) == 1
        assert api.delete("/v3/customers/subscribers", params={"email": "news@shop.test"}).status_code == 204
        assert h.bc.store(h.store_hash).subscribers == {}


def test_orders_filters_formats_and_204_when_empty(harness: Harness) -> None:
    h = harness
    h.bc.seed(h.store_hash, customers=10, orders=60, start=date(2025, 3, 1), end=date(2025, 3, 31))
    sf = h.bc.storefront(h.store_hash, channel_id=2)
    customer = sf.register("buyer@shop.test", "Buy", "Er")
    cart = sf.add_to_cart(product_id=78, quantity=2, customer_id=customer["id"])
    order = sf.checkout(cart["id"], newsletter=True)
    token = h.install()
    with h.api(token) as api:
        page = api.get("/v2/orders", params={"limit": 25})
        assert page.status_code == 200
        orders = page.json()
        assert [o["id"] for o in orders] == list(range(100, 125))
        assert isinstance(orders[0]["total_inc_tax"], str) and orders[0]["total_inc_tax"].count(".") == 1
        assert parsedate_to_datetime(orders[0]["date_created"]).tzinfo is not None
        assert orders[0]["date_created"].endswith("+0000")
        keyset = api.get("/v2/orders", params={"min_id": 150, "limit": 5, "sort": "id:asc"}).json()
        assert [o["id"] for o in keyset] == [150, 151, 152, 153, 154]
        mine = api.get("/v2/orders", params={"customer_id": customer["id"]}).json()
        assert [o["id"] for o in mine] == [order["id"]]
        assert mine[0]["is_email_opt_in"] is True and mine[0]["channel_id"] == 2
        assert mine[0]["total_inc_tax"] == "53.0000"  # 2 x 24.00 + 5.00 shipping
        rfc = api.get(
            "/v2/orders",
            params={
                "min_date_created": "Sat, 01 Mar 2025 00:00:00 +0000",
                "max_date_created": "2025-03-31T23:59:59+00:00",
                "limit": 250,
            },
        ).json()
        assert len(rfc) == 60
        by_status = api.get("/v2/orders", params={"status_id": 11, "email": "BUYER@shop.test"}).json()
        assert [o["id"] for o in by_status] == [order["id"]]
        newest = api.get("/v2/orders", params={"sort": "date_created:desc", "limit": 1}).json()
        assert newest[0]["id"] == order["id"]
        empty = api.get("/v2/orders", params={"min_id": 100000})
        assert empty.status_code == 204 and empty.content == b""
        assert api.get("/v2/orders", params={"min_date_created": "yesterday"}).status_code == 400
        count = api.get("/v2/orders/count").json()
        assert count["count"] == 61 and sum(s["count"] for s in count["statuses"]) == 61
        one = api.get(f"/v2/orders/{order['id']}", params={"include": "consignments.line_items"}).json()
        lines = one["consignments"]["shipping"][0]["line_items"]
        assert lines[0]["product_id"] == 78 and lines[0]["sku"] == "TEE-01" and lines[0]["variant_id"] == 178
        products = api.get(f"/v2/orders/{order['id']}/products").json()
        assert products[0]["quantity"] == 2 and products[0]["price_inc_tax"] == "24.0000"
        assert api.get("/v2/orders/99999").status_code == 404
        statuses = api.get("/v2/order_statuses").json()
        assert [s["id"] for s in statuses] == list(range(15))


def test_refunds_are_listed_per_order_and_change_the_status(harness: Harness) -> None:
    h = harness
    sf = h.bc.storefront(h.store_hash)
    cart = sf.add_to_cart(product_id=80, quantity=1)
    order = sf.checkout(cart["id"], guest_email="guest@shop.test")
    adm = h.bc.admin(h.store_hash)
    adm.refund(order["id"], amount="10.00")
    assert h.bc.store(h.store_hash).orders[order["id"]].status_id == 14
    adm.refund(order["id"])
    assert h.bc.store(h.store_hash).orders[order["id"]].status_id == 4
    with pytest.raises(ActionError):
        adm.refund(order["id"], amount="1.00")
    token = h.install()
    with h.api(token) as api:
        refunds = api.get(f"/v3/orders/{order['id']}/payment_actions/refunds").json()["data"]
        assert [r["total_amount"] for r in refunds] == [10.0, 44.9]
        again = api.get(f"/v2/orders/{order['id']}").json()
        assert again["refunded_amount"] == "54.9000" and again["status"] == "Refunded"


def test_cart_read_with_redirect_urls_and_gone_after_checkout(harness: Harness) -> None:
    h = harness
    sf = h.bc.storefront(h.store_hash)
    cart = sf.add_to_cart(product_id=77, quantity=1)
    cart = sf.add_to_cart(cart["id"], product_id=79, quantity=3)
    token = h.install()
    with h.api(token) as api:
        got = api.get(f"/v3/carts/{cart['id']}", params={"include": "redirect_urls"}).json()["data"]
        assert got["cart_amount"] == pytest.approx(12.50 + 3 * 8.99)
        assert got["redirect_urls"]["checkout_url"].startswith(f"{h.url}/storefront/{h.store_hash}/1/")
        assert {i["sku"] for i in got["line_items"]["physical_items"]} == {"MUG-01", "PST-01"}
        sf.checkout(cart["id"], guest_email="g@shop.test")
        assert api.get(f"/v3/carts/{cart['id']}").status_code == 404


def test_scripts_are_private_to_their_client_and_capped_at_ten(harness: Harness) -> None:
    h = harness
    token = h.install()
    other = h.bc.issue_token(h.store_hash, "other-client", ["store_v2_content"])
    body = {
        "name": "tracker",
        "kind": "src",
        "src": "https://cdn.test/sm.js",
        "location": "footer",
        "visibility": "storefront",
        "consent_category": "analytics",
        "channel_id": 2,
    }
    with h.api(token) as api, h.api(other) as api2:
        created = api.post("/v3/content/scripts", json=body).json()["data"]
        assert created["api_client_id"] == h.bc.client_id and created["channel_id"] == 2
        assert api2.get("/v3/content/scripts").json()["data"] == []
        assert api2.get(f"/v3/content/scripts/{created['uuid']}").status_code == 404
        assert api2.delete(f"/v3/content/scripts/{created['uuid']}").status_code == 404
        for n in range(9):
            assert api.post("/v3/content/scripts", json={**body, "name": f"s{n}"}).status_code == 200
        eleventh = api.post("/v3/content/scripts", json={**body, "name": "one too many"})
        assert eleventh.status_code == 422
        assert api2.post("/v3/content/scripts", json=body).status_code == 200  # the cap is per app
        assert len(api.get("/v3/content/scripts").json()["data"]) == 10
        assert api.post("/v3/content/scripts", json={**body, "channel_id": 9}).status_code == 422
        checkout = api.delete(f"/v3/content/scripts/{created['uuid']}")
        assert checkout.status_code == 204
        assert api.post("/v3/content/scripts", json={**body, "visibility": "checkout"}).status_code == 403
        put = api.put(f"/v3/content/scripts/{created['uuid']}", json={"enabled": False})
        assert put.status_code == 404


def test_hooks_crud_limits_and_admin(harness: Harness) -> None:
    h = harness
    token = h.install()
    other = h.bc.issue_token(h.store_hash, "other-client", [])
    with h.api(token) as api, h.api(other) as api2:
        hook_id = h.hook(token, "store/order/*", headers={"X-Secret": "abc"})
        again = api.post(
            "/v3/hooks", json={"scope": "store/order/*", "destination": f"{h.app_url}/webhooks/main"}
        )
        assert again.status_code == 422
        insecure = api.post(
            "/v3/hooks", json={"scope": "store/order/*", "destination": "http://example.com/x"}
        )
        assert insecure.status_code == 422 and "destination" in insecure.json()["errors"]
        assert api.post("/v3/hooks", json={"destination": "https://example.com/x"}).status_code == 422
        assert api2.get("/v3/hooks").json()["data"] == []
        assert api2.get(f"/v3/hooks/{hook_id}").status_code == 404
        listed = api.get("/v3/hooks").json()["data"]
        assert listed[0]["headers"] == {"X-Secret": "abc"} and listed[0]["store_hash"] == h.store_hash
        off = api.put(f"/v3/hooks/{hook_id}", json={"is_active": False}).json()["data"]
        assert off["is_active"] is False
        assert api.get("/v3/hooks", params={"is_active": "true"}).json()["data"] == []
        admin = api.get("/v3/hooks/admin").json()["data"]
        assert admin["hooks_list"][0]["status"] == "inactive"
        assert api.put("/v3/hooks/admin", json={"emails": ["ops@shop.test"]}).status_code == 204
        assert api.get("/v3/hooks/admin").json()["data"]["emails"] == ["ops@shop.test"]
        assert api.delete(f"/v3/hooks/{hook_id}").json()["data"]["id"] == hook_id
        assert api.get(f"/v3/hooks/{hook_id}").status_code == 404
