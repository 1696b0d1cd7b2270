"""The fake SALESmanago's v3 Product Catalog: catalogs, product upserts with their problems, quantity and
price updates, and the account page listing them."""

from __future__ import annotations

from typing import Any

import pytest
from sm_helpers import *  # noqa: F403 - the clock/fake/http fixtures
from starlette.testclient import TestClient

from smbc.sandbox.salesmanago import FakeSalesmanago


@pytest.fixture
def key(http: TestClient, fake: FakeSalesmanago) -> str:
    body = {
        "email": fake.NORMAL.email,
        "password": fake.NORMAL.password,
        "keyName": "BC_1",
        "expiry": "NEVER",
    }
    return http.post("/v3/auth/create", json=body).json()["apiKey"]


class V3:
    def __init__(self, http: TestClient, key: str) -> None:
        self.http = http
        self.key = key

    def post(self, method: str, **body: Any) -> tuple[int, dict[str, Any]]:
        answer = self.http.post(f"/v3/product/{method}", json=body, headers={"API-KEY": self.key})
        return answer.status_code, answer.json()

    def catalogs(self) -> dict[str, Any]:
        answer = self.http.get("/v3/product/catalogList", headers={"API-KEY": self.key})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def new_catalog(self, name: str = "Sandbox_Store", **fields: Any) -> str:
        status, body = self.post("catalogUpsert", name=name, currency="USD", location="sbx1demo", **fields)
        assert status == 200, body
        return body["catalogId"]


@pytest.fixture
def v3(http: TestClient, key: str) -> V3:
    return V3(http, key)


def product(product_id: str, **fields: Any) -> dict[str, Any]:
    return {"productId": product_id, "name": f"Product {product_id}", "price": 10.0, **fields}


def test_catalogs_are_created_listed_updated_and_deleted(v3: V3, fake: FakeSalesmanago) -> None:
    assert v3.catalogs() == {"catalogs": [], "limits": {"max": 5}}
    main = v3.new_catalog(setAsDefault=True)
    outlet = v3.new_catalog("Outlet", setAsDefault=True)
    listed = {c["catalogId"]: c for c in v3.catalogs()["catalogs"]}
    assert listed[main]["name"] == "Sandbox_Store" and listed[main]["currency"] == "USD"
    assert (listed[main]["setAsDefault"], listed[outlet]["setAsDefault"]) == (False, True)
    assert v3.post("catalogUpsert", catalogId=main, currency="EUR") == (200, {"catalogId": main})
    assert fake.catalogs.catalogs(fake.NORMAL.client_id)[0]["currency"] == "EUR"
    assert v3.post("catalogDelete", catalogId=outlet) == (200, {"catalogId": outlet})
    assert [c["catalogId"] for c in v3.catalogs()["catalogs"]] == [main]


def test_catalog_input_is_checked_and_limited(v3: V3, fake: FakeSalesmanago) -> None:
    base = {"name": "Shop", "currency": "USD", "location": "x"}
    assert v3.post("catalogUpsert", **{**base, "name": "My Shop"})[1]["reasonCode"] == 18
    assert v3.post("catalogUpsert", **{**base, "currency": "dollars"})[1]["reasonCode"] == 18
    assert v3.post("catalogUpsert", name="Shop", currency="USD") == (
        400,
        {"messages": ["location|is required"], "reasonCode": 13},
    )
    assert v3.post("catalogUpsert", **base, setAsDefault="yes")[1]["reasonCode"] == 14
    assert v3.post("catalogUpsert", catalogId="nope", **base)[1]["reasonCode"] == 16
    fake.catalogs.max_catalogs = 2
    v3.new_catalog("One")
    assert v3.post("catalogUpsert", **{**base, "name": "One"})[1]["reasonCode"] == 15
    v3.new_catalog("Two")
    status, body = v3.post("catalogUpsert", **{**base, "name": "Three"})
    assert (status, body["reasonCode"]) == (400, 19)
    assert v3.catalogs()["limits"] == {"max": 2} and len(v3.catalogs()["catalogs"]) == 2


def test_calls_need_a_valid_api_key_and_the_right_verb(
    http: TestClient, key: str, fake: FakeSalesmanago
) -> None:
    for headers in ({}, {"API-KEY": "wrong"}):
        answer = http.get("/v3/product/catalogList", headers=headers)
        assert (answer.status_code, answer.json()["reasonCode"]) == (401, 10)
    assert http.post("/v3/product/catalogList", json={}, headers={"API-KEY": key}).status_code == 405
    fake.revoke_credentials(fake.NORMAL.client_id)
    assert http.get("/v3/product/catalogList", headers={"API-KEY": key}).status_code == 401


def test_products_are_upserted_with_trims_as_warnings(v3: V3, fake: FakeSalesmanago) -> None:
    catalog = v3.new_catalog()
    long_name = "N" * 300
    items = [
        product("77", name=long_name, quantity=40, available=True, active=True, discountPrice=9.5),
        product(
            "78",
            categories=["Shop All", "Apparel"],
            mainCategory="Apparel",
            imageUrls=["https://img/1.png"],
            systemDetails={"brand": "Sandbox Goods", "color": "C" * 50, "bestseller": False},
            customDetails={"detail1": "x"},
        ),
    ]
    status, body = v3.post("upsert", catalogId=catalog, products=items)
    assert status == 200 and body["requestId"]
    assert body["problems"] == [
        {"reasonCode": 12, "message": "[0].name|trimmed to 255 characters"},
        {"reasonCode": 12, "message": "[1].systemDetails.color|trimmed to 40 characters"},
    ]
    stored = {p["productId"]: p for p in fake.catalogs.products(fake.NORMAL.client_id, catalog)}
    assert stored["77"]["name"] == "N" * 255 and stored["77"]["discountPrice"] == 9.5
    assert stored["78"]["systemDetails"] == {"brand": "Sandbox Goods", "color": "C" * 40, "bestseller": False}
    # An existing product takes a partial update; setAsNull clears a field.
    assert (
        v3.post("upsert", catalogId=catalog, products=[{"productId": "77", "setAsNull": ["discountPrice"]}])[
            0
        ]
        == 200
    )
    again = {p["productId"]: p for p in fake.catalogs.products(fake.NORMAL.client_id, catalog)}
    assert "discountPrice" not in again["77"] and again["77"]["quantity"] == 40


def test_a_refused_product_refuses_the_request_with_its_index(v3: V3, fake: FakeSalesmanago) -> None:
    catalog = v3.new_catalog()
    items = [
        product("1"),
        {"productId": "2", "price": 3.0},
        product("3", price="12.00"),
        product("4", quantity=None),
        product("5", colour="red"),
        product(6),
        product("7", name="T" * 300),
    ]
    status, body = v3.post("upsert", catalogId=catalog, products=items)
    assert status == 400
    assert [(p["reasonCode"], p["message"]) for p in body["problems"]] == [
        (13, "[1].name|is required"),
        (14, "[2].price|must be a number"),
        (17, "[3].quantity|must not be null"),
        (18, "[4].colour|is not a field of a product"),
        (14, "[5].productId|must be a non-empty string"),
        (12, "[6].name|trimmed to 255 characters"),
    ]
    # Nothing of a refused request is stored.
    assert fake.catalogs.products(fake.NORMAL.client_id, catalog) == []
    assert (
        v3.post("upsert", catalogId=catalog, products=[product("1"), product("1")])[1]["problems"][0][
            "reasonCode"
        ]
        == 15
    )


def test_whole_requests_are_refused_with_a_reason_code(v3: V3, fake: FakeSalesmanago) -> None:
    catalog = v3.new_catalog()
    too_many = [product(str(i)) for i in range(101)]
    assert v3.post("upsert", catalogId=catalog, products=too_many) == (
        400,
        {"messages": ["products|at most 100 products in one request"], "reasonCode": 19},
    )
    assert v3.post("upsert", catalogId=catalog, products=[product(str(i)) for i in range(100)])[0] == 200
    assert v3.post("upsert", catalogId=catalog, products=[])[1]["reasonCode"] == 13
    assert v3.post("upsert", products=[product("1")])[1] == {
        "messages": ["catalogId|is required"],
        "reasonCode": 13,
    }
    fake.catalogs.delete(fake.NORMAL.client_id, catalog)
    gone = {"messages": ["catalogId|Unknown identifier"], "reasonCode": 16}
    for method, items in (
        ("upsert", [product("1")]),
        ("updateQuantity", [{"productId": "1", "quantity": 1}]),
        ("updatePrice", [{"productId": "1", "price": 1.0}]),
    ):
        assert v3.post(method, catalogId=catalog, products=items) == (400, gone)


def test_quantity_and_price_updates_touch_known_products_only(v3: V3, fake: FakeSalesmanago) -> None:
    catalog = v3.new_catalog()
    v3.post(
        "upsert", catalogId=catalog, products=[product("77", quantity=5, discountPrice=8.0), product("78")]
    )
    assert (
        v3.post("updateQuantity", catalogId=catalog, products=[{"productId": "77", "quantity": 2}])[0] == 200
    )
    prices = [{"productId": "77", "price": 12.5, "discountPrice": None}, {"productId": "78", "price": 7.0}]
    assert v3.post("updatePrice", catalogId=catalog, products=prices)[0] == 200
    stored = {p["productId"]: p for p in fake.catalogs.products(fake.NORMAL.client_id, catalog)}
    assert (stored["77"]["quantity"], stored["77"]["price"], "discountPrice" in stored["77"]) == (
        2,
        12.5,
        False,
    )
    assert stored["78"]["price"] == 7.0
    status, body = v3.post(
        "updateQuantity",
        catalogId=catalog,
        products=[
            {"productId": "99", "quantity": 1},
            {"productId": "77", "quantity": -1},
            {"productId": "78"},
        ],
    )
    assert status == 400 and [p["message"] for p in body["problems"]] == [
        "[0].productId|Unknown identifier",
        "[1].quantity|must not be negative",
        "[2].quantity|is required",
    ]
    assert fake.catalogs.products(fake.NORMAL.client_id, catalog)[0]["quantity"] == 2


def test_the_account_page_lists_catalogs_and_their_products(
    v3: V3, http: TestClient, fake: FakeSalesmanago
) -> None:
    catalog = v3.new_catalog("Page_Catalog")
    v3.post(
        "upsert", catalogId=catalog, products=[product("SNK-01-L", name="Sandbox <Sneakers>", quantity=6)]
    )
    page = http.get("/sandbox").text
    assert "Page_Catalog" in page and "SNK-01-L" in page
    assert "Sandbox &lt;Sneakers&gt;" in page and "<Sneakers>" not in page
    listed = http.get(f"/sandbox/api/accounts/{fake.NORMAL.client_id}/catalogs").json()
    assert listed[0]["name"] == "Page_Catalog" and listed[0]["products"][0]["productId"] == "SNK-01-L"


def test_the_merchant_deletes_a_catalog_from_the_page(
    v3: V3, http: TestClient, fake: FakeSalesmanago
) -> None:
    catalog = v3.new_catalog("Doomed")
    form = {"account": fake.NORMAL.client_id, "catalog_id": catalog}
    assert http.post("/sandbox/actions/delete-catalog", data={**form, "page_token": "old"}).status_code == 403
    assert v3.catalogs()["catalogs"] != []
    answer = http.post("/sandbox/actions/delete-catalog", data={**form, "page_token": fake.page_token})
    assert "Catalog deleted" in answer.text and v3.catalogs()["catalogs"] == []
    again = http.post("/sandbox/actions/delete-catalog", data={**form, "page_token": fake.page_token})
    assert "No such catalog." in again.text
