"""The engine for queued rows: claim once, retry schedule, outcome table, sweep, pause and resume."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from realtime_harness import FakeSalesmanagoPort
from sqlalchemy import select, update

from smbc.consent.models import ConsentWriteBack
from smbc.consent.write_back import record_write_back
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import Outcome, RemoteCallError, Service
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine import queue
from smbc.engine.context import Result, RowStatus
from smbc.engine.pausing import PauseReason, pause_reason_for, pause_store, resume_store
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.clients import Clients
from smbc.realtime.models import WebhookDelivery


class Engine:
    def __init__(self, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db: Database = init_runtime(settings, migrate=True).db
        self.clock = clock
        self.enqueued: list[int] = []
        monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
        with self.db.session() as s:
            store = Store(hash="eng123", access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            self.store_id = store.id
        self._n = 0

    def deliver(self) -> int:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db,
            self.store_id,
            "store/customer/updated",
            {"id": self._n},
            created_at=1_700_000_000 + self._n,
            source="webhook",
        )
        assert delivery_id is not None
        return delivery_id

    def row(self, delivery_id: int) -> WebhookDelivery:
        with self.db.session() as s:
            row = s.get(WebhookDelivery, delivery_id)
            assert row is not None
            s.expunge(row)
            return row

    def kind(self) -> queue.QueueKind:
        """The deliveries' queue with an enqueue that only records (the message is "lost")."""
        return queue.QueueKind("test_deliveries", realtime.due_delivery_ids, self.enqueued.append)


@pytest.fixture
def engine(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield Engine(backend_settings, clock, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()


def test_one_worker_claims_a_row_however_many_race_for_it(engine: Engine) -> None:
    delivery_id = engine.deliver()
    now = engine.clock.now()
    start = threading.Barrier(8)
    won: list[bool] = []

    def worker() -> None:
        start.wait()
        with engine.db.session() as s:
            won.append(queue.claim(s, WebhookDelivery, delivery_id, now))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 7 + [True]
    row = engine.row(delivery_id)
    assert (row.status, row.attempts, row.locked_at) == (RowStatus.PROCESSING, 1, now)


def test_a_row_not_yet_due_is_not_claimed(engine: Engine) -> None:
    delivery_id = engine.deliver()
    later = engine.clock.now() + timedelta(minutes=5)
    with engine.db.session() as s:
        s.get(WebhookDelivery, delivery_id).next_attempt_at = later  # type: ignore[union-attr]
    with engine.db.session() as s:
        assert not queue.claim(s, WebhookDelivery, delivery_id, engine.clock.now())
    with engine.db.session() as s:
        assert queue.claim(s, WebhookDelivery, delivery_id, later)


@pytest.mark.parametrize(
    "policy", [queue.DEFAULT_RETRY, queue.RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=10))]
)
def test_retry_schedule_stays_within_its_bounds(policy: queue.RetryPolicy) -> None:
    rng = random.Random(7)
    for attempts in range(1, 20):
        ceiling = min(policy.cap, policy.base * 2 ** (attempts - 1))
        for _ in range(50):
            delay = policy.delay(attempts, rng)
            assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(40, rng) <= policy.cap  # no overflow, however many attempts


def test_default_retry_schedule_is_documented() -> None:
    policy = queue.DEFAULT_RETRY
    assert (policy.base, policy.cap, policy.give_up_after) == (
        timedelta(seconds=30),
        timedelta(hours=2),
        timedelta(hours=24),
    )


def test_a_service_asking_for_a_longer_wait_is_obeyed_and_exact_waits_are_exact() -> None:
    policy = queue.DEFAULT_RETRY
    assert policy.wait(1, retry_after=600.0) == timedelta(seconds=600)
    assert policy.wait(20, retry_after=1.0, exact=True) == timedelta(seconds=1)
    assert timedelta(seconds=15) <= policy.wait(1) <= timedelta(seconds=30)


def test_every_outcome_has_an_action() -> None:
    assert set(queue.OUTCOME_ACTIONS) == set(Outcome)
    assert queue.OUTCOME_ACTIONS[Outcome.INVALID] is queue.Action.FAIL  # a 4xx is never retried
    assert queue.OUTCOME_ACTIONS[Outcome.IGNORED] is queue.Action.SKIP
    assert queue.OUTCOME_ACTIONS[Outcome.CREDENTIALS] is queue.Action.WAIT
    assert (
        queue.OUTCOME_ACTIONS[Outcome.RETRY]
        is queue.OUTCOME_ACTIONS[Outcome.RATE_LIMITED]
        is queue.Action.RETRY
    )


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        (Outcome.RETRY, RowStatus.PENDING, ""),
        (Outcome.RATE_LIMITED, RowStatus.PENDING, ""),
        (Outcome.CREDENTIALS, RowStatus.WAITING, "sync paused: credentials"),
        (Outcome.INVALID, RowStatus.FAILED, "refused"),
        (Outcome.IGNORED, RowStatus.SKIPPED, "gone"),
    ],
)
def test_a_failed_call_becomes_the_tables_result(outcome: Outcome, status: RowStatus, reason: str) -> None:
    result = queue.result_for(RemoteCallError(outcome, "gone", retry_after=12.0))
    assert (result.status, result.reason) == (status, reason)
    if status is RowStatus.PENDING:
        assert (result.error, result.retry_after) == ("gone", 12.0)


def test_finish_schedules_a_retry_then_gives_up_after_the_policy_window(engine: Engine) -> None:
    delivery_id = engine.deliver()
    policy = queue.RetryPolicy(give_up_after=timedelta(hours=1))
    for hours, expected in ((0.5, RowStatus.PENDING), (1.0, RowStatus.FAILED)):
        engine.clock.advance(hours * 3600 - (0 if expected is RowStatus.PENDING else 1800))
        now = engine.clock.now()
        with engine.db.session() as s:
            assert queue.claim(s, WebhookDelivery, delivery_id, now + timedelta(days=1))
        row = engine.row(delivery_id)
        with engine.db.session() as s:
            written = queue.finish(s, WebhookDelivery, row, Result.retry("503"), now, policy)
        after = engine.row(delivery_id)
        assert (written.status, after.status, after.locked_at, after.last_error) == (
            expected,
            expected,
            None,
            "503",
        )
        if expected is RowStatus.PENDING:
            assert now + timedelta(seconds=15) <= after.next_attempt_at <= now + timedelta(seconds=60)
            assert after.processed_at is None
        else:
            assert after.reason == "gave up after 1 h of retries"


def test_claim_store_rows_takes_the_stores_oldest_due_rows_once(engine: Engine) -> None:
    ids = [engine.deliver() for _ in range(5)]
    with engine.db.session() as s:
        other = Store(hash="other1", access_token="token", webhook_secret="x", sites=[])
        s.add(other)
        s.flush()
        s.add(WebhookDelivery(store_id=other.id, scope="store/customer/updated", hash="h", created_at=1))
        s.execute(  # not due yet
            update(WebhookDelivery)
            .where(WebhookDelivery.id == ids[1])
            .values(next_attempt_at=engine.clock.now() + timedelta(minutes=1))
        )
    now = engine.clock.now()
    with engine.db.session() as s:
        first = queue.claim_store_rows(s, WebhookDelivery, engine.store_id, now, 3)
        s.expunge_all()
    with engine.db.session() as s:
        rest = queue.claim_store_rows(s, WebhookDelivery, engine.store_id, now, 3)
    assert [row.id for row in first] == [ids[0], ids[2], ids[3]]
    assert [(row.status, row.attempts, row.locked_at) for row in first] == [("processing", 1, now)] * 3
    assert first[0].scope == "store/customer/updated"
    assert [row.id for row in rest] == [ids[4]]
    assert {ids[0], ids[2], ids[3], ids[4]} <= queue.LEASES.held(queue.queued_lease(WebhookDelivery))
    assert engine.row(ids[1]).status == RowStatus.PENDING


def test_finish_batch_writes_each_rows_own_result_as_finish_does(engine: Engine) -> None:
    ids = [engine.deliver() for _ in range(5)]
    now = engine.clock.now()
    with engine.db.session() as s:
        assert all(queue.claim(s, WebhookDelivery, i, now) for i in ids)
    for _ in range(queue.UNEXPECTED_ERROR_ATTEMPTS - 1):  # the last row has been tried 5 times
        with engine.db.session() as s:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == ids[4])
                .values(attempts=WebhookDelivery.attempts + 1)
            )
    rows = [engine.row(i) for i in ids]
    results = [
        Result.done("sent"),
        Result.retry("503"),
        Result.done("sent too"),
        Result.waiting(queue.PAUSED_FOR_CREDENTIALS, "401"),
        queue.result_for_unexpected(KeyError("id")),
    ]
    with engine.db.session() as s:
        written = queue.finish_batch(s, WebhookDelivery, list(zip(rows, results, strict=True)), now)
    after = [engine.row(i) for i in ids]
    assert [r.status for r in written] == [s.status for s in after]
    assert [(a.status, a.reason, a.locked_at) for a in after] == [
        ("done", "sent", None),
        ("pending", "", None),
        ("done", "sent too", None),
        ("waiting", queue.PAUSED_FOR_CREDENTIALS, None),
        ("failed", "stopped after 5 attempts: internal error: KeyError: 'id'", None),
    ]
    assert [a.processed_at is not None for a in after] == [True, False, True, False, True]
    assert [a.last_error for a in after] == ["", "503", "", "401", "internal error: KeyError: 'id'"]
    assert now + timedelta(seconds=15) <= after[1].next_attempt_at <= now + timedelta(seconds=30)
    assert queue.LEASES.held(queue.queued_lease(WebhookDelivery)).isdisjoint(ids)


def test_the_sweep_finds_a_row_whose_queue_message_was_lost(engine: Engine) -> None:
    delivery_id = engine.deliver()  # its message never reaches a worker
    kind = engine.kind()
    assert queue.sweep(kind, engine.db, engine.clock.now()) == 0  # fresh: the message may be on its way
    engine.clock.advance(queue.NEVER_TRIED_GRACE.total_seconds())
    assert queue.sweep(kind, engine.db, engine.clock.now()) == 1
    assert engine.enqueued == [delivery_id]


def test_the_sweep_frees_a_row_held_by_a_worker_that_died(engine: Engine) -> None:
    delivery_id = engine.deliver()
    with engine.db.session() as s:
        assert queue.claim(s, WebhookDelivery, delivery_id, engine.clock.now())
    queue.LEASES.release(queue.queued_lease(WebhookDelivery), [delivery_id])  # the worker died
    kind = engine.kind()
    engine.clock.advance(queue.lease().total_seconds() - 1)
    assert queue.sweep(kind, engine.db, engine.clock.now()) == 0  # still within its lease
    engine.clock.advance(2)
    assert queue.sweep(kind, engine.db, engine.clock.now()) == 1
    assert engine.row(delivery_id).status == RowStatus.PENDING


def test_pause_reason_is_whose_credentials_were_refused() -> None:
    bigcommerce = RemoteCallError(
        Outcome.CREDENTIALS, "store x has no BigCommerce access token", service=Service.BIGCOMMERCE
    )
    salesmanago = RemoteCallError(
        Outcome.CREDENTIALS, "BigCommerce-looking text", service=Service.SALESMANAGO
    )
    assert pause_reason_for(bigcommerce) is PauseReason.BIGCOMMERCE_CREDENTIALS
    assert pause_reason_for(salesmanago) is PauseReason.SALESMANAGO_CREDENTIALS


def test_a_missing_bigcommerce_token_pauses_the_store_for_bigcommerce_credentials(engine: Engine) -> None:
    with engine.db.session() as s:
        s.get(Store, engine.store_id).access_token = None  # type: ignore[union-attr]
    delivery_id = engine.deliver()
    clients = Clients(salesmanago=lambda session, store, calls: FakeSalesmanagoPort())
    (result,) = dict(realtime.process_delivery(delivery_id, db=engine.db, clients=clients)).values()
    assert result.reason == "sync paused: bigcommerce_credentials"
    with engine.db.session() as s:
        assert s.get(Store, engine.store_id).sync_paused_reason == PauseReason.BIGCOMMERCE_CREDENTIALS  # type: ignore[union-attr]
    assert engine.row(delivery_id).status == RowStatus.WAITING


def test_a_store_paused_first_for_one_reason_keeps_it(engine: Engine) -> None:
    with engine.db.session() as s:
        assert pause_store(s, engine.store_id, PauseReason.LOGGED_OUT)
        assert not pause_store(s, engine.store_id, PauseReason.BIGCOMMERCE_CREDENTIALS)
    with engine.db.session() as s:
        assert s.get(Store, engine.store_id).sync_paused_reason == PauseReason.LOGGED_OUT  # type: ignore[union-attr]


def test_resuming_wakes_the_waiting_rows_of_every_queue_and_sweeps_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    swept: list[tuple[str, int]] = []

    def recorder(name: str) -> Any:
        return lambda row_id: swept.append((name, row_id))

    delivery_id = engine.deliver()
    with engine.db.session() as s:
        write_back_id = record_write_back(s, engine.store_id, "a@example.com", "opt_in", source="callback").id
        pause_store(s, engine.store_id, PauseReason.SALESMANAGO_CREDENTIALS)
        for model, row_id in ((WebhookDelivery, delivery_id), (ConsentWriteBack, write_back_id)):
            s.get(model, row_id).status = RowStatus.WAITING  # type: ignore[attr-defined]
    kinds = {
        name: queue.QueueKind(name, kind.due_ids, recorder(name), wake=kind.wake)
        for name, kind in queue.QUEUES.items()
    }
    monkeypatch.setattr(queue, "QUEUES", kinds)
    monkeypatch.setattr("smbc.engine.pausing.QUEUES", kinds)
    assert resume_store(engine.store_id, db=engine.db, reasons=(PauseReason.BIGCOMMERCE_CREDENTIALS,)) == 0
    assert resume_store(engine.store_id, db=engine.db) == 2
    assert sorted(swept) == [("consent_write_backs", write_back_id), ("webhook_deliveries", delivery_id)]
    with engine.db.session() as s:
        statuses = {
            s.scalar(select(model.status).where(model.id == row_id))
            for model, row_id in ((WebhookDelivery, delivery_id), (ConsentWriteBack, write_back_id))
        }
    assert statuses == {RowStatus.PENDING}
