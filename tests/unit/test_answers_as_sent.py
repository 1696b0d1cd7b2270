"""`AsSent`: a page read as plain JSON is exactly what the tolerant reading dumps back, with the same
notes and the same refusals, whether the strict check lets it through as it came or not; and the
usual /v2 date form is read as the general parser reads it."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from pydantic import field_validator

from smbc.bigcommerce.answers import Order
from smbc.bigcommerce.dates import parse_date
from smbc.core.answers import AnswerError, AnswerModel, AsSent, opportunistic, read_answer


def order(order_id: int) -> dict[str, Any]:
    """A /v2 order as the list sends it with `include=consignments.line_items`, fields unmodelled too."""
    return {
        "id": order_id,
        "status_id": 10,
        "status": "Completed",
        "date_created": "Tue, 20 Nov 2012 10:00:00 +0000",
        "date_modified": "Wed, 21 Nov 2012 10:00:00 +0000",
        "customer_id": 4,
        "channel_id": 1,
        "billing_address": {
            "email": "ann@example.com",
            "first_name": "Ann",
            "last_name": "Lee",
            "phone": "",
            "company": "",
            "street_1": "1 Main St",
            "street_2": "",
            "zip": "78701",
            "city": "Austin",
            "state": "Texas",
            "country_iso2": "US",
            "form_fields": [],
        },
        "total_inc_tax": "25.0000",
        "refunded_amount": "0.0000",
        "currency_code": "USD",
        "customer_message": "",
        "payment_method": "Cash",
        "is_email_opt_in": False,
        "consignments": {
            "shipping": [
                {
                    "id": 1,
                    "line_items": [
                        {
                            "id": 9,
                            "order_id": order_id,
                            "product_id": 77,
                            "sku": "A",
                            "name": "Mug",
                            "quantity": 2,
                        }
                    ],
                }
            ]
        },
        "products": {"url": "https://example.com/products", "resource": "/orders/1/products"},
    }


def tolerant(data: Any, notes: list[str]) -> Any:
    return [
        read.model_dump(exclude_unset=True)
        for read in read_answer(list[Order], data, call="GET", notes=notes)
    ]


def test_a_page_exactly_as_modelled_comes_back_as_it_came() -> None:
    page = [order(1), order(2)]
    notes: list[str] = []
    assert read_answer(AsSent(list[Order]), page, call="GET", notes=notes) is page
    assert notes == [] and tolerant(page, []) == page


@pytest.mark.parametrize(
    ("spoil", "noted"),
    [
        (lambda o: o.update(customer_id="12"), False),  # coerced by the tolerant reading
        (lambda o: o.update(customer_id=True), False),
        (lambda o: o.pop("payment_method"), True),  # an opportunistic field missing
        (lambda o: o.update(channel_id="web"), True),  # wrongly typed: its default
        (lambda o: o.update(date_modified="yesterday"), True),
        (lambda o: o["billing_address"].update(email=None), False),
        (lambda o: o.update(consignments={"url": "https://example.com/c", "resource": "/c"}), False),
        (lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(quantity="2"), False),
        # Line items left as links: the tolerant reading also notes what the line item it tried first
        # lacks; the strict check finds the link at once and notes nothing.
        (
            lambda o: o["consignments"]["shipping"][0].update(line_items=[{"url": "u", "resource": "r"}]),
            False,
        ),
        (lambda o: o.update(total_inc_tax=25), False),
    ],
)
def test_a_page_not_exactly_as_modelled_reads_as_the_tolerant_reading_does(spoil: Any, noted: bool) -> None:
    page = [order(1), order(2)]
    spoil(page[1])
    expected_notes: list[str] = []
    expected = tolerant(copy.deepcopy(page), expected_notes)
    notes: list[str] = []
    assert read_answer(AsSent(list[Order]), page, call="GET", notes=notes) == expected
    assert set(notes) <= set(expected_notes) and bool(notes) is noted


@pytest.mark.parametrize("spoil", [lambda o: o.pop("status_id"), lambda o: o.update(date_created="soon")])
def test_a_page_missing_what_is_required_is_refused_alike(spoil: Any) -> None:
    page = [order(1)]
    spoil(page[0])
    with pytest.raises(AnswerError) as strict:
        read_answer(AsSent(list[Order]), page, call="GET /v2/orders")
    with pytest.raises(AnswerError) as plain:
        read_answer(list[Order], page, call="GET /v2/orders")
    assert str(strict.value) == str(plain.value)


class Shouting(AnswerModel):
    id: int
    name: str | None = opportunistic()

    @field_validator("name")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


def test_a_model_with_code_of_its_own_is_always_read_tolerantly() -> None:
    assert read_answer(AsSent(list[Shouting]), [{"id": 1, "name": "ann"}], call="GET") == [
        {"id": 1, "name": "ANN"}
    ]


def test_the_usual_v2_date_form_reads_as_the_general_parser_reads_it() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        when = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 1_500_000_000))
        zone = rng.choice(["+0000", "+0530", "+0100", "-0500", "-0000"])
        text = when.strftime(f"%a, %d %b %Y %H:%M:%S {zone}")
        parsed = parse_date(text)
        assert parsed == parsedate_to_datetime(text) and parsed.tzinfo == parsedate_to_datetime(text).tzinfo
    assert parse_date("Tue, 31 Feb 2012 00:00:00 +0000") is None
    assert parse_date("Tue, 20 Nov 0012 00:00:00 +0000") == parsedate_to_datetime(
        "Tue, 20 Nov 0012 00:00:00 +0000"
    )
    assert parse_date("2012-11-20T00:00:00Z") == datetime(2012, 11, 20, tzinfo=UTC)
    assert parse_date(20121120) is None and parse_date(" ") is None


@pytest.mark.parametrize(
    "text",
    [
        "Tue, 20 Nov 2012 23:59:59 +0000",
        "Tue, 20 Nov 2012 24:00:00 +0000",
        "Tue, 20 Nov 2012 23:60:00 +0000",
        "Tue, 20 Nov 2012 23:59:60 +0100",
        "Tue, 29 Feb 2024 07:08:09 -0130",
        "Tue, 30 Feb 2024 07:08:09 +0000",
        "tue, 20 Nov 2012 10:00:00 +0000",
        "Tue, 20 Nov 2012 1a:00:00 +0000",
    ],
)
def test_a_v2_date_read_by_position_reads_as_the_general_parser_reads_it(text: str) -> None:
    # The clock is read by position, the day and zone once: an impossible clock or day is the
    # general parser's to decide, as before.
    try:
        expected = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        expected = None
    parsed = parse_date(text)
    assert parsed == expected and (parsed is None or parsed.utcoffset() == expected.utcoffset())
