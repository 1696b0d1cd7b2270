"""The counters and histograms of smbc.core.metrics, the gauges read at scrape time, and several
processes of one host summed through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from smbc.core.clock import utcnow
from smbc.core.metrics import Gauge, exposition, record_delivery_processed, record_remote_call

SRC = Path(__file__).resolve().parents[2] / "src"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_delivery_counts_by_scope_and_status_and_its_latency_once_final() -> None:
    scope = "store/cart/converted"
    latency_count = sample("smbc_delivery_latency_seconds_count")
    under_a_minute = sample("smbc_delivery_latency_seconds_bucket", le="60.0")
    received = utcnow()
    record_delivery_processed(scope, "pending", received, received + timedelta(seconds=1))  # retried later
    record_delivery_processed(scope, "done", received, received + timedelta(seconds=45))
    assert sample("smbc_deliveries_processed_total", scope=scope, status="pending") >= 1
    assert sample("smbc_deliveries_processed_total", scope=scope, status="done") >= 1
    assert sample("smbc_delivery_latency_seconds_count") == latency_count + 1  # only the final one
    assert sample("smbc_delivery_latency_seconds_bucket", le="60.0") == under_a_minute + 1


def test_remote_calls_by_service_and_outcome() -> None:
    before = sample("smbc_remote_calls_total", service="bigcommerce", outcome="rate_limited")
    record_remote_call("bigcommerce", "rate_limited", 120)
    assert sample("smbc_remote_calls_total", service="bigcommerce", outcome="rate_limited") == before + 1
    assert sample("smbc_remote_call_duration_seconds_count", service="bigcommerce") >= 1


def test_exposition_has_the_counters_and_the_gauges_of_this_scrape() -> None:
    text = exposition(
        [
            Gauge("smbc_queue_rows", "rows", 3, {"queue": "webhook_deliveries", "state": "due"}),
            Gauge("smbc_queue_rows", "rows", 1, {"queue": "webhook_deliveries", "state": "waiting"}),
        ]
    ).decode()
    assert 'smbc_queue_rows{queue="webhook_deliveries",state="due"} 3.0' in text
    assert 'smbc_queue_rows{queue="webhook_deliveries",state="waiting"} 1.0' in text
    assert text.count("# TYPE smbc_queue_rows gauge") == 1
    assert "# TYPE smbc_http_requests_total counter" in text


COUNT_CALLS = """
from smbc.core.metrics import record_remote_call
for _ in range({n}):
    record_remote_call("salesmanago", "success", 30)
"""
SCRAPE = """
import sys
from smbc.core.metrics import Gauge, exposition
sys.stdout.write(exposition([Gauge("smbc_queue_messages", "messages", 2)]).decode())
"""


@pytest.mark.subprocess
def test_several_processes_of_a_host_are_summed_in_one_scrape(tmp_path: Path) -> None:
    """Workers serve no HTTP: with PROMETHEUS_MULTIPROC_DIR, the web process scraped reports theirs."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(COUNT_CALLS.format(n=3))  # a worker that has exited since: its counts stay
    run(COUNT_CALLS.format(n=4))
    text = run(SCRAPE)
    assert 'smbc_remote_calls_total{outcome="success",service="salesmanago"} 7.0' in text
    assert 'smbc_remote_call_duration_seconds_count{service="salesmanago"} 7.0' in text
    assert "smbc_queue_messages 2.0" in text
