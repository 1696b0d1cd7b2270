from __future__ import annotations

import time
from pathlib import Path

import yaml
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401
from openapi_schema_validator import OAS30Validator

from smbc.sandbox.bigcommerce import RETRY_LADDER_S
from support import wait_for


def received(h: Harness, scope: str) -> list[dict]:
    return [body for _, _, body in h.app.webhooks if body["scope"] == scope]


def test_shopper_actions_fire_documented_bodies_with_custom_headers(harness: Harness) -> None:
    h = harness
    token = h.install()
    for scope in ("store/customer/*", "store/subscriber/*", "store/cart/*", "store/order/*"):
        h.hook(token, scope, headers={"X-Secret": "s3cret"})
    sf = h.bc.storefront(h.store_hash)
    customer = sf.register("ann@shop.test", "Ann", "Lee", newsletter=True, address={"city": "Boston"})
    cart = sf.add_to_cart(product_id=77, customer_id=customer["id"])
    item_id = cart["line_items"]["physical_items"][0]["id"]
    sf.update_item(cart["id"], item_id, 3)
    order = sf.checkout(cart["id"])
    h.bc.admin(h.store_hash).set_order_status(order["id"], 2)
    assert h.bc.webhooks.flush(timeout=10)
    scopes = [body["scope"] for _, _, body in h.app.webhooks]
    for expected in (
        "store/customer/created",
        "store/customer/address/created",
        "store/subscriber/created",
        "store/cart/created",
        "store/cart/lineItem/created",
        "store/cart/lineItem/updated",
        "store/cart/updated",
        "store/order/created",
        "store/cart/converted",
        "store/order/statusUpdated",
        "store/order/updated",
    ):
        assert expected in scopes, expected
    _, headers, body = h.app.webhooks[0]
    assert headers["x-secret"] == "s3cret" and headers["content-type"] == "application/json"
    store = h.bc.store(h.store_hash)
    assert body.keys() == {"scope", "store_id", "data", "hash", "created_at", "producer"}
    assert body["store_id"] == str(store.store_id) and body["producer"] == f"stores/{h.store_hash}"
    assert received(h, "store/customer/created")[0]["data"] == {"type": "customer", "id": customer["id"]}
    address = received(h, "store/customer/address/created")[0]["data"]
    assert address["address"] == {"customer_id": customer["id"]}
    converted = received(h, "store/cart/converted")[0]["data"]
    assert converted == {"type": "cart", "id": cart["id"], "orderId": order["id"]}
    line = received(h, "store/cart/lineItem/created")[0]["data"]
    assert line == {"type": "cart_line_item", "id": item_id, "cartId": cart["id"]}
    updates = [b["data"]["status"] for b in received(h, "store/order/statusUpdated")]
    # Deliveries run in parallel, so their order is not guaranteed (nor is it on BigCommerce).
    assert sorted(updates, key=lambda s: s["previous_status_id"]) == [
        {"previous_status_id": 0, "new_status_id": 11},
        {"previous_status_id": 11, "new_status_id": 2},
    ]
    assert len({b["hash"] for _, _, b in h.app.webhooks}) == len(h.app.webhooks)


def test_payloads_match_the_webhook_schemas_of_the_spec(harness: Harness, openapi_dir: Path) -> None:
    h = harness
    spec = yaml.safe_load((openapi_dir / "webhooks.v3.yml").read_text())
    token = h.install()
    h.hook(token, "store/*")
    sf = h.bc.storefront(h.store_hash)
    customer = sf.register("bo@shop.test", "Bo", "Ek", newsletter=True, address={})
    cart = sf.add_to_cart(product_id=78, customer_id=customer["id"])
    sf.remove_item(cart["id"], cart["line_items"]["physical_items"][0]["id"])
    cart = sf.add_to_cart(product_id=79)
    sf.abandon(cart["id"])
    order = sf.checkout(cart["id"], guest_email="guest@shop.test", newsletter=True)
    adm = h.bc.admin(h.store_hash)
    adm.refund(order["id"])
    adm.update_customer(customer["id"], first_name="Bob")
    adm.delete_customer(customer["id"])
    adm.create_channel("Pop-up shop")
    assert h.bc.webhooks.flush(timeout=10)
    checked = set()
    for _, _, body in h.app.webhooks:
        name = body["scope"].replace("/", "_")
        schema = spec["components"]["schemas"].get(name)
        if schema is None:
            continue
        OAS30Validator({**schema, "components": spec["components"]}).validate(body)
        checked.add(name)
    assert {
        "store_cart_converted",
        "store_order_refund_created",
        "store_customer_deleted",
        "store_subscriber_created",
        "store_cart_deleted",
        "store_cart_lineItem_deleted",
        "store_cart_abandoned",
    } <= checked


def test_channel_scoped_hooks_get_the_channel_payload_shape(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/channel/2/cart/*")
    h.hook(token, "store/channel/*", name="channels")
    h.bc.storefront(h.store_hash, channel_id=1).add_to_cart(product_id=77)
    cart = h.bc.storefront(h.store_hash, channel_id=2).add_to_cart(product_id=77)
    h.bc.admin(h.store_hash).create_channel("Third")
    assert h.bc.webhooks.flush(timeout=10)
    main = [b for n, _, b in h.app.webhooks if n == "main"]
    assert {b["scope"] for b in main} == {
        "store/channel/2/cart/created",
        "store/channel/2/cart/updated",
        "store/channel/2/cart/lineItem/created",
    }
    assert all(b["data"]["cart_id"] == cart["id"] for b in main)
    channels = [b for n, _, b in h.app.webhooks if n == "channels"]
    assert [b["scope"] for b in channels] == ["store/channel/created"]


def test_failed_deliveries_climb_the_ladder_then_the_hook_is_deactivated(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.bc.webhooks.retry_time_scale = 0.00001  # the 48 h ladder in about 2 s
    hook_id = h.hook(token, "store/customer/created", name="broken")
    h.app.webhook_status["broken"] = 503
    h.bc.storefront(h.store_hash).register("c@shop.test", "C", "D")
    assert h.bc.webhooks.flush(timeout=20)
    attempts = h.bc.webhooks.attempts("store/customer/created")
    assert [a.attempt for a in attempts] == list(range(1, len(RETRY_LADDER_S) + 2))
    assert all(a.status == 503 and a.destination.endswith("/webhooks/broken") for a in attempts)
    assert len({a.payload["hash"] for a in attempts}) == 1
    gaps = [b.time - a.time for a, b in zip(attempts[-3:], attempts[-2:], strict=False)]
    assert gaps[-1] >= RETRY_LADDER_S[-1] * 0.00001 * 0.9
    hook = h.bc.store(h.store_hash).hooks[hook_id]
    assert hook.is_active is False
    with h.api(token) as api:
        status = api.get("/v3/hooks/admin").json()["data"]["hooks_list"][0]["status"]
        assert status == "deactivated"
        h.bc.storefront(h.store_hash).register("e@shop.test", "E", "F")
        assert h.bc.webhooks.flush()
        assert len(h.bc.webhooks.attempts("store/customer/created")) == len(attempts)  # nothing sent any more
        again = api.put(f"/v3/hooks/{hook_id}", json={"is_active": True}).json()["data"]
        assert again["is_active"] is True
        assert api.get("/v3/hooks/admin").json()["data"]["hooks_list"][0]["status"] == "active"


def test_a_recovered_destination_stops_the_retries(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.bc.webhooks.retry_time_scale = 0.0001
    h.hook(token, "store/subscriber/*", name="flaky")
    h.app.webhook_status["flaky"] = 500
    h.bc.storefront(h.store_hash).subscribe("n@shop.test")
    wait_for(lambda: len(h.bc.webhooks.log) >= 2, "two delivery attempts", timeout=10)
    h.app.webhook_status["flaky"] = 200
    assert h.bc.webhooks.flush(timeout=10)
    statuses = [a.status for a in h.bc.webhooks.log]
    assert statuses[-1] == 200 and all(s == 500 for s in statuses[:-1])
    assert h.bc.store(h.store_hash).hooks[1].is_active


def test_duplicates_and_dropped_deliveries(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/customer/created")
    sf = h.bc.storefront(h.store_hash)
    h.bc.webhooks.duplicates = True
    sf.register("dup@shop.test", "D", "Up")
    assert h.bc.webhooks.flush()
    dups = received(h, "store/customer/created")
    assert len(dups) == 2 and dups[0] == dups[1]
    h.bc.webhooks.duplicates = False
    h.bc.webhooks.drop_next(1)
    lost = sf.register("lost@shop.test", "Lo", "St")
    kept = sf.register("kept@shop.test", "Ke", "Pt")
    assert h.bc.webhooks.flush()
    ids = [b["data"]["id"] for b in received(h, "store/customer/created")]
    assert lost["id"] not in ids and kept["id"] in ids
    dropped = h.bc.webhooks.dropped[0]
    assert dropped.payload["data"]["id"] == lost["id"]
    assert dropped.headers == {"X-Secret": "s3cret"} and dropped.destination.endswith("/webhooks/main")


def test_deliveries_happen_on_a_background_thread_after_the_action_returns(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/customer/created", name="slow")
    h.app.webhook_delay["slow"] = 1.0
    h.bc.storefront(h.store_hash).register("bg@shop.test", "B", "G")
    assert h.app.webhooks == []  # the hook takes 1 s to answer: the action did not wait for it
    assert h.bc.webhooks.flush(timeout=10)
    assert [b["scope"] for _, _, b in h.app.webhooks] == ["store/customer/created"]


def test_deliveries_are_posted_four_at_once_unless_told(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.hook(token, "store/customer/created", name="slow")
    h.app.webhook_delay["slow"] = 1.0
    sf = h.bc.storefront(h.store_hash)
    for n in range(10):
        sf.register(f"four{n}@shop.test", "F", "Our")
    assert h.bc.webhooks.flush(timeout=30)
    assert h.app.most_webhooks_at_once == 4
    h.bc.webhooks.set_senders(8)
    h.app.most_webhooks_at_once = 0
    for n in range(16):
        sf.register(f"eight{n}@shop.test", "E", "Ight")
    assert h.bc.webhooks.flush(timeout=30)
    assert 4 < h.app.most_webhooks_at_once <= 8
    assert len(received(h, "store/customer/created")) == 26


def test_delivery_exceptions_reach_the_exception_hook(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.bc.webhooks.retry_time_scale = (
        0.002  # retries after 0.12 s, 0.36 s, 0.6 s...; 90001 at most every 1.2 s
    )
    broken = h.hook(token, "store/customer/created", name="broken")
    h.hook(token, "store/hook/deliveryException", name="exceptions")
    h.app.webhook_status["broken"] = 500
    h.bc.storefront(h.store_hash).register("x@shop.test", "X", "Y")
    wait_for(lambda: len(h.bc.webhooks.attempts("store/customer/created")) >= 3, "three attempts", timeout=10)

    def exceptions() -> list[dict]:
        return [b["data"] for n, _, b in h.app.webhooks if n == "exceptions"]

    wait_for(lambda: len(exceptions()) >= 1, "a deliveryException webhook", timeout=10)
    first = exceptions()[0]
    assert first == {"type": "webhook", "id": broken, "error_code": 90001, "message": first["message"]}
    assert "retried" in first["message"] and "HTTP 500" in first["message"]
    assert len(exceptions()) == 1  # three failures, one notice: at most one per 10 (compressed) minutes
    h.bc.webhooks.retry_time_scale = 0.00001
    assert h.bc.webhooks.flush(timeout=20)
    assert exceptions()[-1]["error_code"] == 90002
    assert h.bc.store(h.store_hash).hooks[broken].is_active is False


def test_a_domain_with_a_poor_success_ratio_is_blocked_for_a_while(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.bc.webhooks.retry_time_scale = 0.01  # the 3-minute block lasts 1.8 s
    h.hook(token, "store/customer/created", name="flaky")
    h.app.webhook_status["flaky"] = 500
    sf = h.bc.storefront(h.store_hash)
    for n in range(100):
        sf.register(f"c{n}@shop.test", "C", str(n))
    wait_for(lambda: len(h.bc.webhooks.log) >= 100, "a hundred delivery attempts", timeout=10)
    with h.api(token) as api:
        wait_for(
            lambda: api.get("/v3/hooks/admin").json()["data"]["blocked_domains"] != [],
            "the destination domain to be blocked",
            timeout=10,
        )
        blocked = api.get("/v3/hooks/admin").json()["data"]["blocked_domains"][0]
    assert blocked["destination"] == h.app_url.split("://")[1]
    assert blocked["reasons"][0]["failure_description"] == "HTTP 500" and blocked["reasons"][0]["count"] >= 90
    h.app.webhook_status["flaky"] = 200
    blocked_at = time.time()
    late = sf.register("late@shop.test", "La", "Te")
    assert h.bc.webhooks.flush(timeout=30)
    first_try = next(a for a in h.bc.webhooks.log if a.payload["data"]["id"] == late["id"])
    assert first_try.time - blocked_at > 1.0  # held back until the block ended
    assert first_try.status == 200
