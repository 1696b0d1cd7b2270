"""`/v2` keyset paging: where a list ends, with and without a count of what it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smbc.bigcommerce.paging import V2Pages


@dataclass
class Answer:
    data: Any


class Orders:
    """A `/v2/orders` list of `count` orders with ids from 1, answering as BigCommerce does."""

    def __init__(self, count: int) -> None:
        self.ids = list(range(1, count + 1))
        self.asked: list[int] = []

    def request(self, method: str, path: str, params: Mapping[str, Any], *, answer: Any) -> Answer:
        start = int(params.get("min_id", 1))
        self.asked.append(start)
        page = [{"id": i} for i in self.ids if i >= start][: int(params["limit"])]
        return Answer(page or None)  # 204: no body


def read(orders: Orders, expected: int | None, cursor: int | None = None) -> list[int]:
    pages = V2Pages(orders, "/v2/orders", limit=10, cursor=cursor, expected=expected)
    return [order["id"] for order in pages.items()]


def test_a_full_last_page_without_a_count_takes_an_empty_page_to_end() -> None:
    orders = Orders(30)
    assert read(orders, None) == orders.ids
    assert orders.asked == [1, 11, 21, 31]


def test_a_count_reached_on_a_full_page_ends_the_list() -> None:
    orders = Orders(30)
    assert read(orders, 30) == orders.ids
    assert orders.asked == [1, 11, 21]


def test_the_count_is_of_the_orders_past_the_cursor() -> None:
    orders = Orders(30)
    assert read(orders, 20, cursor=10) == orders.ids[10:]
    assert orders.asked == [11, 21]


def test_more_orders_than_counted_are_read_to_the_end() -> None:
    orders = Orders(35)  # five were created after the count of 25
    assert read(orders, 25) == orders.ids
    assert orders.asked == [1, 11, 21, 31]


def test_fewer_orders_than_counted_end_at_the_short_or_empty_page() -> None:
    orders = Orders(30)  # two were deleted after the count of 32
    assert read(orders, 32) == orders.ids
    assert orders.asked == [1, 11, 21, 31]
