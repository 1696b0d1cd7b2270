"""Work that cannot succeed stops: an exception the outcome table does not know (a bug, an answer
nobody foresaw) is retried with backoff, but a delivery or a consent write-back that keeps raising it
ends as failed, with the error, after `queue.UNEXPECTED_ERROR_ATTEMPTS` attempts, within minutes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, save_settings
from sqlalchemy.exc import OperationalError

from smbc.activity.recent import recent_activity
from smbc.consent import write_back
from smbc.consent.models import ConsentWriteBack
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import Outcome
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine import queue
from smbc.engine.context import Result, RowStatus
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.models import WebhookDelivery
from smbc.settings.store_settings import StoreSettings

MALFORMED = AttributeError("'list' object has no attribute 'items'")
CUSTOMER = {"id": 7, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "addresses": []}


class World:
    def __init__(self, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db = init_runtime(settings, migrate=True).db
        self.clock = clock
        self.bc = MiniBigCommerce()
        self.sm = FakeSalesmanagoPort()
        self.clients = fake_clients(self.bc, self.sm)
        monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
        monkeypatch.setattr(write_back, "enqueue_write_back", lambda write_back_id: None)
        with self.db.session() as s:
            store = Store(
                hash="bound1", status="installed", access_token="token", webhook_secret="x", sites=[]
            )
            s.add(store)
            s.flush()
            self.store_id = store.id
        save_settings(self.db, self.store_id, StoreSettings(contact_owner="owner@shop.test"))

    def deliver_customer(self) -> int:
        data = {"type": "customer", "id": 7}
        scope = "store/customer/created"
        delivery_id = inbox.record_synthetic(
            self.db, self.store_id, scope, data, created_at=1_700_000_000, source="webhook"
        )
        assert delivery_id is not None
        return delivery_id

    def process(self, delivery_id: int) -> None:
        realtime.process_delivery(delivery_id, clients=self.clients)

    def row(self, model: Any, row_id: int) -> Any:
        with self.db.session() as s:
            row = s.get(model, row_id)
            s.expunge(row)
            return row

    def until_settled(self, model: Any, row_id: int, run: Any) -> Any:
        """Run the row each time it is due (the clock jumps to its next attempt) until it is not pending."""
        for _ in range(50):
            row = self.row(model, row_id)
            if row.status != RowStatus.PENDING.value:
                return row
            self.clock.set(max(row.next_attempt_at or self.clock.now(), self.clock.now()))
            run(row_id)
        raise AssertionError("the row was still pending after 50 runs")


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield World(settings, clock, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()


def test_the_bound_is_small_and_an_unexpected_error_is_marked_so() -> None:
    assert 3 <= queue.UNEXPECTED_ERROR_ATTEMPTS <= 10
    result = queue.result_for_unexpected(MALFORMED)
    assert result.status is RowStatus.PENDING and result.unexpected
    assert result.error == "internal error: AttributeError: 'list' object has no attribute 'items'"
    assert not Result.retry("SALESmanago answered HTTP 503").unexpected


def test_a_delivery_that_keeps_raising_an_unknown_error_fails_within_minutes(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.sm.failures.extend([MALFORMED] * 100)  # type: ignore[list-item]  # a parser that always breaks
    delivery_id = world.deliver_customer()
    started = world.clock.now()

    row = world.until_settled(WebhookDelivery, delivery_id, world.process)

    assert row.status == "failed" and row.attempts == queue.UNEXPECTED_ERROR_ATTEMPTS
    assert row.reason == (
        f"stopped after {queue.UNEXPECTED_ERROR_ATTEMPTS} attempts: "
        "internal error: AttributeError: 'list' object has no attribute 'items'"
    )
    assert world.clock.now() - started < timedelta(minutes=15)  # never the 24 h of a retryable outcome
    deliveries, _calls = recent_activity(world.db, "bound1", failed_only=True)  # `smbc activity --failed`
    assert [d.id for d in deliveries] == [delivery_id] and "stopped after" in deliveries[0].detail


def test_a_retryable_outcome_is_not_cut_short_by_the_bound(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.sm.fail(Outcome.RETRY, "SALESmanago answered HTTP 503", times=queue.UNEXPECTED_ERROR_ATTEMPTS + 2)
    delivery_id = world.deliver_customer()
    row = world.until_settled(WebhookDelivery, delivery_id, world.process)
    assert row.status == "done" and row.attempts == queue.UNEXPECTED_ERROR_ATTEMPTS + 3


def test_a_database_failing_mid_delivery_is_retried_as_an_outage_not_cut_short(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    gone = OperationalError("INSERT INTO synced_contacts", {}, Exception("server closed the connection"))
    world.sm.failures.extend([gone] * (queue.UNEXPECTED_ERROR_ATTEMPTS + 2))  # type: ignore[list-item]
    delivery_id = world.deliver_customer()
    row = world.until_settled(WebhookDelivery, delivery_id, world.process)
    assert row.status == "done" and row.attempts == queue.UNEXPECTED_ERROR_ATTEMPTS + 3


def test_a_manual_retry_of_a_stopped_delivery_gets_a_fresh_count(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.sm.failures.extend([MALFORMED] * queue.UNEXPECTED_ERROR_ATTEMPTS)  # type: ignore[list-item]
    delivery_id = world.deliver_customer()
    assert world.until_settled(WebhookDelivery, delivery_id, world.process).status == "failed"

    assert realtime.retry_delivery(delivery_id, db=world.db)  # the parser was fixed meanwhile
    row = world.until_settled(WebhookDelivery, delivery_id, world.process)
    assert row.status == "done" and row.attempts == 1


def test_a_write_back_that_keeps_raising_an_unknown_error_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> Result:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(write_back, "_write", broken)
    with world.db.session() as s:
        row_id = write_back.record_write_back(
            s, world.store_id, "ann@example.com", "opt_in", source="test"
        ).id

    row = world.until_settled(ConsentWriteBack, row_id, lambda i: write_back.apply_write_back(i, db=world.db))

    assert row.status == "failed" and row.attempts == queue.UNEXPECTED_ERROR_ATTEMPTS
    assert row.reason.startswith(f"stopped after {queue.UNEXPECTED_ERROR_ATTEMPTS} attempts: internal error")
    assert "NoneType" in row.last_error
