"""Bounded storage: a store's history grown past the retention window comes back down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store_history import StoreHistory, order, store_history

from smbc.consent.models import ConsentHistoryEntry
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.engine.ledgers import SentEvent, SyncedContact
from smbc.realtime.models import WebhookDelivery
from smbc.retention.pruning import prune_history

ORDERS_PER_DAY = 3
DAY = 86_400


@pytest.fixture
def history(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreHistory]:
    with store_history(backend_settings, monkeypatch) as opened:
        yield opened


def _grow(history: StoreHistory, days: int, first_order: int) -> int:
    """`days` days of orders, each processed (a PURCHASE sent); returns the next order id."""
    order_id = first_order
    for _ in range(days):
        for _ in range(ORDERS_PER_DAY):
            buyer = f"buyer{order_id}@example.com"
            history.bc.orders[order_id] = order(
                order_id, buyer, is_email_opt_in=True
            )  # newsletter box ticked
            assert history.process("store/order/created", {"type": "order", "id": order_id}).status == "done"
            order_id += 1
        history.clock.advance(DAY)
    return order_id


def test_history_past_the_window_is_pruned_and_ledgers_and_pending_work_stay(history: StoreHistory) -> None:
    pending = history.deliver("store/order/created", {"type": "order", "id": 999})  # never processed
    next_order = _grow(history, 40, 1)
    deliveries_before = history.count(WebhookDelivery)
    calls_before = history.count(RemoteCall)
    assert deliveries_before == 40 * ORDERS_PER_DAY + 1

    out_of_time = prune_history(history.db, retention_days=30, budget_s=0)  # goes on at the next run
    assert not out_of_time.complete and history.count(WebhookDelivery) == deliveries_before
    report = prune_history(history.db, retention_days=30, batch=7)  # small batches, many of them

    assert report.complete
    assert history.count(WebhookDelivery) == 30 * ORDERS_PER_DAY + 1
    assert report.deliveries == 10 * ORDERS_PER_DAY
    assert history.count(RemoteCall) < calls_before and report.calls == calls_before - history.count(
        RemoteCall
    )
    with history.db.session() as s:
        assert s.get(WebhookDelivery, pending) is not None  # still to do: never pruned
    # The ledgers are whole: every PURCHASE ever sent, every contact.
    assert history.count(SentEvent, SentEvent.state == "sent") == 40 * ORDERS_PER_DAY
    assert history.count(SyncedContact) == 40 * ORDERS_PER_DAY
    assert history.count(ConsentHistoryEntry) == 40 * ORDERS_PER_DAY  # evidence of consent: kept

    # A pruned order delivered again is still not sent twice.
    sent = len(history.sm.named("integration"))
    assert history.process("store/order/updated", {"type": "order", "id": 1}).status == "done"
    assert len(history.sm.named("integration")) == sent

    # Steady state: another 10 days, pruned, the table holds the window again.
    _grow(history, 10, next_order)
    prune_history(history.db, retention_days=30)
    assert history.count(WebhookDelivery) == 30 * ORDERS_PER_DAY + 1 + 1  # + the re-delivery above
