"""Every route of the fake answers in the shape of BigCommerce's own OpenAPI specs (openapi-core)."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData

API_HOST = "https://api.bigcommerce.com"
STOREFRONT_HOST = "https://your_store.example.com"


def _links_as_any_of(node: Any) -> Any:
    """orders.v2: `oneOf` [link {url, resource}, full object] matches both for every real answer (the link
    schema accepts any object), so treat those pairs as `anyOf`."""
    if isinstance(node, dict):
        out = {k: _links_as_any_of(v) for k, v in node.items()}
        if "oneOf" in out and "_Resource" in json.dumps(out["oneOf"]):
            out["anyOf"] = out.pop("oneOf")
        return out
    if isinstance(node, list):
        return [_links_as_any_of(v) for v in node]
    return node


def _x_nullable_as_nullable(node: Any) -> Any:
    """The batch variants answer marks nullable fields with Swagger 2's `x-nullable`."""
    if isinstance(node, dict):
        out = {k: _x_nullable_as_nullable(v) for k, v in node.items()}
        if out.get("x-nullable") is True:
            out["nullable"] = True
        return out
    if isinstance(node, list):
        return [_x_nullable_as_nullable(v) for v in node]
    return node


@cache
def load_spec(directory: Path, name: str) -> OpenAPI:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader reads the big specs 4x faster
    data = yaml.load((directory / name).read_text(), Loader=loader)  # noqa: S506 - a safe loader
    if name == "orders.v2.oas2.yml":
        data = _links_as_any_of(data)
    if name == "scripts.v3.yml":
        # The text says an omitted consent_category reads back as `unknown`; the enum forgot it.
        category = data["components"]["schemas"]["script_Base"]["properties"]["consent_category"]
        category["enum"] = [*category["enum"], "unknown"]
    if name == "products_catalog.v3.yml":
        # Typed integer, but null for a product with options, as its own description says.
        data["components"]["schemas"]["product_Full"]["allOf"][2]["properties"]["base_variant_id"][
            "nullable"
        ] = True
    if name == "product-variants_catalog.v3.yml":
        data = _x_nullable_as_nullable(data)
    # Specs are checked by openapi-spec-validator in their own repo; skipping it keeps start-up fast.
    return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))


class Walker:
    def __init__(self, h: Harness, token: str, directory: Path) -> None:
        self.h = h
        self.token = token
        self.directory = directory
        self.checked: list[tuple[str, str, int]] = []

    def call(
        self,
        spec: str,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict | None = None,
        expect: int = 200,
    ) -> Any:
        """Call the fake, assert the status, validate the answer against the spec; return its JSON."""
        version = "v2" if spec.endswith(("v2.yml", "v2.oas2.yml")) else "v3"
        with self.h.api(self.token) as api:
            answer = api.request(method, f"/{version}{path}", params=params, json=body)
        assert answer.status_code == expect, (method, path, answer.status_code, answer.text)
        full_path = f"/stores/{self.h.store_hash}/{version}{path}"
        self._validate(spec, method, API_HOST, full_path, params, body, answer)
        return answer.json() if answer.content else None

    def _validate(
        self, spec: str, method: str, host: str, path: str, params: Any, body: Any, answer: httpx.Response
    ) -> None:
        request = MockRequest(
            host, method, path, args=params or {}, data=json.dumps(body).encode() if body else None
        )
        response = MockResponse(
            answer.content,
            status_code=answer.status_code,
            content_type=answer.headers.get("content-type", ""),
        )
        try:
            load_spec(self.directory, spec).validate_response(request, response)
        except MissingData:
            # Some specs give their documented 204 a body schema; a 204 has no body (RFC 9110), so finding
            # the documented 204 (reaching MissingData) is the check.
            assert answer.status_code == 204 and answer.content == b""
        self.checked.append((spec, f"{method} {path}", answer.status_code))

    def storefront_cart(self, cookies: httpx.Cookies) -> list:
        answer = httpx.get(f"{self.h.url}/api/storefront/carts", cookies=cookies)
        assert answer.status_code == 200
        self._validate("carts.sf.yml", "GET", STOREFRONT_HOST, "/api/storefront/carts", None, None, answer)
        return answer.json()


@pytest.fixture
def walker(harness: Harness, openapi_dir: Path) -> Walker:
    token = harness.install()
    return Walker(harness, token, openapi_dir)


def make_activity(h: Harness) -> dict[str, Any]:
    sf = h.bc.storefront(h.store_hash)
    customer = sf.register("spec@shop.test", "Spec", "Walker", newsletter=True, phone="+15550100", address={})
    cart = sf.add_to_cart(product_id=77, quantity=2, customer_id=customer["id"])
    order = sf.checkout(cart["id"])
    open_cart = sf.add_to_cart(product_id=79)
    guest_cart = sf.add_to_cart(product_id=80)
    guest_order = sf.checkout(guest_cart["id"], guest_email="guest@shop.test")
    refund = h.bc.admin(h.store_hash).refund(guest_order["id"], amount="5.00")
    h.bc.seed(h.store_hash, customers=12, orders=4)
    return {"customer": customer, "order": order, "open_cart": open_cart, "refund": refund}


def test_store_channels_and_sites_match_the_specs(walker: Walker) -> None:
    walker.call("store_information.v2.yml", "GET", "/store")
    walker.call("store_information.v2.yml", "GET", "/time")
    walker.h.bc.admin(walker.h.store_hash).create_channel("Spec channel", platform="custom")
    walker.call("channels.v3.yml", "GET", "/channels")
    walker.call(
        "channels.v3.yml", "GET", "/channels", params={"status:in": "active", "page": "1", "limit": "2"}
    )
    walker.call("channels.v3.yml", "GET", "/channels/3")
    walker.call("channels.v3.yml", "GET", "/channels/2/site")
    walker.call("sites.v3.yml", "GET", "/sites")
    walker.call("sites.v3.yml", "GET", "/sites/1000")
    walker.call("channels.v3.yml", "GET", "/channels/99", expect=404)


def test_customers_and_subscribers_match_the_specs(walker: Walker) -> None:
    activity = make_activity(walker.h)
    spec = "customers.v3.yml"
    first = walker.call(spec, "GET", "/customers", params={"limit": "10"})
    walker.call(spec, "GET", "/customers", params={"include": "addresses,attributes,formfields,storecredit"})
    cursor = first["meta"]["cursor_pagination"]["end_cursor"]
    walker.call(spec, "GET", "/customers", params={"after": cursor, "limit": "10"})
    walker.call(spec, "GET", "/customers", params={"page": "2", "limit": "10", "sort": "date_modified:desc"})
    walker.call(spec, "GET", "/customers", params={"email:in": activity["customer"]["email"]})
    walker.call(spec, "GET", "/customers", params={"date_created:min": "last week"}, expect=422)

    subs = "subscribers.v3.yml"
    walker.call(subs, "GET", "/customers/subscribers")
    walker.call(subs, "GET", "/customers/subscribers", params={"email": "spec@shop.test"})
    created = walker.call(
        subs,
        "POST",
        "/customers/subscribers",
        body={
            "email": "new@shop.test",
            "first_name": "N",
            "last_name": "S",
            "source": "custom",
            "channel_id": 1,
            "consents": ["marketing_newsletter"],
        },
    )["data"]
    walker.call(subs, "POST", "/customers/subscribers", body={"email": "new@shop.test"}, expect=409)
    walker.call(subs, "POST", "/customers/subscribers", body={"email": "no-at-sign"}, expect=422)
    walker.call(subs, "GET", "/customers/subscribers/9999", expect=404)
    walker.call(subs, "GET", f"/customers/subscribers/{created['id']}")
    walker.call(subs, "PUT", f"/customers/subscribers/{created['id']}", body={"consents": []})
    walker.call(subs, "PUT", "/customers/subscribers/9999", body={"consents": []}, expect=404)
    walker.call(subs, "DELETE", f"/customers/subscribers/{created['id']}", expect=204)
    walker.call(subs, "DELETE", "/customers/subscribers", params={"email": "spec@shop.test"}, expect=204)


def test_orders_refunds_and_carts_match_the_specs(walker: Walker) -> None:
    activity = make_activity(walker.h)
    order_id = activity["order"]["id"]
    spec = "orders.v2.oas2.yml"
    walker.call(spec, "GET", "/orders")
    walker.call(
        spec,
        "GET",
        "/orders",
        params={"include": "consignments.line_items", "consignment_structure": "object"},
    )
    walker.call(spec, "GET", "/orders", params={"include": "consignments", "sort": "date_modified:desc"})
    walker.call(spec, "GET", f"/orders/{order_id}")
    walker.call(spec, "GET", f"/orders/{order_id}", params={"include": "consignments.line_items"})
    walker.call(spec, "GET", f"/orders/{order_id}/products")
    walker.call(spec, "GET", "/orders/count")
    walker.call(spec, "GET", "/order_statuses")
    walker.call(spec, "GET", "/order_statuses/11")
    walker.call(spec, "GET", "/orders/999999", expect=404)
    # 204 with no body when nothing matches is not in the spec (it lists only 200): checked for emptiness.
    with walker.h.api(walker.token) as api:
        empty = api.get("/v2/orders", params={"min_id": "999999"})
    assert empty.status_code == 204 and empty.content == b""

    refunds = "orders.v3.yml"
    walker.token = walker.h.bc.issue_token(walker.h.store_hash, "refunder", ["store_v2_orders"])
    refund_body = {
        "items": [{"item_type": "ORDER", "item_id": order_id, "amount": 3.5}],
        "payments": [{"provider_id": "testgateway", "amount": 3.5, "offline": False}],
    }
    created = walker.call(
        refunds, "POST", f"/orders/{order_id}/payment_actions/refunds", body=refund_body, expect=201
    )
    assert created["data"]["total_amount"] == 3.5
    too_much = {**refund_body, "payments": [{"provider_id": "testgateway", "amount": 9999, "offline": False}]}
    walker.call(refunds, "POST", f"/orders/{order_id}/payment_actions/refunds", body=too_much, expect=422)
    walker.token = walker.h.bc.access_token(walker.h.store_hash) or ""
    walker.call(refunds, "GET", f"/orders/{activity['refund']['order_id']}/payment_actions/refunds")
    walker.call(refunds, "GET", "/orders/payment_actions/refunds")
    walker.call(refunds, "GET", f"/orders/payment_actions/refunds/{activity['refund']['id']}")

    carts = "carts.v3.yml"
    walker.call(carts, "GET", f"/carts/{activity['open_cart']['id']}")
    walker.call(carts, "GET", f"/carts/{activity['open_cart']['id']}", params={"include": "redirect_urls"})
    walker.call(carts, "GET", f"/carts/{activity['order']['cart_id']}", expect=404)
    token = walker.h.bc.storefront(walker.h.store_hash).abandon(activity["open_cart"]["id"])
    found = walker.call("abandoned_carts.v3.yml", "GET", f"/abandoned-carts/{token}")
    assert found["data"]["cart_id"] == activity["open_cart"]["id"]

    with httpx.Client(base_url=walker.h.url, follow_redirects=True) as browser:
        browser.post(f"/storefront/{walker.h.store_hash}/1/actions/add", data={"product_id": "81"})
        assert len(walker.storefront_cart(browser.cookies)) == 1


def test_scripts_and_hooks_match_the_specs(walker: Walker) -> None:
    spec = "scripts.v3.yml"
    body = {
        "name": "Tracker",
        "description": "SALESmanago",
        "kind": "src",
        "src": "https://cdn.test/sm.js",
        "load_method": "defer",
        "location": "footer",
        "visibility": "storefront",
        "consent_category": "analytics",
        "enabled": True,
        "channel_id": 1,
        "auto_uninstall": True,
    }
    script = walker.call(spec, "POST", "/content/scripts", body=body)["data"]
    walker.call(spec, "POST", "/content/scripts", body={**body, "location": "sidebar"}, expect=422)
    walker.call(
        spec,
        "POST",
        "/content/scripts",
        body={"name": "tag", "kind": "script_tag", "html": "<script></script>"},
    )
    walker.call(spec, "GET", "/content/scripts")
    walker.call(
        spec, "GET", "/content/scripts", params={"channel_id:in": "1", "sort": "name", "direction": "desc"}
    )
    walker.call(spec, "GET", f"/content/scripts/{script['uuid']}")
    walker.call(spec, "PUT", f"/content/scripts/{script['uuid']}", body={"enabled": False})
    walker.call(spec, "DELETE", f"/content/scripts/{script['uuid']}", expect=204)

    hooks = "webhooks.v3.yml"
    destination = f"{walker.h.app_url}/webhooks/main"
    hook = walker.call(
        hooks,
        "POST",
        "/hooks",
        body={
            "scope": "store/order/*",
            "destination": destination,
            "is_active": True,
            "headers": {"X-Secret": "s"},
        },
    )["data"]
    walker.call(
        hooks, "POST", "/hooks", body={"scope": "store/cart/*", "destination": destination, "headers": None}
    )
    walker.call(hooks, "GET", "/hooks")
    bad_destination = {"scope": "store/order/*", "destination": "ftp://x"}
    walker.call(hooks, "POST", "/hooks", body=bad_destination, expect=422)
    walker.token = "not-a-token"
    walker.call(hooks, "POST", "/hooks", body={**bad_destination, "destination": destination}, expect=401)
    walker.token = walker.h.bc.access_token(walker.h.store_hash) or ""
    walker.call(hooks, "GET", "/hooks", params={"is_active": "true", "scope": "store/order/*"})
    walker.call(hooks, "GET", f"/hooks/{hook['id']}")
    walker.call(hooks, "PUT", f"/hooks/{hook['id']}", body={"is_active": False})
    walker.call(hooks, "GET", "/hooks/admin")
    walker.call(hooks, "PUT", "/hooks/admin", body={"emails": ["ops@shop.test"]}, expect=204)
    walker.call(hooks, "DELETE", f"/hooks/{hook['id']}")


def test_catalog_matches_the_specs(walker: Walker) -> None:
    walker.h.bc.seed(walker.h.store_hash, products=30, products_with_variants=10)
    spec = "products_catalog.v3.yml"
    every = "variants,images,primary_image,channels,options,custom_fields,bulk_pricing_rules,modifiers,videos"
    walker.call(spec, "GET", "/catalog/products")
    walker.call(spec, "GET", "/catalog/products", params={"include": every, "limit": "250"})
    walker.call(
        spec,
        "GET",
        "/catalog/products",
        params={"channel_id:in": "2", "date_modified:min": "2020-01-01T00:00:00Z", "page": "2", "limit": "5"},
    )
    walker.call(spec, "GET", "/catalog/products", params={"id:in": "77,82", "include_fields": "name,sku"})
    walker.call(spec, "GET", "/catalog/products", params={"sort": "name", "direction": "desc"})
    walker.call(spec, "GET", "/catalog/products/82", params={"include": "variants,images,options"})
    walker.call(spec, "GET", "/catalog/products/100005", params={"include": "variants"})
    walker.call(spec, "GET", "/catalog/products/99", expect=404)
    walker.call(spec, "GET", "/catalog/products/82/images")
    walker.call(spec, "GET", "/catalog/products/channel-assignments")
    walker.call(
        spec,
        "GET",
        "/catalog/products/channel-assignments",
        params={"channel_id:in": "1", "product_id:in": "83,84"},
    )
    walker.call(spec, "GET", "/catalog/products/category-assignments", params={"product_id:in": "82"})
    variants = "product-variants_catalog.v3.yml"
    walker.call(variants, "GET", "/catalog/products/82/variants")
    walker.call(variants, "GET", "/catalog/products/82/variants/184")
    walker.call(variants, "GET", "/catalog/variants", params={"sku:in": "SNK-01-L,MUG-01"})
    walker.call(variants, "GET", "/catalog/variants", params={"product_id:in": "100000,100001,100002"})
    categories = "categories_catalog.v3.yml"
    walker.call(categories, "GET", "/catalog/categories")
    walker.call(categories, "GET", "/catalog/categories", params={"parent_id:in": "20", "limit": "3"})
    walker.call(categories, "GET", "/catalog/categories/25")
    trees = "category-trees_catalog.v3.yml"
    walker.call(trees, "GET", "/catalog/trees", params={"channel_id:in": "2"})
    walker.call(trees, "GET", "/catalog/trees/categories", params={"tree_id:in": "1"})
    walker.call(trees, "GET", "/catalog/trees/1/categories")
    brands = "brands_catalog.v3.yml"
    walker.call(brands, "GET", "/catalog/brands")
    walker.call(brands, "GET", "/catalog/brands/31")


def test_what_the_events_export_reads_matches_the_specs(walker: Walker) -> None:
    """A full page of orders carries every order's line items (no link to read them apart), and the
    store's refunds are listed by creation date, as the specs shape both."""
    walker.h.bc.seed(
        walker.h.store_hash, customers=50, orders=300, start=date(2025, 3, 1), end=date(2025, 3, 31)
    )
    include = {"include": "consignments.line_items", "consignment_structure": "object", "limit": "250"}
    page = walker.call("orders.v2.oas2.yml", "GET", "/orders", params={**include, "sort": "id:asc"})
    assert len(page) == 250
    for order in page:
        items = [item for group in order["consignments"]["shipping"] for item in group["line_items"]]
        assert items and all(item["order_id"] == order["id"] and item["product_id"] for item in items)

    refunds = "orders.v3.yml"
    with walker.h.bc.lock:
        made = sorted(walker.h.bc.store(walker.h.store_hash).refunds.values(), key=lambda r: r.created)
    assert len(made) > 2  # the seed refunds the orders it leaves Refunded or Partially Refunded
    middle = made[len(made) // 2].created
    since = walker.call(
        refunds, "GET", "/orders/payment_actions/refunds", params={"created:min": middle.isoformat()}
    )
    assert {r["id"] for r in since["data"]} == {r.id for r in made if r.created >= middle}
    until = walker.call(
        refunds, "GET", "/orders/payment_actions/refunds", params={"created:max": middle.isoformat()}
    )
    assert {r["id"] for r in until["data"]} == {r.id for r in made if r.created <= middle}
