"""Leases on queued rows, on the controllable clock: a live worker keeps its row however slow it is,
a dead worker's row is taken over once its lease has run out, and nothing is sent twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine import queue
from smbc.engine.context import RowStatus
from smbc.engine.ledgers import SentEvent, claim_event
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.models import WebhookDelivery
from smbc.settings.store_settings import StoreSettings
from support import wait_for
from unit.realtime_harness import (
    FakeSalesmanagoPort,
    MiniBigCommerce,
    fake_clients,
    placed_order,
    save_settings,
)


class SlowSalesmanago(FakeSalesmanagoPort):
    """A SALESmanago port whose event call waits for the test: a live worker in the middle of a send."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()

    def integration_upsert(self, contact_payload: dict[str, Any], event: dict[str, Any]) -> tuple[str, str]:
        self.entered.set()
        assert self.go.wait(timeout=60), "the test never let the send finish"
        return super().integration_upsert(contact_payload, event)


class World:
    def __init__(self, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db = init_runtime(settings, migrate=True).db
        self.clock = clock
        self.bc = MiniBigCommerce()
        self.sm = SlowSalesmanago()
        self.sm.go.set()  # sends go through unless a test holds them
        self.enqueued: list[int] = []  # the stores whose drain was asked for
        monkeypatch.setattr(  # a queue that only records
            realtime, "enqueue_drains", lambda stores, **_: self.enqueued.extend(stores)
        )
        with self.db.session() as s:
            store = Store(hash="lease1", access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            self.store_id = store.id
        save_settings(self.db, self.store_id, StoreSettings(contact_owner="owner@shop.test"))
        self.bc.orders[50] = placed_order(50, quantity=1)
        self._n = 0

    def deliver(self, scope: str = "store/order/created") -> int:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db,
            self.store_id,
            scope,
            {"type": "order", "id": 50},
            created_at=1_700_000_000 + self._n,
            source="webhook",
        )
        assert delivery_id is not None
        return delivery_id

    def run(self, delivery_id: int) -> dict[int, Any]:
        return dict(
            realtime.process_delivery(delivery_id, db=self.db, clients=fake_clients(self.bc, self.sm))
        )

    def status(self, delivery_id: int) -> str:
        with self.db.session() as s:
            return s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id)).one()

    def purchases(self) -> int:
        return len(self.sm.named("integration"))


@pytest.fixture
def world(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield World(backend_settings, clock, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()


def test_a_live_worker_keeps_its_row_however_long_it_works(world: World) -> None:
    delivery_id = world.deliver()
    world.sm.go.clear()
    worker = threading.Thread(target=world.run, args=(delivery_id,))
    worker.start()
    try:
        assert world.sm.entered.wait(timeout=30)
        for _ in range(6):  # three leases long, renewed as the keeper does every third of one
            world.clock.advance(queue.lease().total_seconds() / 2)
            assert queue.LEASES.renew() >= 1
            assert queue.reclaim_expired(world.db) == 0
            assert world.run(delivery_id) == {}  # another worker cannot take it
        assert world.status(delivery_id) == RowStatus.PROCESSING
    finally:
        world.sm.go.set()
        worker.join(timeout=30)
    assert world.status(delivery_id) == RowStatus.DONE
    assert world.purchases() == 1
    assert queue.LEASES.held(queue.queued_lease(WebhookDelivery)) == set()  # let go at finish


def test_a_dead_workers_row_is_taken_over_after_its_lease_and_sent_once(world: World) -> None:
    delivery_id = world.deliver()
    # A worker claimed the row and the PURCHASE, then was killed: nothing renews its lease any more.
    with world.db.session() as s:
        assert queue.claim(s, WebhookDelivery, delivery_id, world.clock.now())
    queue.LEASES.release(queue.queued_lease(WebhookDelivery), [delivery_id])
    owner = f"delivery:{delivery_id}"
    assert (
        claim_event(
            world.db, world.store_id, "PURCHASE", "50", owner=owner, order_id=50, now=world.clock.now()
        )
        is None
    )

    world.clock.advance(queue.lease().total_seconds() - 1)
    assert queue.reclaim_expired(world.db) == 0  # its lease still runs
    assert world.run(delivery_id) == {}
    world.clock.advance(2)
    assert queue.reclaim_expired(world.db) == 1
    assert world.store_id in world.enqueued  # the sweep put its store back on the queue at once

    assert world.run(delivery_id)[delivery_id].status is RowStatus.DONE
    other = world.deliver("store/order/statusUpdated")  # the same order again, from another hook
    assert "already sent" in world.run(other)[other].reason
    assert world.purchases() == 1
    with world.db.session() as s:
        assert s.scalars(select(SentEvent.state)).all() == ["sent"]


def test_a_row_whose_outcome_the_database_refused_is_retried_after_one_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery_id = world.deliver()
    finish_batch = queue.finish_batch

    def database_gone(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(queue, "finish_batch", finish_batch)  # back for the retry
        raise OperationalError("UPDATE webhook_deliveries", {}, Exception("server closed the connection"))

    monkeypatch.setattr(queue, "finish_batch", database_gone)
    with pytest.raises(OperationalError):
        world.run(delivery_id)
    assert world.status(delivery_id) == RowStatus.PROCESSING  # nothing could be written

    # The worker lives on but no longer renews the row: it lapses after one lease, not STALE_LOCK.
    world.clock.advance(queue.lease().total_seconds() + 1)
    queue.LEASES.renew()
    assert queue.reclaim_expired(world.db) == 1
    assert world.store_id in world.enqueued
    assert world.run(delivery_id)[delivery_id].status is RowStatus.DONE
    assert world.purchases() == 1  # sent before the failure, recorded as sent: not sent again


def test_a_worker_started_after_the_others_died_takes_their_rows(world: World) -> None:
    delivery_id = world.deliver()
    with world.db.session() as s:
        assert queue.claim(s, WebhookDelivery, delivery_id, world.clock.now())
    queue.LEASES.release(queue.queued_lease(WebhookDelivery), [delivery_id])  # every worker died
    world.clock.advance(queue.lease().total_seconds() + 1)
    reclaimer = queue.LeaseReclaimer(lambda: world.db).start()  # as `smbc worker` starts
    try:
        wait_for(lambda: world.store_id in world.enqueued, "the new worker to take the row", timeout=30)
    finally:
        reclaimer.stop()
    assert world.status(delivery_id) == RowStatus.PENDING
    world.run(delivery_id)
    assert world.purchases() == 1


def test_the_lease_comes_from_the_settings(world: World, backend_settings: Settings) -> None:
    init_runtime(backend_settings.model_copy(update={"lease_seconds": 5}))
    assert queue.lease() == timedelta(seconds=5)
