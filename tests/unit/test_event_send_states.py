"""An event is sent to SALESmanago once, even when its send is interrupted: the ledger's states
(claimed -> sending -> sent, or unconfirmed), a read timeout against the fake SALESmanago, a worker
killed between SALESmanago's answer and the ledger's record, and sending an unconfirmed event again
on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, save_settings
from sqlalchemy import select
from test_realtime_processing import order

from smbc.actions.deliveries import resend_unconfirmed
from smbc.activity.timeline import entity_timeline
from smbc.bigcommerce import client as bc_client
from smbc.core.clock import FakeClock, get_clock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine import queue
from smbc.engine.context import Result, RowStatus
from smbc.engine.ledgers import (
    INTERRUPTED,
    SentEvent,
    claim_event,
    event_sent,
    mark_sending,
    mark_sent,
    mark_unconfirmed_event,
    release_event,
    release_unconfirmed_events,
)
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.clients import Clients
from smbc.realtime.models import WebhookDelivery
from smbc.salesmanago.client import SalesmanagoClient, SalesmanagoCredentials, record_calls_into
from smbc.sandbox.salesmanago import FakeSalesmanago
from smbc.settings.store_settings import StoreSettings
from support import wait_for

STORE_HASH = "abc123"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_store(db: Database) -> int:
    with db.session() as s:
        store = Store(hash=STORE_HASH, access_token="token", webhook_secret="x", sites=[])
        s.add(store)
        s.flush()
        return store.id


# -- the ledger's states -----------------------------------------------------------------------------


@pytest.fixture
def ledger(backend_settings: Settings) -> Iterator[tuple[Database, int]]:
    runtime = init_runtime(backend_settings, migrate=True)
    try:
        yield runtime.db, add_store(runtime.db)
    finally:
        close_runtime()


def state(db: Database, store_id: int, key: str = "50") -> str | None:
    with db.session() as s:
        return s.scalar(select(SentEvent.state).where(SentEvent.store_id == store_id, SentEvent.key == key))


def claim(db: Database, store_id: int, owner: str, now: datetime = NOW) -> str | None:
    return claim_event(db, store_id, "PURCHASE", "50", owner=owner, order_id=50, now=now)


def test_a_claim_goes_from_claimed_to_sending_to_sent(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert state(db, store_id) == "claimed"
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    assert state(db, store_id) == "sending"
    with db.session() as s:
        assert not event_sent(s, store_id, "PURCHASE", "50")  # not yet: it may still fail
        mark_sent(s, store_id, "PURCHASE", "50", event_id="e-1", contact_id="c-1", email="a@b.c", now=NOW)
    assert state(db, store_id) == "sent"
    assert claim(db, store_id, "delivery:2") == "PURCHASE already sent for 50 (event e-1)"


def test_a_claim_taken_over_before_its_request_left_is_sent_by_the_new_holder(
    ledger: tuple[Database, int],
) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert claim(db, store_id, "delivery:1") is None  # the same delivery, taken over after a kill
    assert claim(db, store_id, "delivery:2") == "PURCHASE for 50 is being sent by delivery:1"
    assert claim(db, store_id, "delivery:2", now=NOW + queue.STALE_LOCK + timedelta(seconds=1)) is None
    # The first holder, alive after all, finds its claim gone and sends nothing.
    assert not mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:2")


def test_a_claim_taken_over_while_sending_is_recorded_unconfirmed_and_not_sent(
    ledger: tuple[Database, int],
) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    # Another delivery while the first one's request is out: it waits for it, it does not send.
    assert claim(db, store_id, "delivery:2") == "PURCHASE for 50 is being sent by delivery:1"
    # The first delivery taken over after its worker died: SALESmanago may have the event.
    assert claim(db, store_id, "delivery:1") == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
    assert state(db, store_id) == "unconfirmed"
    with db.session() as s:
        assert event_sent(s, store_id, "PURCHASE", "50")  # a CANCELLATION may follow it
    assert claim(db, store_id, "delivery:3") == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
    assert state(db, store_id) == "unconfirmed"


def test_a_dead_workers_stale_sending_claim_is_recorded_unconfirmed(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    later = NOW + queue.STALE_LOCK + timedelta(seconds=1)
    assert claim(db, store_id, "delivery:2", now=later) == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
    assert state(db, store_id) == "unconfirmed"


def test_a_send_that_never_arrived_gives_its_claim_back(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    release_event(db, store_id, "PURCHASE", "50", "delivery:2")  # not its claim: nothing changes
    assert state(db, store_id) == "sending"
    release_event(db, store_id, "PURCHASE", "50", "delivery:1")
    assert state(db, store_id) is None
    assert claim(db, store_id, "delivery:2") is None


def test_a_timed_out_send_is_unconfirmed_until_released_on_purpose(ledger: tuple[Database, int]) -> None:
    db, store_id = ledger
    assert claim(db, store_id, "delivery:1") is None
    assert mark_sending(db, store_id, "PURCHASE", "50", "delivery:1")
    reason = mark_unconfirmed_event(db, store_id, "PURCHASE", "50", "delivery:1", NOW)
    assert reason == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
    release_event(db, store_id, "PURCHASE", "50", "delivery:1")  # only a send that never arrived
    assert state(db, store_id) == "unconfirmed"
    with db.session() as s:
        assert release_unconfirmed_events(s, store_id, "delivery:2") == 0
        assert release_unconfirmed_events(s, store_id, "delivery:1") == 1
    assert claim(db, store_id, "delivery:1") is None


# -- processing: the real SALESmanago client against the fake ----------------------------------------


class World:
    """Real-time processing of one store: the small BigCommerce, and either the fake SALESmanago
    through the real client (a short read timeout) or a port handed in."""

    def __init__(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runtime = init_runtime(settings, migrate=True)
        self.db = self.runtime.db
        self.store_id = add_store(self.db)
        save_settings(self.db, self.store_id, StoreSettings(contact_owner="owner@shop.test"))
        self.bc = MiniBigCommerce()
        self.bc.orders[50] = order(50)
        self.clients: Clients = fake_clients(self.bc, FakeSalesmanagoPort())
        self.enqueued: list[int] = []
        monkeypatch.setattr(realtime, "enqueue_delivery", self.enqueued.append)
        self._n = 0

    def against(self, sm: FakeSalesmanago, url: str) -> None:
        credentials = SalesmanagoCredentials.from_api_secret(
            url, sm.NORMAL.client_id, sm.NORMAL.api_secret, owner=sm.NORMAL.email
        )
        http = httpx.Client(transport=httpx.MockTransport(self.bc.handler))
        self.clients = Clients(
            bigcommerce=lambda store, calls: bc_client.for_store(
                store, http=http, recorder=calls, context=calls.context
            ),
            salesmanago=lambda _credentials, store, calls: SalesmanagoClient(
                credentials,
                recorder=record_calls_into(calls, store.id),
                context=calls.context,
                timeout=httpx.Timeout(0.3, connect=5.0),
            ),
        )

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

    def run(self, delivery_id: int) -> Result:
        return dict(realtime.process_delivery(delivery_id, clients=self.clients))[delivery_id]

    def row(self, delivery_id: int) -> WebhookDelivery:
        with self.db.session() as s:
            row = s.get(WebhookDelivery, delivery_id)
            assert row is not None
            return row


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    try:
        yield World(settings, monkeypatch)
    finally:
        close_runtime()


@pytest.fixture
def sandbox_world(
    settings: Settings, fake_sm: tuple[FakeSalesmanago, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, FakeSalesmanago]]:
    sm, url = fake_sm
    try:
        w = World(settings.model_copy(update={"sm_endpoint_hosts": url}), monkeypatch)
        w.against(sm, url)
        yield w, sm
    finally:
        close_runtime()


def purchases(sm: FakeSalesmanago) -> list[dict[str, Any]]:
    return sm.events(sm.NORMAL.client_id, "PURCHASE")


def test_a_purchase_whose_answer_timed_out_is_sent_once_and_its_delivery_says_unconfirmed(
    sandbox_world: tuple[World, FakeSalesmanago],
) -> None:
    w, sm = sandbox_world
    sm.faults.latency_ms = 1500  # past the client's 0.3 s read timeout: the fake still stores it
    delivery_id = w.deliver()
    result = w.run(delivery_id)
    assert result.status is RowStatus.DONE and INTERRUPTED in result.reason, result
    wait_for(lambda: len(purchases(sm)) == 1, "the fake to store the PURCHASE it was answering late")
    sm.faults.latency_ms = 0
    # One attempt only (no second one within the call), recorded with the delivery.
    with w.db.session() as s:
        sends = s.scalars(select(SentEvent)).all()
        assert [(e.kind, e.state, e.claimed_by) for e in sends] == [
            ("PURCHASE", "unconfirmed", f"delivery:{delivery_id}")
        ]

    # Later hooks about the order send nothing: it may be in SALESmanago already.
    again = w.deliver("store/order/updated")
    assert w.run(again).reason == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
    assert len(purchases(sm)) == 1

    # The Activity (`smbc activity --order 50` and the tab's search) says what happened and what to do.
    entries = entity_timeline(w.db, STORE_HASH, "order", "50").entries
    [ledger] = [e for e in entries if e.kind == "ledger" and e.what.startswith("PURCHASE")]
    assert ledger.status == "unconfirmed" and INTERRUPTED in ledger.reason
    assert f"smbc deliveries resend {delivery_id}" in ledger.reason
    [first] = [e for e in entries if e.ref == f"delivery:{delivery_id}"]
    assert INTERRUPTED in first.reason

    # The merchant checked SALESmanago lacks it and sends it again, on purpose.
    assert resend_unconfirmed(w.db, STORE_HASH, again) == 0  # it holds nothing: nothing changes
    assert resend_unconfirmed(w.db, STORE_HASH, delivery_id) == 1
    assert delivery_id in w.enqueued and w.row(delivery_id).status == RowStatus.PENDING.value
    assert w.run(delivery_id).reason.startswith("PURCHASE sent (event ")
    assert len(purchases(sm)) == 2
    assert resend_unconfirmed(w.db, STORE_HASH, delivery_id) == 0  # sent now: nothing to send again


def test_a_purchase_answered_with_errors_keeps_its_claim_and_is_sent_on_retry(
    sandbox_world: tuple[World, FakeSalesmanago],
) -> None:
    w, sm = sandbox_world
    sm.faults.fail_next(3, 500)  # every attempt of the call answered: SALESmanago did not take it
    delivery_id = w.deliver()
    assert w.run(delivery_id).status is RowStatus.PENDING
    with w.db.session() as s:
        # Held for its retry, back at claimed: it certainly did not arrive.
        assert [(e.state, e.claimed_by) for e in s.scalars(select(SentEvent))] == [
            ("claimed", f"delivery:{delivery_id}")
        ]
    # Another delivery about the order leaves it to the one retrying: one sender per contact in an outage.
    calls_before = len(sm.calls)
    other = w.run(w.deliver("store/order/statusUpdated"))
    assert (other.status, other.reason) == (
        RowStatus.DONE,
        f"PURCHASE for 50 is being sent by delivery:{delivery_id}",
    )
    assert len(sm.calls) == calls_before
    sm.faults.fail_next(1, 429)
    clock = get_clock()
    assert isinstance(clock, FakeClock)
    clock.set(w.row(delivery_id).next_attempt_at)
    assert w.run(delivery_id).reason.startswith("PURCHASE sent (event ")  # the 429 retried in the call
    assert len(purchases(sm)) == 1


class KilledAfterTheAnswer(FakeSalesmanagoPort):
    """SALESmanago takes the PURCHASE, then the worker dies before the ledger records it."""

    def integration_upsert(self, contact_payload: dict[str, Any], event: dict[str, Any]) -> tuple[str, str]:
        super().integration_upsert(contact_payload, event)
        raise KeyboardInterrupt("killed")  # what a kill -9 leaves: nothing after this runs


def test_a_worker_killed_between_the_answer_and_the_record_is_not_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        sm = KilledAfterTheAnswer()
        world.clients = fake_clients(world.bc, sm)
        delivery_id = world.deliver()
        with pytest.raises(KeyboardInterrupt):
            world.run(delivery_id)
        assert world.row(delivery_id).status == RowStatus.PROCESSING.value
        # Another worker takes the row over once its lease has run out, with the same ledger owner.
        queue.LEASES.release(queue.queued_lease(WebhookDelivery), [delivery_id])
        clock.advance(queue.lease().total_seconds() + 1)
        assert queue.reclaim_expired(world.db) == 1
        world.clients = fake_clients(world.bc, FakeSalesmanagoPort())
        result = world.run(delivery_id)
        assert result.status is RowStatus.DONE
        assert result.reason == f"PURCHASE for 50 unconfirmed: {INTERRUPTED}"
        assert len(sm.named("integration")) == 1  # sent once, by the worker that died
    finally:
        set_clock(previous)
