"""Shape fuzz over every product-catalog call: the BigCommerce catalog reads (product pages, products
by id, channel assignments, category trees, brands, a channel's currency assignment) and the
SALESmanago v3 catalog calls (catalogList, catalogUpsert, product/upsert, updateQuantity, updatePrice,
with their `problems`). Each field of a realistic answer is removed, nulled or given the wrong type,
and the whole answer replaced by something that is not an object. No call may crash: it gives a
usable result (a field it had to ignore is named on the call) or ends in an outcome recorded on the
call (`invalid` for an unreadable required field)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.answers import AnswerModel
from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service
from smbc.salesmanago.catalog import Catalog, CatalogApi, ProductsWritten
from smbc.salesmanago.client import CallAttempt
from smbc.salesmanago.endpoints import EndpointAllowlist

Path_ = tuple[str | int, ...]
HOW = ("removed", "null", "wrong type")


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "not a number"
    if isinstance(value, str):
        return ["a", "list"]
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return {"unexpected": True}


def paths(value: Any, at: Path_ = ()) -> Iterator[Path_]:
    """Every field of an answer, depth first (the first item only, of a list)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*at, key)
            yield from paths(inner, (*at, key))
    elif isinstance(value, list) and value:
        yield (*at, 0)
        yield from paths(value[0], (*at, 0))


def mutated(answer: Any, path: Path_, how: str) -> Any:
    changed = copy.deepcopy(answer)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if how == "removed":
        del parent[path[-1]]
    elif how == "null":
        parent[path[-1]] = None
    else:
        parent[path[-1]] = wrong_type(parent[path[-1]])
    return changed


def mutations(answer: Any) -> Iterator[tuple[str, Any]]:
    for whole in (None, [answer], "ok", 1, [1, "two"]):
        yield f"answer is {json.dumps(whole)[:20]}", whole
    for path in paths(answer):
        for how in HOW:
            yield f"{'.'.join(map(str, path))} {how}", mutated(answer, path, how)


# -- BigCommerce ---------------------------------------------------------------------------------------

PRODUCT = {
    "id": 111,
    "name": "Mug",
    "sku": "MUG",
    "description": "<p>A mug</p>",
    "price": 12.5,
    "sale_price": 10.0,
    "inventory_level": 4,
    "inventory_tracking": "product",
    "is_visible": True,
    "availability": "available",
    "brand_id": 3,
    "categories": [21, 22],
    "custom_url": {"url": "/mug/", "is_customized": False},
    "channels": [1],
    "variants": [{"id": 5, "product_id": 111, "sku": "MUG-RED", "price": 12.5, "inventory_level": 2}],
    "images": [{"id": 9, "url_standard": "https://cdn.test/mug.jpg", "is_thumbnail": True}],
}
META = {"pagination": {"total": 1, "count": 1, "per_page": 250, "current_page": 1, "total_pages": 1}}


def v3_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"data": [item], "meta": META}


@dataclass(frozen=True)
class BcCall:
    """One catalog read, its answer, and where in it the object of `model` sits."""

    name: str
    invoke: Callable[[BigCommerceClient], Any]
    answer: Any
    model: type[AnswerModel]
    item_at: Path_


BC_CALLS = [
    BcCall(
        "product_page",
        lambda c: bc_catalog.product_page(c, 1),
        v3_list(PRODUCT),
        bc_catalog.CatalogProduct,
        ("data", 0),
    ),
    BcCall(
        "product_pages",
        lambda c: list(bc_catalog.product_pages(c, 1)),
        v3_list(PRODUCT),
        bc_catalog.CatalogProduct,
        ("data", 0),
    ),
    BcCall(
        "products_by_id",
        lambda c: bc_catalog.products_by_id(c, [111]),
        v3_list(PRODUCT),
        bc_catalog.CatalogProduct,
        ("data", 0),
    ),
    BcCall(
        "channel_assignments",
        lambda c: bc_catalog.channel_assignments(c, [111]),
        v3_list({"product_id": 111, "channel_id": 1}),
        bc_catalog.ChannelAssignment,
        ("data", 0),
    ),
    BcCall(
        "categories",
        lambda c: bc_catalog.categories(c),
        v3_list({"category_id": 21, "parent_id": 0, "name": "Kitchen", "tree_id": 1, "is_visible": True}),
        bc_catalog.TreeCategory,
        ("data", 0),
    ),
    BcCall(
        "brands",
        lambda c: bc_catalog.brands(c),
        v3_list({"id": 3, "name": "Acme", "page_title": "Acme"}),
        bc_catalog.Brand,
        ("data", 0),
    ),
    BcCall(
        "default_currency",
        lambda c: bc_catalog.default_currency(c, 1),
        {"data": {"channel_id": 1, "enabled_currencies": ["USD", "EUR"], "default_currency": "USD"}},
        bc_catalog.CurrencyAssignment,
        ("data",),
    ),
]


def run_bc(call: BcCall, answer: Any) -> tuple[Any, RemoteCallError | None, list[dict[str, Any]]]:
    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "id:greater" in params or "after" in params or int(params.get("page", 1)) > 1:
            return httpx.Response(200, json={"data": [], "meta": {}})  # the next page: nothing more
        return httpx.Response(
            200, content=json.dumps(answer).encode(), headers={"content-type": "application/json"}
        )

    clock = FakeClock()
    recorded = CallBuffer()
    client = BigCommerceClient(
        "abc123",
        "token",
        "https://api.example.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=recorded,
        policy=BackoffPolicy(attempts=1),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
    )
    try:
        return call.invoke(client), None, recorded.calls
    except RemoteCallError as error:
        return None, error, recorded.calls


def bc_problems(call: BcCall) -> list[str]:
    """What went wrong reading each mutation of the call's answer (empty: every one ended as it should)."""
    problems = []
    for what, changed in mutations(call.answer):
        try:
            _, error, recorded = run_bc(call, changed)
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
        declared = (
            what.endswith("wrong type")
            and tuple(field[:-1]) == tuple(map(str, call.item_at))
            and field[-1] in call.model.model_fields
        )
        noted = " ".join(r["message"] for r in recorded)
        if declared and f"{field[-1]} ignored" not in noted:
            problems.append(f"{what}: used without a note on the call ({noted!r})")
    return problems


@pytest.mark.parametrize("call", BC_CALLS, ids=[c.name for c in BC_CALLS])
def test_each_bigcommerce_catalog_answer_is_read_and_survives_the_fuzz(call: BcCall) -> None:
    result, error, recorded = run_bc(call, call.answer)
    assert error is None and result, error
    assert recorded[-1]["outcome"] == "success" and recorded[-1]["message"] == ""
    assert bc_problems(call) == []


def bc_call(name: str) -> BcCall:
    return next(c for c in BC_CALLS if c.name == name)


def test_a_brand_without_its_id_is_an_invalid_answer_recorded_on_the_call() -> None:
    _, error, recorded = run_bc(bc_call("brands"), v3_list({"name": "Acme"}))
    assert error is not None and error.outcome is Outcome.INVALID
    assert recorded[-1]["outcome"] == "invalid" and "data.0.id" in recorded[-1]["message"]


def test_a_channel_assignment_with_an_unreadable_channel_is_an_invalid_answer() -> None:
    _, error, recorded = run_bc(
        bc_call("channel_assignments"), v3_list({"product_id": 111, "channel_id": "x"})
    )
    assert error is not None and error.outcome is Outcome.INVALID
    assert "channel_id" in recorded[-1]["message"]


def test_a_category_keeps_its_place_without_a_readable_name_and_one_without_an_id_is_left_out() -> None:
    answer = {"data": [{"category_id": 21, "parent_id": "top", "name": 7}, {"name": "No id"}], "meta": META}
    found, error, recorded = run_bc(bc_call("categories"), answer)
    assert error is None and found == {21: bc_catalog.Category(21, "", 0)}
    assert "TreeCategory.name ignored" in recorded[-1]["message"]
    assert "TreeCategory.parent_id ignored" in recorded[-1]["message"]


def test_an_unreadable_currency_assignment_falls_back_with_a_warning() -> None:
    currency, error, recorded = run_bc(bc_call("default_currency"), {"data": ["USD"]})
    assert error is None and currency is None  # the caller then takes the store's currency
    assert recorded[-1]["outcome"] == "success" and "data ignored" in recorded[-1]["message"]


# -- SALESmanago ---------------------------------------------------------------------------------------

V3 = "https://api.salesmanago.test"
ALLOW = EndpointAllowlist.parse("*.salesmanago.com,https://api.salesmanago.test")
TWO = [{"productId": "111", "name": "Mug", "quantity": 4, "price": 12.5}, {"productId": "112", "name": "Cup"}]
# A trimmed description (reasonCode 12) is only a warning: both products went in.
WRITTEN = {"requestId": "r-1", "problems": [{"reasonCode": 12, "message": "[0].description|trimmed"}]}


def written_ok(result: Any) -> bool:
    return (
        isinstance(result, ProductsWritten)
        and result.sent + len(result.refused) == len(TWO)
        and set(result.refused) <= {"111", "112"}
    )


@dataclass(frozen=True)
class SmCall:
    name: str
    invoke: Callable[[CatalogApi], Any]
    answer: dict[str, Any]
    result_ok: Callable[[Any], bool]


SM_CALLS = [
    SmCall(
        "catalogList",
        lambda api: api.catalogs(),
        {
            "catalogs": [
                {
                    "catalogId": "c-1",
                    "catalogName": "Shop",
                    "currency": "USD",
                    "location": "sm_1",
                    "setAsDefault": True,
                }
            ],
            "limits": {"max": 5},
        },
        lambda r: isinstance(r, list) and all(isinstance(c, Catalog) and c.catalog_id for c in r),
    ),
    SmCall(
        "catalogUpsert",
        lambda api: api.create_catalog("Shop", "USD", "sm_1", set_as_default=False),
        {"catalogId": "c-2"},
        lambda r: isinstance(r, str) and r,
    ),
    SmCall("product/upsert", lambda api: api.upsert_products("c-1", TWO), WRITTEN, written_ok),
    SmCall("updateQuantity", lambda api: api.update_quantity("c-1", TWO), WRITTEN, written_ok),
    SmCall("updatePrice", lambda api: api.update_price("c-1", TWO), WRITTEN, written_ok),
]


def run_sm(call: SmCall, answer: Any) -> tuple[Any, RemoteCallError | None, list[CallAttempt]]:
    """The first call gets `answer`; a second one (the rest of a call with refused products) gets a
    plain success."""
    answers = iter([answer])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers, {}))

    records: list[CallAttempt] = []
    api = CatalogApi(
        "v3KeyAbc123",
        v3_url=V3,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=records.append,
        policy=BackoffPolicy(attempts=1),
        allowlist=ALLOW,
    )
    try:
        return call.invoke(api), None, records
    except RemoteCallError as error:
        return None, error, records


def sm_variants() -> Iterator[Any]:
    for call in SM_CALLS:
        for what, answer in mutations(call.answer):
            yield pytest.param(call, answer, id=f"{call.name}: {what}")


@pytest.mark.parametrize("call", SM_CALLS, ids=[c.name for c in SM_CALLS])
def test_each_realistic_salesmanago_catalog_answer_is_read(call: SmCall) -> None:
    result, error, records = run_sm(call, call.answer)
    assert error is None and call.result_ok(result)
    assert [r.outcome for r in records] == [Outcome.SUCCESS]
    assert "ignored" not in records[0].message


@pytest.mark.parametrize(("call", "answer"), list(sm_variants()))
def test_an_odd_salesmanago_catalog_answer_never_crashes_and_its_outcome_is_recorded(
    call: SmCall, answer: Any
) -> None:
    result, error, records = run_sm(call, answer)  # anything but RemoteCallError fails the test
    assert records
    if error is None:
        assert all(r.outcome is Outcome.SUCCESS for r in records) and call.result_ok(result)
    else:
        assert error.outcome is records[-1].outcome and error.outcome is not Outcome.SUCCESS
        assert error.message and "Traceback" not in error.message


def sm_call(name: str) -> SmCall:
    return next(c for c in SM_CALLS if c.name == name)


@pytest.mark.parametrize("problems", ["not a list", 5, [["[1].name|is required"]]])
def test_problems_that_cannot_be_read_refuse_the_call_instead_of_counting_products_as_sent(
    problems: Any,
) -> None:
    _, error, records = run_sm(sm_call("product/upsert"), {"problems": problems})
    assert error is not None and error.outcome is Outcome.INVALID
    assert records[-1].outcome is Outcome.INVALID and "/v3/product/upsert" in records[-1].message


@pytest.mark.parametrize("index", [-1, 2, True])
def test_a_problem_placed_outside_the_products_sent_refuses_no_other_product(index: Any) -> None:
    answer = {"problems": [{"reasonCode": 13, "message": "name|is required", "index": index}]}
    _, error, records = run_sm(sm_call("product/upsert"), answer)
    assert error is not None and error.outcome is Outcome.INVALID  # which product is unknown
    assert records[-1].outcome is Outcome.INVALID


def test_a_refused_product_named_by_its_index_is_counted_and_the_rest_goes_in() -> None:
    answer = {"problems": [{"reasonCode": 13, "message": "name|is required", "index": 1}]}
    written, error, records = run_sm(sm_call("product/upsert"), answer)
    assert error is None and written.sent == 1 and list(written.refused) == ["112"]
    assert [r.outcome for r in records] == [Outcome.SUCCESS, Outcome.SUCCESS]


def test_a_problem_message_of_the_wrong_type_is_named_on_the_call(caplog: pytest.LogCaptureFixture) -> None:
    answer = {"problems": [{"reasonCode": 12, "message": {"text": "trimmed"}}]}
    written, error, records = run_sm(sm_call("updatePrice"), answer)
    assert error is None and written.sent == 2 and written.warnings == 1
    assert "ProblemEntry.message ignored" in records[0].message
    assert any("/v3/product/updatePrice" in r.getMessage() for r in caplog.records)


def test_an_unreadable_catalog_entry_is_an_invalid_answer_never_an_empty_list() -> None:
    """An empty list would say every storefront's catalog was deleted, and pause their syncs."""
    answer = {"catalogs": [{"catalogName": "Shop", "currency": "USD"}]}
    _, error, records = run_sm(sm_call("catalogList"), answer)
    assert error is not None and error.outcome is Outcome.INVALID
    assert "catalogId" in records[0].message


def test_a_catalog_id_sent_as_a_number_is_that_id() -> None:
    created, error, _ = run_sm(sm_call("catalogUpsert"), {"catalogId": 42})
    assert error is None and created == "42"
