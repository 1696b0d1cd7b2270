"""Health over HTTP: `/readyz?detail=1` behind SMBC_METRICS_TOKEN, the Activity tab's panel, and
/metrics scraped after real deliveries (webhooks from the fake BigCommerce, calls to the fake
SALESmanago) with the counts moving."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from realtime_env import RealtimeEnv
from sm_account_helpers import add_store, bearer, make_app
from sqlalchemy import select

from smbc.core.clock import utcnow
from smbc.core.config import Settings
from smbc.db.models import Store
from smbc.monitoring.scripts import sync_store
from smbc.realtime.models import WebhookDelivery
from smbc.reconcile.models import ReconcileState
from smbc.reconcile.service import reconcile_store
from smbc.stores.hooks import NEEDED_SCOPES

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings.model_copy(update={"metrics_token": TOKEN}))) as test_client:
        yield test_client


def test_the_detail_needs_the_token_and_plain_readiness_stays_as_it_was(client: TestClient) -> None:
    add_store(client.app, "abc123")
    add_store(client.app, "def456")
    plain = client.get("/readyz")
    assert plain.status_code == 200
    assert plain.json() == {"ready": True, "database": True, "queue": True}  # no token needed, no detail

    assert client.get("/readyz?detail=1").status_code == 401
    assert client.get("/readyz?detail=1", headers=bearer("wrong")).status_code == 401
    refused = client.get("/readyz?detail=1&store=abc123")
    assert refused.status_code == 401 and "abc123" not in refused.text

    answer = client.get("/readyz?detail=1", headers=bearer(TOKEN))
    assert answer.status_code == 200
    body = answer.json()
    assert body["ready"] is True
    assert [store["hash"] for store in body["health"]["stores"]] == ["abc123", "def456"]
    first = body["health"]["stores"][0]
    assert first["salesmanago_credentials"] == "not_connected"
    assert first["hooks"]["state"] == "not_checked"
    assert "webhook_deliveries" in [queue["queue"] for queue in body["health"]["queues"]]

    one = client.get("/readyz?detail=1&store=def456", headers=bearer(TOKEN)).json()
    assert [store["hash"] for store in one["health"]["stores"]] == ["def456"]
    unknown = client.get("/readyz?detail=1&store=nope", headers=bearer(TOKEN))
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_the_activity_tab_shows_the_panel_escaped(client: TestClient) -> None:
    token = add_store(client.app, "abc123")
    now = utcnow()
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        s.add(
            ReconcileState(
                store_id=store.id, last_run_at=now, watermark=now, last_error="<script>alert(1)</script>"
            )
        )
        s.add(
            WebhookDelivery(
                store_id=store.id,
                scope="store/order/created",
                hash="h1",
                created_at=1,
                received_at=now - timedelta(minutes=3),
                status="pending",
            )
        )
    html = client.get("/app/tabs/activity", headers=bearer(token)).text
    assert 'id="health-detail"' in html
    assert "webhooks could not be checked" in html  # among the problems at the top
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "Last change received from BigCommerce" in html
    assert (now - timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S UTC") in html
    assert "1 to do, 0 in progress, 0 waiting" in html
    assert "the oldest to do has waited 3 min for a worker" in html


# -- real deliveries -----------------------------------------------------------------------------


def scrape(env: RealtimeEnv) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{env.app_url}/metrics", timeout=10)
    assert answer.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def detail(env: RealtimeEnv) -> dict:
    answer = httpx.get(f"{env.app_url}/readyz", params={"detail": 1, "store": env.store_hash}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["health"]["stores"][0]


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


def test_real_deliveries_move_the_metrics_and_fill_the_detail(env: RealtimeEnv) -> None:
    before = scrape(env)
    customer = env.storefront.register("ann.lee@example.com", "Ann", "Lee")
    env.admin.update_customer(customer["id"], phone="+1 555 0100")
    env.settle()
    assert env.contact("ann.lee@example.com") is not None
    after = scrape(env)

    processed = {d.scope for d in env.deliveries() if d.status == "done"}
    assert "store/customer/created" in processed
    assert (
        delta(before, after, "smbc_deliveries_processed_total", scope="store/customer/created", status="done")
        == 1
    )
    finished = sum(
        delta(before, after, "smbc_deliveries_processed_total", scope=scope, status=status)
        for scope in {d.scope for d in env.deliveries()}
        for status in ("done", "skipped", "failed")
    )
    assert finished >= 2
    assert delta(before, after, "smbc_delivery_latency_seconds_count") == finished
    assert delta(before, after, "smbc_remote_calls_total", service="salesmanago", outcome="success") >= 1
    assert delta(before, after, "smbc_remote_calls_total", service="bigcommerce", outcome="success") >= 1
    assert after[("smbc_queue_rows", (("queue", "webhook_deliveries"), ("state", "due")))] == 0
    assert after[("smbc_stores_installed", ())] == 1
    assert after[("smbc_stores_paused", (("reason", "credentials"),))] == 0

    reconcile_store(env.store_id)  # checks (and here finds) every hook, moves the watermark
    assert detail(env)["monitoring"] == "not_installed"
    assert sync_store(env.db, env.store_id, app_url=env.app_url).error is None  # as a login from the tab
    store = detail(env)
    assert store["monitoring"] == "installed" and store["monitoring_channels"]
    assert store["last_delivery_at"] is not None
    assert store["salesmanago_credentials"] == "valid"
    assert store["hooks"]["state"] == "active"
    assert store["watermark_age_s"] is not None and store["watermark_age_s"] < 60
    assert store["paused_reasons"] == [] and store["problems"] == []

    # SALESmanago refuses the stored credentials: the store pauses, its deliveries wait.
    env.sm.revoke_credentials(env.client_id)
    env.storefront.register("bo@example.com", "Bo", "Buyer")
    env.settle()
    paused = scrape(env)
    assert paused[("smbc_stores_paused", (("reason", "credentials"),))] == 1
    assert delta(after, paused, "smbc_store_pauses_total", reason="credentials") == 1
    assert delta(after, paused, "smbc_remote_calls_total", service="salesmanago", outcome="credentials") >= 1
    assert paused[("smbc_queue_rows", (("queue", "webhook_deliveries"), ("state", "waiting")))] >= 1
    store = detail(env)
    assert store["salesmanago_credentials"] == "refused"
    assert store["problems"][:2] == [
        "sync paused: credentials",
        "SALESmanago refused the stored credentials: log in again",
    ]

    token = add_store(env.server.app, env.store_hash, email="health@shop.test")
    html = httpx.get(f"{env.app_url}/app/tabs/activity", headers=bearer(token), timeout=10).text
    assert "refused by SALESmanago: log in again on the Account Settings tab" in html
    assert f"all {len(NEEDED_SCOPES)} registered and active" in html
