"""The events export's orders read two at a time by id windows: every order once, in id order, with
as many reads as keyset reading where the ids are dense, and no read left running once closed."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from smbc.export.order_windows import OrderWindows

LIMIT = 10
# Long enough never to end a wait that the reads under test meet; only bounds a failing test.
STUCK_S = 30


@dataclass
class Answer:
    data: Any


@dataclass(frozen=True)
class Asked:
    min_id: int | None
    max_id: int | None


class Orders:
    """A `/v2/orders` list holding `ids`, answering `min_id`/`max_id`/`limit` as BigCommerce does
    (a 204 for no order), from any thread. `before_answer` runs in the reading thread first."""

    def __init__(self, ids: Iterable[int], before_answer: Callable[[Asked], None] | None = None) -> None:
        self.ids = sorted(ids)
        self.asked: list[Asked] = []
        self.answered = 0
        self.before_answer = before_answer
        self._lock = threading.Lock()

    def request(self, method: str, path: str, params: Mapping[str, Any], *, answer: Any) -> Answer:
        asked = Asked(
            int(params["min_id"]) if "min_id" in params else None,
            int(params["max_id"]) if "max_id" in params else None,
        )
        assert params["sort"] == "id:asc" and params["created"] == "in range"
        with self._lock:
            self.asked.append(asked)
        if self.before_answer is not None:
            self.before_answer(asked)
        page = [
            {"id": i}
            for i in self.ids
            if (asked.min_id is None or i >= asked.min_id) and (asked.max_id is None or i <= asked.max_id)
        ][: int(params["limit"])]
        with self._lock:
            self.answered += 1
        return Answer(page or None)  # 204: no body

    @property
    def probes(self) -> list[Asked]:
        return [asked for asked in self.asked if asked.max_id is None]


def windows(orders: Orders, expected: int | None, cursor: int | None = None) -> OrderWindows:
    return OrderWindows(
        orders, "/v2/orders", {"created": "in range"}, limit=LIMIT, cursor=cursor, expected=expected
    )


def read(orders: Orders, expected: int | None, cursor: int | None = None) -> list[list[int]]:
    return [[order["id"] for order in page] for page in windows(orders, expected, cursor)]


def assert_in_order_once(pages: list[list[int]], ids: list[int]) -> None:
    assert all(page for page in pages)  # no empty page handed on
    assert [i for page in pages for i in page] == ids


def test_dense_ids_take_one_read_a_page_and_no_empty_read_at_the_end() -> None:
    orders = Orders(range(1, 1001))
    pages = read(orders, 1000)
    assert_in_order_once(pages, orders.ids)
    assert len(orders.asked) == math.ceil(1000 / LIMIT)
    # Windows of one page's width, the first and last reads keyset pages with no upper bound.
    assert orders.asked[0] == Asked(None, None) and orders.asked[-1] == Asked(991, None)
    assert orders.asked[1:-1] == [Asked(first, first + LIMIT - 1) for first in range(11, 991, LIMIT)]


def test_a_count_that_does_not_fill_the_last_page_ends_at_its_short_page() -> None:
    orders = Orders(range(1, 96))
    assert_in_order_once(read(orders, 95), orders.ids)
    assert len(orders.asked) == math.ceil(95 / LIMIT)


def test_the_count_is_of_the_orders_past_the_cursor() -> None:
    orders = Orders(range(1, 101))
    assert_in_order_once(read(orders, 60, cursor=40), orders.ids[40:])
    assert orders.asked[0] == Asked(41, None) and len(orders.asked) == 6


def test_two_reads_are_in_flight_at_once() -> None:
    both_asked = threading.Barrier(2, timeout=STUCK_S)

    def wait_for_the_other(asked: Asked) -> None:
        if asked in (Asked(11, 20), Asked(21, 30)):
            both_asked.wait()  # broken (and the test failed) unless both windows are asked together

    orders = Orders(range(1, 51), before_answer=wait_for_the_other)
    assert_in_order_once(read(orders, 50), orders.ids)


def test_ids_with_gaps_are_all_read_in_order() -> None:
    # A third of the orders deleted, then 300 ids in a row with none (a gap wider than any window).
    ids = [i for i in range(1, 400) if i % 3] + list(range(700, 900))
    orders = Orders(ids)
    pages = read(orders, len(ids))
    assert_in_order_once(pages, ids)
    # Windows sized by the density seen: about 9 orders a read where a third of the ids are gone.
    assert len(orders.asked) <= math.ceil(len(ids) / LIMIT) * 1.25
    assert any(asked.max_id is not None and asked.max_id - asked.min_id + 1 > LIMIT for asked in orders.asked)


def test_a_full_window_wider_than_a_page_is_read_on_within_its_bounds() -> None:
    # One order in five, then every id: the windows sized for the sparse ids fill up.
    ids = list(range(5, 201, 5)) + list(range(201, 401))
    orders = Orders(ids)
    assert_in_order_once(read(orders, len(ids)), ids)
    read_on = [
        (before, after)
        for before, after in zip(orders.asked, orders.asked[1:], strict=False)
        if after.max_id is not None and after.max_id == before.max_id
    ]
    assert read_on  # the rest of a window: from the last id read + 1 to the same upper bound
    for before, after in read_on:
        assert before.min_id is not None and after.min_id is not None
        assert before.min_id < after.min_id <= before.max_id  # type: ignore[operator]


@pytest.mark.parametrize("count", [85, 95])
def test_without_a_count_the_list_is_read_to_its_short_page(count: int) -> None:
    orders = Orders(range(1, count + 1))
    assert_in_order_once(read(orders, None), orders.ids)
    # A window and the probe after it read together: the probe's short or empty page ends the list.
    assert orders.asked[-1].max_id is None and orders.asked[-1].min_id > count - LIMIT  # type: ignore[operator]
    assert len(orders.asked) <= math.ceil(count / LIMIT) + 1


def test_without_a_count_a_full_last_page_takes_one_empty_read_as_keyset_reading_does() -> None:
    orders = Orders(range(1, 101))
    assert_in_order_once(read(orders, None), orders.ids)
    assert orders.probes[-1] == Asked(101, None) and len(orders.asked) == 100 // LIMIT + 1


def test_more_orders_than_counted_are_read_to_the_end() -> None:
    orders = Orders(range(1, 136))  # 35 created after the count of 100 (a stale count)
    assert_in_order_once(read(orders, 95), orders.ids)
    assert orders.probes[-1].min_id is not None and orders.probes[-1].min_id > 135 - LIMIT


def test_fewer_orders_than_counted_end_at_the_short_page() -> None:
    orders = Orders(range(1, 99))  # two were deleted after the count of 100
    assert_in_order_once(read(orders, 100), orders.ids)
    assert len(orders.asked) == 10


def test_an_error_in_the_second_window_is_raised_at_its_turn() -> None:
    second_failed = threading.Event()

    def fail_the_second(asked: Asked) -> None:
        if asked == Asked(21, 30):
            second_failed.set()
            raise RuntimeError("BigCommerce 500")
        if asked == Asked(11, 20):
            assert second_failed.wait(STUCK_S)  # the first window answers after the second failed

    orders = Orders(range(1, 101), before_answer=fail_the_second)
    pages = iter(windows(orders, 100))
    assert [o["id"] for o in next(pages)] == list(range(1, 11))
    assert [o["id"] for o in next(pages)] == list(range(11, 21))
    with pytest.raises(RuntimeError, match="BigCommerce 500"):
        next(pages)


def test_closing_early_leaves_no_read_running_and_starts_none() -> None:
    orders = Orders(range(1, 1001))
    pages = iter(windows(orders, 1000))
    next(pages)
    next(pages)
    pages.close()  # type: ignore[attr-defined]
    asked = len(orders.asked)
    assert orders.answered == asked <= 2 + 2  # the two pages handed on, at most two reads ahead
    assert not [t for t in threading.enumerate() if t.name.startswith("order-windows")]
