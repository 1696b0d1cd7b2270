"""The v3 catalog client (reasonCode table, 100 products a call, refused products) and the BigCommerce
catalog reads, through httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.salesmanago.catalog import CatalogApi, CatalogGone, Severity, classify_v3, problems_of
from smbc.salesmanago.client import CallAttempt

V3 = "https://api.salesmanago.test"
KEY = "v3KeyAbc123"


pytestmark = pytest.mark.usefixtures("clock")  # every test on the fake clock


def catalog_api(handler: Callable[[httpx.Request], httpx.Response], records: list[CallAttempt]) -> CatalogApi:
    return CatalogApi(
        KEY,
        v3_url=V3,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=records.append,
        policy=BackoffPolicy(attempts=2, base=0.1, cap=1.0),
        context="catalog:1",
    )


def products(n: int) -> list[dict[str, Any]]:
    return [{"productId": str(i), "name": f"P{i}", "price": 1.0} for i in range(n)]


def test_reason_code_table() -> None:
    assert (
        classify_v3(200, {"problems": [{"reasonCode": 12, "message": "name|trimmed [0]"}]}, ())[0]
        is Outcome.SUCCESS
    )
    assert (
        classify_v3(200, {"problems": [{"reasonCode": 13, "message": "name|is required [3]"}]}, ())[0]
        is Outcome.SUCCESS
    )
    assert classify_v3(400, {"messages": ["bad key"], "reasonCode": 10}, ())[0] is Outcome.CREDENTIALS
    assert classify_v3(400, {"messages": ["catalogId|unknown"], "reasonCode": 16}, ())[0] is Outcome.INVALID
    assert (
        classify_v3(200, {"problems": [{"reasonCode": 13, "message": "no index"}]}, ())[0] is Outcome.INVALID
    )
    assert classify_v3(429, {}, ())[0] is Outcome.RATE_LIMITED
    assert classify_v3(502, None, ())[0] is Outcome.RETRY
    assert classify_v3(200, {}, ("catalogId",))[0] is Outcome.INVALID
    problem = problems_of({"problems": [{"reasonCode": 11, "message": "[2].name|is too long"}]})[0]
    assert (problem.index, problem.severity) == (2, Severity.ITEM)
    assert problem.reason.startswith("name: is too long")


def test_upsert_sends_at_most_100_products_a_call_with_the_api_key_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"requestId": "r"})

    records: list[CallAttempt] = []
    written = catalog_api(handler, records).upsert_products("cat-1", products(250))
    assert written.sent == 250 and not written.refused
    sizes = [len(json.loads(r.content)["products"]) for r in seen]
    assert sizes == [100, 100, 50]
    assert all(r.headers["API-KEY"] == KEY and r.url.path == "/v3/product/upsert" for r in seen)
    assert all(KEY not in (a.message + a.endpoint) for a in records)


def test_a_refused_product_is_counted_with_its_reason_and_the_rest_goes_in() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if any(p["productId"] == "3" for p in body["products"]):
            return httpx.Response(
                400, json={"problems": [{"reasonCode": 13, "message": "[3].name|is required"}]}
            )
        return httpx.Response(200, json={})

    written = catalog_api(handler, []).upsert_products("cat-1", products(5))
    assert written.sent == 4
    assert list(written.refused) == ["3"] and "name" in written.refused["3"]
    assert [p["productId"] for p in bodies[1]["products"]] == ["0", "1", "2", "4"]


def test_unknown_catalog_raises_catalog_gone() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"messages": ["catalogId|Unknown identifier"], "reasonCode": 16})

    with pytest.raises(CatalogGone):
        catalog_api(handler, []).upsert_products("gone", products(1))


def test_bad_key_is_a_credentials_error_and_catalogs_are_listed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["API-KEY"] != KEY:
            return httpx.Response(401, json={"messages": ["Bad API key"], "reasonCode": 10})
        assert request.method == "GET"
        catalogs = [{"catalogId": "c1", "catalogName": "Main", "currency": "USD", "location": "sm_x"}]
        return httpx.Response(200, json={"catalogs": catalogs, "limits": {"max": 5}})

    listed = catalog_api(handler, []).catalogs()
    assert [(c.catalog_id, c.name, c.currency) for c in listed] == [("c1", "Main", "USD")]
    bad = CatalogApi("wrong", v3_url=V3, http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(RemoteCallError) as caught:
        bad.catalogs()
    assert caught.value.outcome is Outcome.CREDENTIALS


# -- BigCommerce reads --------------------------------------------------------------------------------


def bc_client(handler: Callable[[httpx.Request], httpx.Response]) -> BigCommerceClient:
    clock = FakeClock()
    return BigCommerceClient(
        "abc",
        "token",
        "https://bc.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=CallBuffer(),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
    )


def test_product_pages_go_by_id_with_variants_and_images_in_one_read() -> None:
    catalog = [{"id": i, "name": f"P{i}"} for i in range(1, 601)]
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        after = int(params.get("id:greater", 0))
        page = [p for p in catalog if p["id"] > after][: int(params["limit"])]
        return httpx.Response(200, json={"data": page, "meta": {}})

    pages = list(bc_catalog.product_pages(bc_client(handler), 2))
    assert [len(p) for p in pages] == [250, 250, 100]
    assert all(s["include"] == "variants,images" and s["channel_id:in"] == "2" for s in seen)
    assert [s.get("id:greater") for s in seen] == [None, "250", "500"]


def test_channel_assignments_by_product() -> None:
    rows = [
        {"product_id": 7, "channel_id": 1},
        {"product_id": 7, "channel_id": 2},
        {"product_id": 9, "channel_id": 2},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/v3/catalog/products/channel-assignments")
        wanted = {int(i) for i in request.url.params["product_id:in"].split(",")}
        data = [r for r in rows if r["product_id"] in wanted]
        return httpx.Response(200, json={"data": data, "meta": {"pagination": {"total_pages": 1}}})

    assert bc_catalog.channel_assignments(bc_client(handler), [7, 9, 11]) == {7: {1, 2}, 9: {2}}
