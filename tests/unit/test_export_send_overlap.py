"""The events export sends a batch while it plans the next: the order of the batches, their errors
and an early stop stay as if it did one after the other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from smbc.export import events
from smbc.export.plans import OrderPlan

WAIT_S = 5.0  # a bound on a wait that the code under test ends at once when it works


class FakeJob:
    upserts = None
    batch_size = 400


class Pipeline:
    """Stands in for the planning (`buyers_ahead` over the pages) and for `_send_events`."""

    def __init__(self, batches: int, *, send_fails_at: int | None = None, plan_fails_at: int | None = None):
        self.batches = batches
        self.send_fails_at = send_fails_at
        self.plan_fails_at = plan_fails_at
        self.planning = {n: threading.Event() for n in range(1, batches + 1)}
        self.sent: list[int] = []
        self.overlapped: list[bool] = []
        self.send_threads: set[str] = set()

    def plan(self, job: Any, plans: Any) -> Iterator[tuple[list[OrderPlan], set[str]]]:
        for n in range(1, self.batches + 1):
            self.planning[n].set()
            if n == self.plan_fails_at:
                raise RuntimeError(f"page of batch {n} could not be read")
            yield [OrderPlan(n)], set()

    def send(self, job: Any, batch: list[OrderPlan], ahead: set[str]) -> Any:
        n = batch[0].order_id
        self.send_threads.add(threading.current_thread().name)
        if n + 1 in self.planning:  # the next batch is planned while this one is on its way
            self.overlapped.append(self.planning[n + 1].wait(WAIT_S))
        if n == self.send_fails_at:
            raise RuntimeError(f"batch {n} refused")
        self.sent.append(n)
        return f"export after batch {n}"


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(batches: int, **failures: int) -> Pipeline:
        fake = Pipeline(batches, **failures)
        monkeypatch.setattr(events, "orders_left", lambda job: None)
        monkeypatch.setattr(events, "_order_plans", lambda job, left: iter(()))
        monkeypatch.setattr(events, "buyers_ahead", fake.plan)
        monkeypatch.setattr(events, "_send_events", fake.send)
        monkeypatch.setattr(events, "forget_refunds", lambda job: None)
        return fake

    return make


def test_each_batch_is_sent_while_the_next_is_planned_and_yielded_in_order(pipeline: Any) -> None:
    fake = pipeline(4)
    assert list(events.event_batches(FakeJob())) == [f"export after batch {n}" for n in (1, 2, 3, 4)]
    assert fake.sent == [1, 2, 3, 4]
    assert fake.overlapped == [True, True, True]
    assert fake.send_threads and all(name.startswith("export-send") for name in fake.send_threads)


def test_a_failed_send_is_raised_and_the_batch_planned_meanwhile_is_not_sent(pipeline: Any) -> None:
    fake = pipeline(4, send_fails_at=2)
    batches = events.event_batches(FakeJob())
    assert next(batches) == "export after batch 1"
    with pytest.raises(RuntimeError, match="batch 2 refused"):
        next(batches)
    assert fake.sent == [1]


def test_a_planning_error_comes_after_the_batch_being_sent_is_recorded(pipeline: Any) -> None:
    fake = pipeline(4, plan_fails_at=3)
    batches = events.event_batches(FakeJob())
    assert [next(batches), next(batches)] == ["export after batch 1", "export after batch 2"]
    with pytest.raises(RuntimeError, match="page of batch 3"):
        next(batches)
    assert fake.sent == [1, 2]


def test_stopping_after_a_batch_leaves_no_send_behind(pipeline: Any) -> None:
    fake = pipeline(4)
    batches = events.event_batches(FakeJob())
    assert next(batches) == "export after batch 1"
    batches.close()  # a time slice ended, or the export was cancelled
    assert fake.sent == [1]
