"""Drains of a store: one queue message per store, never one per delivery; a drain takes the store's
oldest due rows and sends the store to the back of the queue when more are due (stores take turns)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, placed_order, save_settings
from sqlalchemy import select

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.jobs import huey
from smbc.core.remote_calls import Outcome
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.clients import MAX_QUOTA_WAIT_S
from smbc.realtime.models import WebhookDelivery
from smbc.realtime.store_snapshots import forget_snapshots
from smbc.settings.store_settings import StoreSettings


class World:
    def __init__(self, settings: Settings, clock: FakeClock) -> None:
        self.db = init_runtime(settings, migrate=True).db
        forget_snapshots()  # a new database under the same store ids
        self.clock = clock
        self.bc = MiniBigCommerce()
        self.sm = FakeSalesmanagoPort()
        self.clients = fake_clients(self.bc, self.sm)
        self.stores = [self._store(f"drain{n}") for n in range(2)]
        self._n = 0
        huey.flush()

    def _store(self, hash_: str) -> int:
        with self.db.session() as s:
            store = Store(hash=hash_, access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            store_id = store.id
        save_settings(self.db, store_id, StoreSettings(contact_owner="owner@shop.test"))
        return store_id

    def deliver(self, store_id: int, scope: str, data: dict[str, Any]) -> int:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db, store_id, scope, data, created_at=1_700_000_000 + self._n, source="webhook"
        )
        assert delivery_id is not None
        return delivery_id

    def customer(self, store_id: int, customer_id: int) -> int:
        self.bc.customers[customer_id] = {
            "id": customer_id,
            "email": f"c{customer_id}@example.com",
            "first_name": "C",
            "last_name": "Lee",
            "addresses": [],
        }
        return self.deliver(store_id, "store/customer/updated", {"type": "customer", "id": customer_id})

    def status(self, delivery_id: int) -> str:
        with self.db.session() as s:
            return s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id)).one()

    def queued_drains(self) -> list[int]:
        """The stores of the drain messages waiting in the queue, oldest first."""
        stores = []
        for message in huey.storage.enqueued_items():
            task = huey.deserialize_task(message)
            assert task.name.endswith("drain_store_task")
            stores.append(task.args[0])
        return stores


@pytest.fixture
def world(backend_settings: Settings) -> Iterator[World]:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield World(backend_settings, clock)
    finally:
        huey.flush()
        set_clock(previous)
        close_runtime()


def test_a_batch_of_deliveries_queues_one_drain_per_store_and_none_while_one_waits(world: World) -> None:
    a, b = world.stores
    accepted = [
        inbox.Accepted(200, "accepted", delivery_id=n, store_id=store) for n, store in enumerate([a, b, a, a])
    ]
    inbox.enqueue_accepted(accepted)
    assert world.queued_drains() == [a, b]
    inbox.enqueue_accepted(accepted[:1])  # the next group commit: a's drain is queued and not started
    assert world.queued_drains() == [a, b]

    realtime.drain_store(a, db=world.db, clients=world.clients)  # it started: the next batch queues one
    inbox.enqueue_accepted(accepted[:1])
    assert world.queued_drains() == [a, b, a]


def test_a_drain_takes_the_oldest_due_rows_of_every_scope_and_leaves_the_other_store(world: World) -> None:
    a, b = world.stores
    first = world.customer(a, 1)
    other_store = world.customer(b, 2)
    rest = [world.customer(a, 3), world.deliver(a, "store/cart/deleted", {"type": "cart", "id": "c1"})]
    last = world.customer(a, 4)

    finished = realtime.drain_store(a, db=world.db, clients=world.clients, limit=3)

    assert [delivery_id for delivery_id, _ in finished] == [first, *rest]
    assert world.status(other_store) == world.status(last) == "pending"
    assert world.queued_drains() == [a]  # a full batch: the store goes to the back of the queue
    huey.flush()
    realtime.drain_store(a, db=world.db, clients=world.clients, limit=3)
    assert world.status(last) == "done"
    assert world.queued_drains() == []  # less than a batch was due: nothing more to drain


def test_stores_take_turns_while_one_store_is_flooded(world: World) -> None:
    a, b = world.stores
    flood = [world.customer(a, n) for n in range(1, 121)]
    quiet = world.customer(b, 500)
    inbox.enqueue_accepted(
        [
            inbox.Accepted(200, "accepted", delivery_id=flood[0], store_id=a),
            inbox.Accepted(200, "accepted", delivery_id=quiet, store_id=b),
        ]
    )
    ran: list[int] = []
    while (queued := world.queued_drains()) and len(ran) < 20:  # a worker taking messages in order
        huey.storage.dequeue()
        ran.append(queued[0])
        realtime.drain_store(queued[0], db=world.db, clients=world.clients, limit=50)
        if queued[0] == b:
            assert world.status(quiet) == "done" and world.status(flood[-1]) == "pending"
    assert ran == [a, b, a, a]  # 50 + 50 + 20 rows of the flood, the quiet store second
    assert {world.status(delivery_id) for delivery_id in flood} == {"done"}


def test_a_row_left_to_retry_gets_a_drain_of_its_store_at_its_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = world.stores
    later: list[tuple[int, float]] = []
    monkeypatch.setattr(realtime, "enqueue_drain_later", lambda store, delay: later.append((store, delay)))
    world.sm.fail(Outcome.RETRY, "SALESmanago answered HTTP 503", times=1)
    delivery_id = world.customer(a, 9)

    realtime.drain_store(a, db=world.db, clients=world.clients)

    with world.db.session() as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None and row.status == "pending"
        wait = (row.next_attempt_at - world.clock.now()).total_seconds()
    assert later == [(a, pytest.approx(wait))] and wait >= 15
    world.clock.advance(timedelta(seconds=wait).total_seconds())
    realtime.drain_store(a, db=world.db, clients=world.clients)
    assert world.status(delivery_id) == "done"


def test_a_store_whose_quota_is_used_up_gives_its_rows_back_and_frees_the_worker(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sleeping 20 s in the limiter held a worker thread per waiting drain: a flooded store with no
    # quota left kept every thread, and quiet stores' orders waited behind it.
    a, b = world.stores
    limiter = LocalLimiter(clock=world.clock)
    http = httpx.Client(transport=httpx.MockTransport(world.bc.handler))

    def bigcommerce(store: Store, calls: CallBuffer) -> BigCommerceClient:
        return BigCommerceClient(
            store.hash,
            "token",
            "https://api.bigcommerce.test",
            http=http,
            recorder=calls,
            limiter=limiter,
            clock=world.clock,
            store_id=store.id,
            max_quota_wait=MAX_QUOTA_WAIT_S,
        )

    clients = replace(
        world.clients, bigcommerce=bigcommerce, quota_wait=lambda h: limiter.quota_wait(h, "realtime")
    )
    later: list[tuple[int, float]] = []
    monkeypatch.setattr(realtime, "enqueue_drain_later", lambda store, delay: later.append((store, delay)))
    limiter.observe("drain0", {"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "20000"})
    flood = [world.customer(a, n) for n in range(1, 4)]

    realtime.drain_store(a, db=world.db, clients=clients)  # the first call finds the quota used up

    with world.db.session() as s:
        rows = s.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(flood))).all()
        assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {
            ("pending", 0, world.clock.now() + timedelta(seconds=20))
        }  # given back untried, due at the reset
    assert world.bc.requests == [] and later == [(a, pytest.approx(20.0))]
    realtime.drain_store(a, db=world.db, clients=clients)  # the next drain claims nothing and waits too
    assert later[-1] == (a, pytest.approx(20.0)) and world.bc.requests == []

    quiet = world.customer(b, 500)
    realtime.drain_store(b, db=world.db, clients=clients)  # other stores' quotas are their own
    assert world.status(quiet) == "done"

    world.clock.advance(20)
    realtime.drain_store(a, db=world.db, clients=clients)
    assert {world.status(delivery_id) for delivery_id in flood} == {"done"}


def test_the_sweep_queues_one_drain_per_store_with_due_rows(world: World) -> None:
    a, b = world.stores
    for n in range(3):
        world.customer(a, 10 + n)
    world.customer(b, 20)
    realtime.enqueue_drains([a])
    huey.flush()  # the message is lost; its mark says a drain of `a` is queued
    world.clock.advance(120)
    assert realtime.sweep_due(world.db, world.clock.now()) == 4
    assert sorted(world.queued_drains()) == [a, b]  # the safety net does not trust the mark


def test_an_orders_deliveries_in_one_batch_send_and_retry_once(world: World) -> None:
    a, _ = world.stores
    world.bc.orders[50] = placed_order(50, cart_id="cart-50")
    world.sm.fail(Outcome.RETRY, "SALESmanago answered HTTP 503", times=1)
    created = world.deliver(a, "store/order/created", {"type": "order", "id": 50})
    updated = world.deliver(a, "store/order/statusUpdated", {"type": "order", "id": 50})

    finished = dict(realtime.drain_store(a, db=world.db, clients=world.clients))

    assert finished[created].status.value == "pending"  # SALESmanago failed: retried later, once
    assert finished[updated].reason == f"coalesced with delivery {created}"
    assert world.sm.failures == [] and world.sm.named("integration") == []  # one attempt, not two


def test_a_carts_deliveries_in_one_batch_read_the_cart_once(world: World) -> None:
    a, _ = world.stores
    created = world.deliver(a, "store/cart/created", {"type": "cart", "id": "cart-7"})
    updated = world.deliver(a, "store/cart/updated", {"type": "cart", "id": "cart-7"})
    other = world.deliver(a, "store/cart/updated", {"type": "cart", "id": "cart-8"})

    finished = dict(realtime.drain_store(a, db=world.db, clients=world.clients))

    assert sorted(path for path in world.bc.paths() if path.startswith("v3/carts")) == [
        "v3/carts/cart-7",
        "v3/carts/cart-8",
    ]
    assert finished[created].reason == "cart no longer exists (converted or deleted)"
    assert finished[updated].reason == f"coalesced with delivery {created}"
    assert finished[other].reason == "cart no longer exists (converted or deleted)"


def test_a_carts_changes_in_a_batch_with_its_conversion_are_skipped_without_a_read(world: World) -> None:
    a, _ = world.stores
    created = world.deliver(a, "store/cart/created", {"type": "cart", "id": "cart-9"})
    updated = world.deliver(a, "store/cart/updated", {"type": "cart", "id": "cart-9"})
    converted = world.deliver(a, "store/cart/converted", {"type": "cart", "id": "cart-9", "orderId": 9})
    other = world.deliver(a, "store/cart/updated", {"type": "cart", "id": "cart-10"})

    finished = dict(realtime.drain_store(a, db=world.db, clients=world.clients))

    # BigCommerce deletes a cart before its conversion's webhook fires: only the other cart is read.
    assert [path for path in world.bc.paths() if path.startswith("v3/carts")] == ["v3/carts/cart-10"]
    assert finished[created].reason == "cart no longer exists (converted or deleted)"
    assert finished[updated].reason == f"coalesced with delivery {created}"
    assert finished[converted].reason.startswith("cart converted")
    assert finished[other].reason == "cart no longer exists (converted or deleted)"


def test_a_status_change_into_a_purchase_status_already_sent_reads_no_order(world: World) -> None:
    a, _ = world.stores
    world.bc.orders[60] = placed_order(60)
    created = world.deliver(a, "store/order/created", {"type": "order", "id": 60})
    sent = dict(realtime.drain_store(a, db=world.db, clients=world.clients))
    assert sent[created].reason.startswith("PURCHASE sent")
    reads = len([path for path in world.bc.paths() if path.startswith("v2/orders/60")])

    status = {"previous_status_id": 11, "new_status_id": 2}  # into Shipped, a purchase status
    shipped = world.deliver(a, "store/order/statusUpdated", {"type": "order", "id": 60, "status": status})
    cancelled = {"previous_status_id": 2, "new_status_id": 5}  # not a purchase status: the order is read
    world.bc.orders[60]["status_id"] = 5
    finished = dict(realtime.drain_store(a, db=world.db, clients=world.clients))
    assert finished[shipped].reason.startswith("PURCHASE already sent for 60 (event ")
    assert len([path for path in world.bc.paths() if path.startswith("v2/orders/60")]) == reads

    later = world.deliver(a, "store/order/statusUpdated", {"type": "order", "id": 60, "status": cancelled})
    finished = dict(realtime.drain_store(a, db=world.db, clients=world.clients))
    assert finished[later].reason.startswith("CANCELLATION sent")
    assert len([path for path in world.bc.paths() if path.startswith("v2/orders/60")]) > reads


def test_a_row_recorded_while_a_drain_works_is_its_next_batch_not_a_drain_of_its_own(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = world.stores
    first = world.customer(a, 1)
    inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=first, store_id=a)])
    huey.storage.dequeue()  # a worker takes the drain's message
    process = realtime._process_batch
    arrived: list[int] = []

    def process_then_receive(*args: Any, **kwargs: Any) -> list[tuple[int, Any]]:
        finished = process(*args, **kwargs)
        if not arrived:  # a delivery recorded while the first batch is worked on
            arrived.append(world.customer(a, 2))
            inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=arrived[0], store_id=a)])
        return finished

    monkeypatch.setattr(realtime, "_process_batch", process_then_receive)
    finished = realtime.drain_store(a, db=world.db, clients=world.clients)

    assert [delivery_id for delivery_id, _ in finished] == [first, *arrived]
    assert world.status(arrived[0]) == "done"
    assert world.queued_drains() == []  # the store's mark was set: no message for the second row
    inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=first, store_id=a)])
    assert world.queued_drains() == [a]  # the drain ended: the next arrival queues one


def test_a_drain_looks_once_more_only_when_a_row_arrived_during_its_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = world.stores
    claims: list[int] = []
    claim = realtime.claim_store_batch

    def counted_claim(*args: Any, **kwargs: Any) -> Any:
        claims.append(args[1])
        return claim(*args, **kwargs)

    monkeypatch.setattr(realtime, "claim_store_batch", counted_claim)
    first = world.customer(a, 1)
    inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=first, store_id=a)])
    huey.storage.dequeue()
    # A delivery recorded after the message was taken but before the claim: the claim takes it.
    inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=first, store_id=a)])

    assert [d for d, _ in realtime.drain_store(a, db=world.db, clients=world.clients)] == [first]
    assert claims == [a]  # nothing arrived during the batch: no second claim
    assert world.status(first) == "done"
    second = world.customer(a, 2)
    inbox.enqueue_accepted([inbox.Accepted(200, "accepted", delivery_id=second, store_id=a)])
    assert world.queued_drains() == [a]  # the drain ended: the next arrival queues one


def test_a_drain_started_while_another_of_its_store_works_here_leaves_the_rows_to_its_last_look(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where no mark holds back the message (external workers on the embedded queue), the second
    # drain still costs no claim: the running drain's last look takes the row.
    a, _ = world.stores
    first = world.customer(a, 1)
    process = realtime._process_batch
    arrived: list[int] = []
    second_drain: list[list[tuple[int, Any]]] = []

    def process_then_receive(*args: Any, **kwargs: Any) -> list[tuple[int, Any]]:
        finished = process(*args, **kwargs)
        if not arrived:
            arrived.append(world.customer(a, 2))
            second_drain.append(realtime.drain_store(a, db=world.db, clients=world.clients))
        return finished

    monkeypatch.setattr(realtime, "_process_batch", process_then_receive)
    finished = realtime.drain_store(a, db=world.db, clients=world.clients)

    assert second_drain == [[]]
    assert [delivery_id for delivery_id, _ in finished] == [first, *arrived]
    assert realtime.drain_store(a, db=world.db, clients=world.clients) == []  # the next drain runs
