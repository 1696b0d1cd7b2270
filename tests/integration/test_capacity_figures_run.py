"""benchmarks/capacity_figures.py still runs and its figures add up, at a size of seconds (the
figures of docs/capacity.md come from running it at full size, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import POSTGRES_ADMIN_URL, REDIS_URL, postgres_available, redis_available, require

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_capacity_figures_measure_redis_and_postgres_per_delivery() -> None:
    require(postgres_available(), "PostgreSQL is not reachable on 127.0.0.1:5432")
    require(redis_available(), "Redis is not reachable on 127.0.0.1:6379")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "capacity_figures.py"),
            *("--deliveries", "30", "--stores", "1", "--latency-ms", "0", "--workers", "4"),
            *("--queue-items", "200", "--admin-url", POSTGRES_ADMIN_URL, "--redis-url", REDIS_URL),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["redis"]["bytes_per_queued_message"] > 0
    assert figures["redis"]["bytes_per_scheduled_message"] > 0
    assert figures["deliveries"] >= 30
    assert figures["postgres"]["tables"]["webhook_deliveries"]["rows_per_delivery"] == 1.0
    assert figures["postgres"]["rows_inserted_per_delivery"] >= 1
    assert figures["cpu"]["worker_ms_per_delivery"] > 0
