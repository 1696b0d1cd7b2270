"""Every benchmark in benchmarks/ still runs and its figures add up, at a size that takes seconds.
(The figures themselves are measured by running the scripts at full size, never asserted here.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import POSTGRES_ADMIN_URL, REDIS_URL, postgres_available, redis_available, require

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_ingest_benchmark_measures_the_receiver_and_a_bare_endpoint() -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")
    figures = run("webhook_ingest.py", "--seconds", "1", "--connections", "4", "--threads", "1")
    ingest, bare = figures["ingest"], figures["bare"]
    assert ingest["requests"] > 0 and ingest["non_2xx"] == ingest["socket_errors"] == 0
    assert ingest["inbox_rows"] >= ingest["ok_2xx"]  # every 200 answered is a recorded delivery
    assert bare["requests"] > 0 and figures["throughput_ratio"] > 0


def test_ingest_benchmark_at_a_fixed_rate_offers_no_more_than_that_rate() -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")
    figures = run(
        "webhook_ingest.py", "--seconds", "2", "--connections", "4", "--threads", "1", "--rate", "20"
    )
    ingest, bare = figures["ingest"], figures["bare"]
    assert figures["offered_per_s"] == 20
    # Paced: about 20 a second for 2 s (the first slot of each connection at once), not a closed loop's.
    assert 0 < bare["requests"] <= 20 * 2 + 4 and 0 < ingest["requests"] <= 20 * 2 + 4
    assert ingest["non_2xx"] == ingest["socket_errors"] == 0 and ingest["inbox_rows"] >= ingest["ok_2xx"]


def test_real_time_benchmark_ends_with_every_delivery_processed() -> None:
    figures = run(
        "realtime_end_to_end.py", "--deliveries", "40", "--stores", "2", "--latency-ms", "0", "--workers", "4"
    )
    assert figures["deliveries"] >= 40 and set(figures["statuses"]) <= {"done", "skipped"}
    assert figures["salesmanago_events"] > 0 and figures["bigcommerce_calls_per_delivery"] > 0
    assert figures["cpu_ms_per_delivery"]["total"] > 0
    assert sum(figures["done_by_second"]) == figures["statuses"]["done"]


@pytest.mark.timeout(300)  # two app processes and two installs: slow on a loaded machine
def test_real_time_benchmark_steady_state_mode_paces_the_activity() -> None:
    figures = run(
        "realtime_end_to_end.py", "--rate", "20", "--duration", "3", "--stores", "2", "--latency-ms", "0"
    )
    assert figures["mode"] == "steady 20/s for 3 s" and 0 < figures["deliveries"] <= 20 * 3 + 12
    assert figures["received_to_done_p95_s"] is not None and figures["worker_rss"]["max_mb"] > 0


def test_export_benchmark_exports_every_record() -> None:
    figures = run("export_benchmark.py", "--customers", "300", "--orders", "300", "--latency-ms", "0")
    assert figures["contacts"]["records"] == 300 and figures["events"]["records"] == 300
    assert figures["contacts"]["status"] == figures["events"]["status"] == "done"
    assert figures["salesmanago_events"] == figures["events"]["sent"] > 0


def test_catalog_benchmark_syncs_every_storefront() -> None:
    figures = run("catalog_sync.py", "--products", "300", "--with-variants", "100", "--latency-ms", "0")
    for storefront in ("storefront_1", "storefront_2"):
        assert figures[storefront]["status"] == "done" and figures[storefront]["refused"] == 0
        assert figures[storefront]["products"] == figures[storefront]["salesmanago_products_sent"] > 0
    assert figures["naive_one_read_per_product"]["bigcommerce_requests_per_1000"] > 1000


@pytest.mark.timeout(
    600
)  # two points, each with two web processes, its workers and an install: minutes when loaded
def test_scaling_curve_holds_every_store_to_its_quota_and_3_in_flight_across_processes() -> None:
    require(postgres_available(), "PostgreSQL is not reachable on 127.0.0.1:5432")
    require(redis_available(), "Redis is not reachable on 127.0.0.1:6379")
    figures = run(
        "scaling_curve.py",
        *("--worker-processes", "1,2", "--deliveries", "40", "--stores", "1", "--threads", "2"),
        # A quota the burst fills, so two processes must share it through Redis (40 deliveries of one
        # store took 20 requests with drains of 20 rows).
        *("--latency-ms", "0", "--quota", "10", "--quota-window-s", "5"),
        *("--admin-url", POSTGRES_ADMIN_URL, "--redis-url", REDIS_URL),
        timeout=580,
    )
    assert [p["worker_processes"] for p in figures["points"]] == [1, 2]
    for point in figures["points"]:
        assert point["deliveries"] >= 40 and set(point["statuses"]) <= {"done", "skipped"}
        assert point["bigcommerce"]["requests"] > 10  # more than one window's quota: the quota bound
        assert point["bigcommerce"]["busiest_quota_window"] <= 10
        assert point["bigcommerce"]["refused_for_quota"] == 0
        assert 0 < point["bigcommerce"]["most_in_flight_per_store"] <= 3
        assert point["cpu_ms_per_delivery"]["worker"] > 0 and point["cpu_ms_per_delivery"]["web"] > 0
    assert figures["violations"] == []
    assert (
        figures["curve"][0]["throughput_vs_first"] == 1.0 and figures["curve"][1]["throughput_vs_first"] > 0
    )
