"""The health detail (queues, and per store: last delivery, hooks, credentials, monitoring code,
watermark, pause) and the gauges /metrics reads from it, on a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from smbc.account.models import SalesmanagoAccount
from smbc.activity.health import health_gauges, system_health
from smbc.core.clock import FakeClock
from smbc.core.config import Settings
from smbc.core.http_server import free_port
from smbc.core.metrics import Gauge
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.monitoring.models import MonitoringScript
from smbc.realtime.models import WebhookDelivery
from smbc.reconcile.models import ReconcileState
from smbc.stores.hooks import NEEDED_SCOPES


@pytest.fixture
def db(backend_settings: Settings, clock: FakeClock) -> Iterator[Database]:
    try:
        yield init_runtime(backend_settings, migrate=True).db
    finally:
        close_runtime()


def add_store(db: Database, store_hash: str, **fields: object) -> int:
    with db.session() as s:
        store = Store(hash=store_hash, info={"name": f"Shop {store_hash}"}, **fields)
        s.add(store)
        s.flush()
        return store.id


def connect(db: Database, store_id: int) -> None:
    with db.session() as s:
        s.add(
            SalesmanagoAccount(
                store_id=store_id,
                endpoint="https://app3.salesmanago.com",
                client_id="cid",
                api_key="key",
                sha="sha",
                login_email="owner@shop.test",
                auth_mode="login",
            )
        )


def deliver(db: Database, store_id: int, n: int, received_at: datetime, **fields: object) -> None:
    with db.session() as s:
        values: dict[str, object] = {"scope": "store/customer/updated", "status": "done", "source": "webhook"}
        values.update(fields)
        s.add(
            WebhookDelivery(
                store_id=store_id,
                hash=f"h{n}",
                created_at=1_700_000_000 + n,
                received_at=received_at,
                **values,
            )
        )


@pytest.fixture
def stores(db: Database, clock: FakeClock) -> dict[str, int]:
    """A healthy store, a paused one with trouble, one never checked, one whose hooks were repaired,
    and an uninstalled one (which the detail leaves out)."""
    now = clock.now()
    good = add_store(db, "good")
    connect(db, good)
    paused = add_store(db, "paused", sync_paused_reason="credentials")
    connect(db, paused)
    fresh = add_store(db, "fresh")
    fixed = add_store(db, "fixed")
    connect(db, fixed)
    add_store(db, "gone", status="uninstalled", sync_paused_reason="uninstalled")
    with db.session() as s:
        s.add(MonitoringScript(store_id=good, channel_id=1, script_uuid="u1", content_hash="x"))
        s.add(MonitoringScript(store_id=fixed, channel_id=2, script_uuid="u2", content_hash="x"))
        ten_minutes_ago = now - timedelta(minutes=10)
        s.add(
            ReconcileState(
                store_id=good, watermark=ten_minutes_ago, last_run_at=ten_minutes_ago, last_result={}
            )
        )
        s.add(
            ReconcileState(
                store_id=paused,
                watermark=now - timedelta(hours=3),
                last_run_at=ten_minutes_ago,
                last_error="BigCommerce GET /v3/hooks: timeout",
            )
        )
        s.add(
            ReconcileState(
                store_id=fixed,
                watermark=ten_minutes_ago,
                last_run_at=ten_minutes_ago,
                last_result={
                    "hooks_created": ["store/cart/created"],
                    "hooks_repaired": ["store/order/created"],
                },
            )
        )
    deliver(db, good, 1, now - timedelta(minutes=5))
    deliver(db, good, 2, now - timedelta(minutes=1), source="reconcile")  # not a webhook received
    deliver(db, paused, 3, now - timedelta(hours=1), status="waiting")
    deliver(db, paused, 4, now - timedelta(hours=1), status="waiting")
    deliver(db, fixed, 5, now - timedelta(minutes=10), status="pending")  # due, never picked up
    deliver(db, fixed, 6, now, status="pending", next_attempt_at=now + timedelta(minutes=2))  # a retry later
    return {"good": good, "paused": paused, "fresh": fresh, "fixed": fixed}


def test_each_installed_store_with_what_to_check_first(
    db: Database, stores: dict[str, int], clock: FakeClock
) -> None:
    now = clock.now()
    health = system_health(db)
    by_hash = {store.hash: store for store in health.stores}
    assert list(by_hash) == ["fixed", "fresh", "good", "paused"]  # uninstalled "gone" left out

    good = by_hash["good"]
    assert good.problems == []
    assert good.name == "Shop good"
    assert good.last_delivery_at == now - timedelta(minutes=5)  # reconciliation's own row is not "received"
    assert (good.hooks.state, good.hooks.checked_at, good.hooks.expected) == (
        "active",
        now - timedelta(minutes=10),
        len(NEEDED_SCOPES),
    )
    assert (good.salesmanago_credentials, good.monitoring, good.monitoring_channels) == (
        "valid",
        "installed",
        [1],
    )
    assert good.watermark_age_s == 600
    assert good.paused_reasons == []

    paused = by_hash["paused"]
    assert paused.salesmanago_credentials == "refused"
    assert paused.paused_reasons == ["credentials"]
    assert paused.hooks.state == "check_failed"
    assert paused.deliveries_open == {"waiting": 2}
    assert paused.problems == [
        "sync paused: credentials",
        "SALESmanago refused the stored credentials: log in again",
        "webhooks could not be checked: BigCommerce GET /v3/hooks: timeout",
        "monitoring code is not installed on any storefront",
        "reconciliation is behind: watermark 180 min old",
        "2 deliveries wait for the pause to end",
    ]

    fresh = by_hash["fresh"]
    assert (fresh.salesmanago_credentials, fresh.monitoring, fresh.hooks.state) == (
        "not_connected",
        "not_connected",
        "not_checked",
    )
    assert fresh.last_delivery_at is None and fresh.watermark is None

    fixed = by_hash["fixed"]
    assert fixed.hooks.state == "repaired"
    assert fixed.hooks.repaired == ["store/cart/created", "store/order/created"]
    assert fixed.deliveries_open == {"pending": 2}
    assert fixed.oldest_due_age_s == 600


def test_queue_depth_and_the_oldest_due_row(db: Database, stores: dict[str, int], clock: FakeClock) -> None:
    deliveries = next(q for q in system_health(db, stores=False).queues if q.queue == "webhook_deliveries")
    assert (deliveries.due, deliveries.scheduled, deliveries.processing, deliveries.waiting) == (1, 1, 0, 2)
    assert deliveries.depth == 4
    assert deliveries.oldest_due_age_s == 600

    clock.advance(180)  # the retry's time has come: it is due too, the oldest still the same row
    health = system_health(db, stores=False)
    deliveries = next(q for q in health.queues if q.queue == "webhook_deliveries")
    assert (deliveries.due, deliveries.scheduled, deliveries.oldest_due_age_s) == (2, 0, 780)
    assert health.problems == ["webhook_deliveries: the oldest due row has waited 780 s for a worker"]
    assert {q.queue for q in health.queues} >= {
        "webhook_deliveries",
        "consent_write_backs",
        "uninstall_tasks",
    }


def test_one_store_alone_and_an_unknown_one(db: Database, stores: dict[str, int]) -> None:
    health = system_health(db, store_hash="good")
    assert [store.hash for store in health.stores] == ["good"]
    answer = health.as_json()
    assert answer["stores"][0]["hooks"]["state"] == "active"
    assert answer["queues"][0]["depth"] >= 0
    assert isinstance(answer["checked_at"], str)
    with pytest.raises(LookupError):
        system_health(db, store_hash="nope")


def values(gauges: list[Gauge]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(g.name, tuple(sorted(g.labels.items()))): g.value for g in gauges}


def test_gauges_for_the_metrics(db: Database, stores: dict[str, int]) -> None:
    gauges = values(health_gauges(db))
    assert gauges[("smbc_database_up", ())] == 1
    assert gauges[("smbc_queue_up", ())] == 1
    assert gauges[("smbc_stores_installed", ())] == 4
    assert gauges[("smbc_stores_paused", (("reason", "credentials"),))] == 1
    assert gauges[("smbc_stores_paused", (("reason", "logged_out"),))] == 0  # every reason, zero too
    assert gauges[("smbc_stores_paused", (("reason", "uninstalled"),))] == 0  # uninstalled stores not counted
    assert gauges[("smbc_queue_rows", (("queue", "webhook_deliveries"), ("state", "due")))] == 1
    assert gauges[("smbc_queue_rows", (("queue", "webhook_deliveries"), ("state", "waiting")))] == 2
    assert gauges[("smbc_queue_oldest_due_age_seconds", (("queue", "webhook_deliveries"),))] == 600
    assert not any("store" in dict(labels) for _, labels in gauges)  # no per-store series


def test_an_unreachable_database_is_a_gauge_not_a_failed_scrape(settings: Settings) -> None:
    broken = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        gauges = values(health_gauges(broken))
    finally:
        broken.dispose()
    assert gauges[("smbc_database_up", ())] == 0
    assert ("smbc_stores_installed", ()) not in gauges
