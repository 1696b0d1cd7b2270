"""Metrics with the processes of production: `smbc serve` and `smbc worker` on PostgreSQL + Redis,
sharing PROMETHEUS_MULTIPROC_DIR. The worker serves no HTTP, yet what it did (deliveries processed,
SALESmanago and BigCommerce calls) shows in the web process's /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from smbc.account.login import login_with_password
from smbc.core.http_server import free_port
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.realtime.models import WebhookDelivery
from smbc.sandbox.runner import Sandbox
from support import make_settings, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SRC = Path(__file__).resolve().parents[2] / "src"


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_what_a_worker_did_shows_in_the_web_process_metrics(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url) as sb:
        settings = make_settings(
            tmp_path,
            database_url=postgres_url,
            queue_url=redis_url,
            queue_name=f"metrics{uuid.uuid4().hex[:10]}",
            workers="external",
            app_url=app_url,
            **sb.app_settings(),
        )
        db = init_runtime(settings, migrate=False).db
        env = {
            **os.environ,
            **settings.environment(),
            "PYTHONPATH": str(SRC),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "SMBC_LOG_LEVEL": "WARNING",
        }
        smbc = [sys.executable, "-m", "smbc"]
        web = subprocess.Popen([*smbc, "serve", "--port", str(port)], env=env, cwd=tmp_path)
        worker = subprocess.Popen([*smbc, "worker", "--threads", "2"], env=env, cwd=tmp_path)
        try:
            wait_for(lambda: answers(app_url), "smbc serve to answer", timeout=60)
            store_hash = sb.bc.default_store_hash
            assert sb.bc.install(store_hash).status_code < 400

            def set_up() -> int | None:
                with db.session() as s:
                    store = s.scalar(select(Store).where(Store.hash == store_hash))
                    return store.id if store is not None and store.setup_completed_at else None

            store_id = wait_for(set_up, "the worker to set the store up", timeout=60)
            login_with_password(
                db,
                store_id,
                email=sb.sm.NORMAL.email,
                password=sb.sm.PASSWORD,
                endpoint=sb.sm_url,
                settings=settings,
                actor="test",
            )
            before = samples(app_url)
            sb.bc.storefront(store_hash, channel_id=1).register("ann.lee@example.com", "Ann", "Lee")

            def registered() -> bool:
                with db.session() as s:
                    status = s.scalar(
                        select(WebhookDelivery.status).where(
                            WebhookDelivery.scope == "store/customer/created"
                        )
                    )
                return status == "done"

            wait_for(registered, "the worker to process the registration", timeout=60)
            processed = (
                "smbc_deliveries_processed_total",
                (("scope", "store/customer/created"), ("status", "done")),
            )

            def scraped_with_the_workers_count() -> dict | None:
                found = samples(app_url)
                return found if found.get(processed) else None

            after = wait_for(
                scraped_with_the_workers_count, "the worker's count in the web process's /metrics"
            )
        finally:
            for process in (web, worker):
                process.terminate()
            for process in (web, worker):
                process.wait(timeout=60)
            close_runtime()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("smbc_deliveries_processed_total", scope="store/customer/created", status="done") == 1
    assert moved("smbc_remote_calls_total", service="salesmanago", outcome="success") >= 1
    assert moved("smbc_remote_calls_total", service="bigcommerce", outcome="success") >= 1
    assert moved("smbc_delivery_latency_seconds_count") >= 1
    assert moved("smbc_webhook_deliveries_total", result="accepted") >= 1  # the web process's own
    assert after[("smbc_stores_installed", ())] == 1  # read from the database at the scrape
    assert sb.sm.contact(sb.sm.NORMAL.client_id, "ann.lee@example.com") is not None
