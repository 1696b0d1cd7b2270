"""Pure parts of the export: whole days in a time zone as UTC bounds, form validation, batch
planning and the progress figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from smbc.export.events import OrderPlan, PlannedEvent, plan_batches
from smbc.export.models import Export
from smbc.export.service import ExportInvalid, day_bounds, parse_request, progress
from smbc.mapping.rules import EventKind


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- date range ----------------------------------------------------------------------------------------


def test_whole_days_in_a_zone_west_of_utc() -> None:
    start, end = day_bounds(date(2026, 2, 1), date(2026, 2, 28), "America/New_York")
    assert start == utc(2026, 2, 1, 5, 0, 0)  # midnight in New York (UTC-5)
    assert end == utc(2026, 3, 1, 4, 59, 59)  # the last second of 28 February there


def test_whole_days_in_a_zone_east_of_utc_cross_the_previous_utc_day() -> None:
    start, end = day_bounds(date(2026, 7, 10), date(2026, 7, 10), "Europe/Warsaw")
    assert (start, end) == (utc(2026, 7, 9, 22, 0, 0), utc(2026, 7, 10, 21, 59, 59))  # CEST, UTC+2


def test_a_range_over_a_daylight_saving_change_keeps_local_midnights() -> None:
    # 8 March 2026: New York moves from UTC-5 to UTC-4.
    start, end = day_bounds(date(2026, 3, 8), date(2026, 3, 8), "America/New_York")
    assert start == utc(2026, 3, 8, 5, 0, 0) and end == utc(2026, 3, 9, 3, 59, 59)
    assert end - start == timedelta(hours=23) - timedelta(seconds=1)


def test_utc_and_unknown_zones() -> None:
    assert day_bounds(date(2026, 1, 1), date(2026, 1, 2), "UTC") == (
        utc(2026, 1, 1),
        utc(2026, 1, 2, 23, 59, 59),
    )
    assert day_bounds(date(2026, 1, 1), date(2026, 1, 1), "Not/AZone") == (
        utc(2026, 1, 1),
        utc(2026, 1, 1, 23, 59, 59),
    )


# -- form -----------------------------------------------------------------------------------------------


TODAY = date(2026, 5, 20)


def errors_of(*args: str) -> dict[str, str]:
    with pytest.raises(ExportInvalid) as info:
        parse_request(*args, today=TODAY)
    return info.value.errors


def test_valid_request_normalises_tags_like_the_settings() -> None:
    assert parse_request("2026-01-01", "2026-05-20", " bc export, vip ,VIP,, ", today=TODAY) == (
        date(2026, 1, 1),
        date(2026, 5, 20),
        ["BC_EXPORT", "VIP"],
    )
    assert parse_request("2026-05-20", "2026-05-20", "", today=TODAY)[2] == []


def test_each_field_says_what_is_wrong() -> None:
    assert errors_of("", "", "") == {
        "date_from": "Enter a date (YYYY-MM-DD).",
        "date_to": "Enter a date (YYYY-MM-DD).",
    }
    assert errors_of("2026-13-01", "yesterday", "")["date_from"].endswith("use YYYY-MM-DD.")
    assert errors_of("2026-05-02", "2026-05-01", "") == {
        "date_to": "The end date must be on or after the start date."
    }
    assert errors_of("2026-05-01", "2026-05-21", "") == {"date_to": "Choose a day up to today (2026-05-20)."}
    assert "tags" in errors_of("2026-05-01", "2026-05-02", "x" * 256)


# -- batches --------------------------------------------------------------------------------------------


def plan(order_id: int, events: int) -> OrderPlan:
    made = [
        PlannedEvent(EventKind.PURCHASE, f"{order_id}-{i}", order_id, "a@b.test", {}) for i in range(events)
    ]
    return OrderPlan(order_id, events=made)


def shape(batches: list[list[OrderPlan]]) -> list[list[tuple[int, int]]]:
    return [[(p.order_id, len(p.events)) for p in batch] for batch in batches]


def test_batches_hold_whole_orders_up_to_the_size() -> None:
    plans = [plan(1, 1), plan(2, 2), plan(3, 0), plan(4, 1), plan(5, 3), plan(6, 1)]
    assert shape(list(plan_batches(plans, 3))) == [
        [(1, 1), (2, 2)],
        [(3, 0), (4, 1)],  # an order with a RETURN too does not fit: it starts the next batch
        [(5, 3)],
        [(6, 1)],
    ]


def test_an_order_bigger_than_a_batch_goes_alone_and_empty_orders_still_move_the_cursor() -> None:
    assert shape(list(plan_batches([plan(1, 1), plan(2, 5), plan(3, 0)], 2))) == [
        [(1, 1)],
        [(2, 5)],
        [(3, 0)],
    ]
    assert list(plan_batches([], 400)) == []


def test_plans_are_pulled_lazily() -> None:
    pulled: list[int] = []

    def stream():
        for i in range(1, 100):
            pulled.append(i)
            yield plan(i, 1)

    batches = plan_batches(stream(), 2)
    assert shape([next(batches)]) == [[(1, 1), (2, 1)]]
    assert pulled == [1, 2]  # memory stays flat: nothing read ahead of the batch


# -- progress -------------------------------------------------------------------------------------------


def test_progress_rate_and_time_left() -> None:
    row = Export(done=300, total=1200, started_at=utc(2026, 1, 1, 12, 0, 0))
    view = progress(row, now=utc(2026, 1, 1, 12, 1, 0))
    assert (view.percent, view.rate_per_min, view.seconds_left) == (25, 300.0, 180)
    fresh = progress(Export(done=0, total=None, started_at=None), now=utc(2026, 1, 1))
    assert (fresh.percent, fresh.rate_per_min, fresh.seconds_left) == (0, None, None)
    assert (
        progress(Export(done=5, total=3, started_at=None)).total == 5
    )  # an estimate never shrinks below done
