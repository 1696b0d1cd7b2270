"""Shape fuzz over every BigCommerce call the product makes: each field of a realistic answer removed,
nulled or given the wrong type. No call may crash (AttributeError, KeyError, TypeError, ...): it
either gives a usable result (a warning on the call for a field it had to ignore) or ends in an
`invalid` outcome recorded on the call. One level up, a real-time delivery read with such an answer
ends in a recorded result, never a traceback.

Samples are built in; when BigCommerce's OpenAPI specs are beside the repository, their examples are
fuzzed too."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients
from sqlalchemy import select

from smbc.bigcommerce import answers
from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.answers import AnswerModel
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCall, RemoteCallError, Service
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from support import OPENAPI_DIR

Path_ = tuple[str | int, ...]

# -- realistic answers ---------------------------------------------------------------------------

V2_DATE = "Tue, 06 Jan 2026 10:00:00 +0000"
META = {"pagination": {"total": 1, "count": 1, "per_page": 250, "current_page": 1, "total_pages": 1}}
CUSTOMER = {
    "id": 7,
    "email": "ann@example.com",
    "first_name": "Ann",
    "last_name": "Lee",
    "company": "Acme",
    "phone": "555 0100",
    "date_created": "2026-01-05T10:00:00Z",
    "date_modified": "2026-01-06T10:00:00Z",
    "origin_channel_id": 1,
    "addresses": [
        {
            "id": 3,
            "address1": "1 Main St",
            "address2": "",
            "city": "Austin",
            "state_or_province": "Texas",
            "postal_code": "78701",
            "country_code": "US",
            "phone": "555 0100",
            "company": "",
        }
    ],
}
SUBSCRIBER = {
    "id": 12,
    "email": "sub@example.com",
    "first_name": "Sue",
    "last_name": "Bee",
    "consents": ["marketing_newsletter"],
    "date_modified": "2026-01-06T10:00:00Z",
}
LINE_ITEM = {
    "id": 1,
    "product_id": 111,
    "variant_id": 5,
    "sku": "MUG",
    "name": "Mug",
    "quantity": 2,
    "parent_order_product_id": None,
    "is_bundled_product": False,
}
ORDER = {
    "id": 118,
    "status_id": 11,
    "customer_id": 7,
    "channel_id": 1,
    "cart_id": "7e48f7ef-2e88-4817-aea4-b0ed01490114",
    "date_created": V2_DATE,
    "date_modified": V2_DATE,
    "total_inc_tax": "20.0000",
    "refunded_amount": "0.0000",
    "currency_code": "USD",
    "customer_locale": "en",
    "customer_message": "",
    "payment_method": "Cash",
    "is_email_opt_in": True,
    "billing_address": {
        "first_name": "Bo",
        "last_name": "Buyer",
        "company": "",
        "street_1": "555 East Street",
        "street_2": "",
        "city": "Austin",
        "state": "Texas",
        "zip": "78108",
        "country_iso2": "US",
        "phone": "1234567890",
        "email": "buyer@example.com",
    },
    "consignments": [{"shipping": [{"shipping_method": "Flat", "line_items": [LINE_ITEM]}]}],
}
REFUND = {
    "id": 6,
    "order_id": 118,
    "total_amount": 5.0,
    "created": "2026-01-07T10:00:00+00:00",
    "items": [{"item_id": 1, "item_type": "PRODUCT", "quantity": 1}],
}
CART = {
    "id": "c0ffee00-0000-4000-8000-000000000001",
    "customer_id": 0,
    "channel_id": 1,
    "email": "shopper@example.com",
    "currency": {"code": "USD"},
    "cart_amount": 10.0,
    "base_amount": 10.0,
    "locale": "en",
    "line_items": {
        "physical_items": [
            {"id": "li", "product_id": 111, "variant_id": 5, "sku": "MUG", "name": "Mug", "quantity": 1}
        ],
        "digital_items": [],
        "custom_items": [],
    },
    "redirect_urls": {"cart_url": "https://shop.test/cart.php?action=load&id=c0ffee00"},
}
HOOK = {
    "id": 21,
    "scope": "store/order/created",
    "destination": "https://app.test/webhooks/bigcommerce",
    "is_active": True,
    "headers": {"X-Smbc-Secret": "s"},
}
SCRIPT = {
    "uuid": "b3b1f2a4-0000-4000-8000-000000000001",
    "name": "SALESmanago monitoring",
    "channel_id": 1,
    "html": "<script src='https://app.test/s.js'></script>",
    "consent_category": "analytics",
}
CHANNEL = {"id": 1, "name": "Storefront", "type": "storefront", "platform": "bigcommerce", "status": "active"}
SITE = {
    "id": 1000,
    "channel_id": 1,
    "url": "https://shop.test",
    "urls": [{"url": "https://shop.test", "type": "primary"}],
}
STORE = {
    "id": "abc123",
    "store_id": 1025646,
    "name": "Shop",
    "domain": "shop.test",
    "secure_url": "https://shop.test",
    "language": "en",
    "timezone": {"name": "Europe/Warsaw"},
}


def v3_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"data": [item], "meta": META}


# -- the calls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One client method, the answer it is given, and where in it the object of `model` sits."""

    name: str
    invoke: Callable[[BigCommerceClient], Any]
    answer: Any
    model: type[AnswerModel] | None = None
    item_at: Path_ = ()


CALLS: list[Call] = [
    Call("store_info", lambda c: c.store_info(), STORE, answers.StoreInfo),
    Call("time", lambda c: c.time(), {"time": 1767225600}, answers.ServerTime),
    Call("channels", lambda c: c.channels(), v3_list(CHANNEL), answers.Channel, ("data", 0)),
    Call("sites", lambda c: c.sites(), v3_list(SITE), answers.Site, ("data", 0)),
    Call("customer", lambda c: c.customer(7), v3_list(CUSTOMER), answers.Customer, ("data", 0)),
    Call(
        "customers", lambda c: list(c.customers().items()), v3_list(CUSTOMER), answers.Customer, ("data", 0)
    ),
    Call("customer_count", lambda c: c.customer_count(), v3_list(CUSTOMER)),
    Call("subscriber", lambda c: c.subscriber(12), v3_list(SUBSCRIBER), answers.Subscriber, ("data", 0)),
    Call(
        "subscribers",
        lambda c: list(c.subscribers(email="sub@example.com").items()),
        v3_list(SUBSCRIBER),
        answers.Subscriber,
        ("data", 0),
    ),
    Call("subscriber_count", lambda c: c.subscriber_count(), v3_list(SUBSCRIBER)),
    Call(
        "create_subscriber",
        lambda c: c.create_subscriber({"email": "sub@example.com"}),
        {"data": SUBSCRIBER},
        answers.Subscriber,
        ("data",),
    ),
    Call(
        "set_subscriber_consents",
        lambda c: c.set_subscriber_consents(12, ["marketing_newsletter"]),
        {"data": SUBSCRIBER},
        answers.Subscriber,
        ("data",),
    ),
    Call("order", lambda c: c.order(118), ORDER, answers.Order),
    Call("orders", lambda c: list(c.orders().items()), [ORDER], answers.Order, (0,)),
    Call("order_count", lambda c: c.order_count(), {"count": 3}, answers.OrderCount),
    Call("order_products", lambda c: c.order_products(118), [LINE_ITEM], answers.OrderProduct, (0,)),
    Call("order_statuses", lambda c: c.order_statuses(), [{"id": 11, "name": "Awaiting Fulfillment"}]),
    Call("refund", lambda c: c.refund(6), {"data": REFUND}, answers.Refund, ("data",)),
    Call("refunds", lambda c: c.refunds(order_ids=[118]), v3_list(REFUND), answers.Refund, ("data", 0)),
    Call("cart", lambda c: c.cart(CART["id"]), {"data": CART}, answers.Cart, ("data",)),
    Call("hooks", lambda c: c.hooks(), v3_list(HOOK), answers.Hook, ("data", 0)),
    Call(
        "create_hook",
        lambda c: c.create_hook({"scope": "store/order/created"}),
        {"data": HOOK},
        answers.Hook,
        ("data",),
    ),
    Call(
        "update_hook",
        lambda c: c.update_hook(21, {"is_active": True}),
        {"data": HOOK},
        answers.Hook,
        ("data",),
    ),
    Call("scripts", lambda c: c.scripts(), v3_list(SCRIPT), answers.Script, ("data", 0)),
    Call(
        "create_script", lambda c: c.create_script({"name": "x"}), {"data": SCRIPT}, answers.Script, ("data",)
    ),
    Call(
        "update_script",
        lambda c: c.update_script(SCRIPT["uuid"], {"html": ""}),
        {"data": SCRIPT},
        answers.Script,
        ("data",),
    ),
]


# -- BigCommerce's own examples, when the specs are beside the repository -------------------------


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/")]
        node = target
    return node


@cache
def load_spec(spec: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((OPENAPI_DIR / spec).read_text(), Loader=loader)  # noqa: S506 - a safe loader


def spec_example(spec: str, path: str) -> Any:
    """The documented example of a GET's 200 answer, or None."""
    doc = load_spec(spec)
    answer = _resolve(doc, doc["paths"][path]["get"]["responses"]["200"])
    content = (answer.get("content") or {}).get("application/json") or {}
    if content.get("example") is not None:
        return content["example"]
    for example in (content.get("examples") or {}).values():
        example = _resolve(doc, example)
        if "value" in example:
            return example["value"]
    return _resolve(doc, content.get("schema") or answer.get("schema") or {}).get("example")


def spec_calls() -> list[Call]:
    """The calls again, answered with BigCommerce's documented examples."""
    by_name = {call.name: call for call in CALLS}
    wanted = {
        "store_info": ("store_information.v2.yml", "/store"),
        "time": ("store_information.v2.yml", "/time"),
        "channels": ("channels.v3.yml", "/channels"),
        "customers": ("customers.v3.yml", "/customers"),
        "order": ("orders.v2.oas2.yml", "/orders/{order_id}"),
        "orders": ("orders.v2.oas2.yml", "/orders"),
        "order_products": ("orders.v2.oas2.yml", "/orders/{order_id}/products"),
        "order_statuses": ("orders.v2.oas2.yml", "/order_statuses"),
        "refund": ("orders.v3.yml", "/orders/payment_actions/refunds/{refund_id}"),
    }
    calls = []
    for name, (spec, path) in wanted.items():
        example = spec_example(spec, path)
        if example is None:
            continue
        if name == "customers":  # the documented example is a customer being created: it has no id yet
            example["data"] = [{"id": 7, **item} for item in example["data"]]
        if name in ("order_products", "orders"):
            example = example[:1]  # one item is enough, and stays a short page
        base = by_name[name]
        calls.append(Call(f"{name} (spec example)", base.invoke, example, base.model, base.item_at))
    return calls


# -- mutations ------------------------------------------------------------------------------------


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "not a number"
    if isinstance(value, str):
        return [value]  # not a number either: a decimal string's number form would be right
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return {"unexpected": True}


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every field of the answer (the first item only, of a list)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from paths(value[0], (*prefix, 0))


def mutated(answer: Any, path: Path_, how: str) -> Any:
    copied = copy.deepcopy(answer)
    parent = copied
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "removed":
        del parent[last]
    elif how == "null":
        parent[last] = None
    else:
        parent[last] = wrong_type(parent[last])
    return copied


def mutations(answer: Any) -> Iterator[tuple[str, Any]]:
    yield "whole answer null", None
    yield "whole answer wrong type", wrong_type(answer)
    yield "a list of non-objects", [1, "two"]
    for path in paths(answer):
        for how in ("removed", "null", "wrong type"):
            yield f"{'.'.join(map(str, path))} {how}", mutated(answer, path, how)


# -- running one call -----------------------------------------------------------------------------


def run(call: Call, answer: Any) -> tuple[Any, RemoteCallError | None, list[dict[str, Any]]]:
    """The call's result (or its error) and the attempts it recorded."""

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path.endswith("/v2/orders") and params.get("min_id"):
            return httpx.Response(204)  # the next page of a keyset list: nothing more
        if "after" in params or int(params.get("page", 1)) > 1:
            return httpx.Response(200, json={"data": [], "meta": {}})  # the next page of a /v3 list
        return httpx.Response(
            200, content=json.dumps(answer).encode(), headers={"content-type": "application/json"}
        )

    clock = FakeClock()
    calls = CallBuffer()
    client = BigCommerceClient(
        "abc123",
        "token",
        "https://api.example.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=calls,
        policy=BackoffPolicy(attempts=1),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
    )
    try:
        return call.invoke(client), None, calls.calls
    except RemoteCallError as error:
        return None, error, calls.calls


def problems_of(call: Call, answer: Any) -> list[str]:
    """What went wrong reading each mutation of `answer` (empty: every one ended as it should)."""
    problems = []
    item_paths = len(call.item_at) + 1
    for what, changed in mutations(answer):
        try:
            _, error, recorded = run(call, changed)
        except Exception as exc:  # the very thing this test is about
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        if not recorded:
            problems.append(f"{what}: no call recorded")
            continue
        last = recorded[-1]
        if error is not None:
            if error.outcome is not Outcome.INVALID or error.service is not Service.BIGCOMMERCE:
                problems.append(f"{what}: {error.outcome} instead of invalid")
            if last["outcome"] != "invalid" or "unreadable answer" not in last["message"]:
                problems.append(f"{what}: the invalid answer is not recorded on the call ({last})")
            continue
        if last["outcome"] != "success":
            problems.append(f"{what}: returned, but the call is recorded as {last['outcome']}")
        # A declared field of the object given the wrong type is never taken silently.
        field = what.split(" ")[0].split(".")
        is_declared_field = (
            call.model is not None
            and what.endswith("wrong type")
            and len(field) == item_paths
            and tuple(field[:-1]) == tuple(map(str, call.item_at))
            and field[-1] in call.model.model_fields
        )
        noted = " ".join(r["message"] for r in recorded)  # a list may have read a next page since
        if is_declared_field and f"{field[-1]} ignored" not in noted:
            problems.append(f"{what}: used without a note on the call ({noted!r})")
    return problems


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_every_answer_shape_ends_in_a_result_or_an_invalid_outcome(call: Call) -> None:
    result, error, recorded = run(call, call.answer)
    assert error is None and result is not None, error
    assert [r["outcome"] for r in recorded][-1] == "success" and recorded[-1]["message"] == ""
    assert problems_of(call, call.answer) == []


def test_bigcommerces_own_examples_read_and_survive_the_fuzz(openapi_dir: Path) -> None:
    calls = spec_calls()
    assert calls
    for call in calls:
        _, error, _ = run(call, call.answer)
        assert error is None, f"{call.name}: {error}"
        assert problems_of(call, call.answer) == [], call.name


def test_an_ignored_field_is_named_on_the_call_and_the_rest_is_used() -> None:
    call = next(c for c in CALLS if c.name == "customer")
    customer, _, recorded = run(call, v3_list({**CUSTOMER, "phone": 5550100, "first_name": ["Ann"]}))
    assert customer["email"] == "ann@example.com" and customer["phone"] is None
    assert "Customer.phone ignored" in recorded[-1]["message"]
    assert "Customer.first_name ignored" in recorded[-1]["message"]
    assert customer["addresses"][0]["city"] == "Austin"  # the rest, undeclared fields too, as sent


def test_a_page_without_paging_information_still_reads_on_when_full() -> None:
    pages = iter([{"data": [{**CUSTOMER, "id": 1}]}, {"data": [{**CUSTOMER, "id": 2}]}, {"data": []}])
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["page"])
        return httpx.Response(200, json=next(pages))

    clock = FakeClock()
    client = BigCommerceClient(
        "abc123",
        "token",
        "https://api.example.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
    )
    pager = client.customers()
    pager.limit = 1
    assert [c["id"] for c in pager.items()] == [1, 2]
    assert asked == ["1", "2", "3"]


# -- one level up: a real-time delivery read with a strange answer --------------------------------

LEVEL_UP_ORDER = {k: v for k, v in ORDER.items() if k != "customer_id"} | {"customer_id": 0}


@pytest.fixture
def processing_world(settings: Settings) -> Iterator[tuple[Any, MiniBigCommerce, int]]:
    previous = set_clock(FakeClock())
    try:
        runtime = init_runtime(settings, migrate=True)
        bc = MiniBigCommerce()
        with runtime.db.session() as session:
            store = Store(hash="abc123", access_token="token", webhook_secret="x", sites=[])
            session.add(store)
            session.flush()
            store_id = store.id
        yield runtime.db, bc, store_id
    finally:
        set_clock(previous)
        close_runtime()


def test_a_delivery_read_with_a_mutated_order_ends_in_a_recorded_result(
    processing_world: tuple[Any, MiniBigCommerce, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, bc, store_id = processing_world
    monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
    clients = fake_clients(bc, FakeSalesmanagoPort())
    problems = []
    for number, path in enumerate(p for p in paths(LEVEL_UP_ORDER) if len(p) == 1):
        for how in ("removed", "null", "wrong type"):
            order_id = 1000 + 3 * number + ("removed", "null", "wrong type").index(how)
            order = mutated(LEVEL_UP_ORDER, path, how)
            # Without readable consignments the products are read apart (the fake keeps them here).
            bc.orders[order_id] = {**order, "id": order_id, "_products": [LINE_ITEM]}
            delivery_id = inbox.record_synthetic(
                db,
                store_id,
                "store/order/created",
                {"type": "order", "id": order_id},
                created_at=order_id,
                source="webhook",
            )
            assert delivery_id is not None
            [(_, result)] = realtime.process_delivery(delivery_id, db=db, clients=clients)
            with db.session() as session:
                outcomes = session.scalars(
                    select(RemoteCall.outcome).where(
                        RemoteCall.service == "bigcommerce", RemoteCall.endpoint == f"/v2/orders/{order_id}"
                    )
                ).all()
            what = f"{path[0]} {how}"
            if result.unexpected:
                problems.append(f"{what}: {result.error}")
            elif outcomes not in (["success"], ["invalid"]):
                problems.append(f"{what}: recorded {outcomes}")
            elif outcomes == ["invalid"] and result.status.value != "failed":
                problems.append(f"{what}: an invalid answer left the delivery {result.status.value}")
    assert problems == []
