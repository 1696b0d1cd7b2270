"""`Declared`: a page read from its bytes holds what the tolerant reading gives of the fields the
models declare, and nothing else, with the same notes and the same refusals, whether it is decoded
and checked in one pass (exactly as modelled) or not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_answers_as_sent import Shouting, order

from smbc.bigcommerce.answers import Order
from smbc.core.answers import AnswerError, AsSent, Declared, read_answer


def declared_only(sent: dict[str, Any]) -> dict[str, Any]:
    """`order()` as read, without the fields `Order` does not declare."""
    cut = copy.deepcopy(sent)
    cut.pop("status", None)
    cut.pop("products", None)
    cut.get("billing_address", {}).pop("form_fields", None)
    consignments = cut.get("consignments")
    for group in consignments.get("shipping", []) if isinstance(consignments, dict) else []:
        group.pop("id", None)
        for item in group.get("line_items") or []:
            item.pop("order_id", None)
    return cut


def body(page: list[dict[str, Any]]) -> bytes:
    return json.dumps(page).encode()


def test_a_page_exactly_as_modelled_holds_its_declared_fields_as_they_came() -> None:
    page = [order(1), order(2)]
    gift = {"id": 3, "product_id": 0, "sku": "", "name": "Gift certificate", "quantity": 1}
    page[1]["consignments"]["email"] = {"gift_certificates": [{"line_items": [gift]}]}
    notes: list[str] = []
    read = read_answer(Declared(list[Order]), body(page), call="GET", notes=notes)
    assert read == [declared_only(o) for o in page] and notes == []
    assert read[1]["consignments"]["email"]["gift_certificates"][0]["line_items"] == [gift]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda o: o.update(customer_id="12"),  # coerced by the tolerant reading
        lambda o: o.pop("payment_method"),  # an opportunistic field missing
        lambda o: o.update(channel_id="web"),  # wrongly typed: its default
        lambda o: o.update(date_modified="yesterday"),  # a string, but not a date
        lambda o: o.update(total_inc_tax="n/a"),  # a string, but not money
        lambda o: o.update(total_inc_tax=25),
        lambda o: o["billing_address"].update(email=None),
        lambda o: o.update(consignments={"url": "https://example.com/c", "resource": "/c"}),
        lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(quantity="2"),
        lambda o: o["consignments"]["shipping"][0].update(line_items=[{"url": "u", "resource": "r"}]),
        lambda o: o["consignments"]["shipping"][0].update(line_items=[{"name": "neither"}]),
    ],
)
def test_a_page_not_exactly_as_modelled_reads_as_the_tolerant_reading_does(spoil: Any) -> None:
    page = [order(1), order(2)]
    spoil(page[1])
    expected_notes: list[str] = []
    expected = read_answer(AsSent(list[Order]), copy.deepcopy(page), call="GET", notes=expected_notes)
    notes: list[str] = []
    assert read_answer(Declared(list[Order]), body(page), call="GET", notes=notes) == [
        declared_only(o) for o in expected
    ]
    assert notes == expected_notes


@pytest.mark.parametrize("spoil", [lambda o: o.pop("status_id"), lambda o: o.update(date_created="soon")])
def test_a_page_missing_what_is_required_is_refused_alike(spoil: Any) -> None:
    page = [order(1)]
    spoil(page[0])
    with pytest.raises(AnswerError) as declared:
        read_answer(Declared(list[Order]), body(page), call="GET /v2/orders")
    with pytest.raises(AnswerError) as plain:
        read_answer(list[Order], page, call="GET /v2/orders")
    assert str(declared.value) == str(plain.value)


def test_a_body_that_is_not_json_is_unreadable() -> None:
    with pytest.raises(AnswerError, match="GET /v2/orders: unreadable answer: not JSON"):
        read_answer(Declared(list[Order]), b"<html>busy</html>", call="GET /v2/orders")


def test_a_model_with_code_of_its_own_is_read_tolerantly_with_every_field() -> None:
    read = read_answer(Declared(list[Shouting]), b'[{"id": 1, "name": "ann", "x": 2}]', call="GET")
    assert read == [{"id": 1, "name": "ANN", "x": 2}]
