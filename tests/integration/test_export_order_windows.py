"""The events export reading its orders by id windows against the fake BigCommerce (SQLite and
PostgreSQL+Redis): orders deleted before the count and after it leave no other order out, none sent
twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date

import pytest
from export_support import World, export_world

from smbc.core.config import Settings
from smbc.export import events, runner, service
from smbc.export.job import Job
from smbc.export.order_reads import orders_left

FEB = (date(2026, 2, 1), date(2026, 2, 28))


@pytest.fixture
def w(backend_settings: Settings) -> Iterator[World]:
    with export_world(backend_settings) as world:
        yield world


def test_orders_deleted_before_and_after_the_count_leave_no_other_order_out(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.seed_completed_orders(600)
    store = w.bc_store()
    with w.sb.bc.lock:
        ids = sorted(store.orders)
        # A third of the first 240 deleted: the windows widen, then overflow where the ids are dense.
        deleted_before = {order_id for order_id in ids[:240] if order_id % 3 == 0}
        # Deleted once counted, before any page is read: a gap wider than any window, and fewer orders
        # than the count said.
        deleted_after_count = set(ids[400:520]) | set(ids[-7:])
        for order_id in deleted_before:
            store.orders[order_id].is_deleted = True

    counted: list[int | None] = []

    def count_then_delete(job: Job) -> int | None:
        left = orders_left(job)
        counted.append(left)
        with w.sb.bc.lock:
            for order_id in deleted_after_count:
                store.orders[order_id].is_deleted = True
        return left

    monkeypatch.setattr(events, "orders_left", count_then_delete)
    export_id = service.start_export(
        w.db, w.store_id, "events", *FEB, batch_size=20, page_size=20, enqueue=False
    )
    runner.run_export(export_id, db=w.db, time_slice=None, force=True)

    row = w.export(export_id)
    sent = Counter(int(event["externalId"]) for event in w.events("PURCHASE"))
    assert row.status == "done" and counted == [len(ids) - len(deleted_before)]
    assert set(sent) == set(ids) - deleted_before - deleted_after_count and set(sent.values()) == {1}
    assert row.done == len(sent)
