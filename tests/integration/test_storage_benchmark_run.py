"""benchmarks/storage_retention.py still runs at a size that takes seconds, and its figures add up
(the figures themselves come from full-size runs, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_storage_benchmark_measures_every_table_and_retention_empties_the_history() -> None:
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "storage_retention.py"), "--deliveries", "40", "--stores", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [sqlite] = json.loads(done.stdout)
    assert sqlite["database"] == "sqlite" and sqlite["deliveries"] >= 40
    grows = sqlite["per_1000_deliveries"]
    assert grows["webhook_deliveries"]["rows"] == 1000.0 and grows["webhook_deliveries"]["kib"] > 0
    assert grows["remote_calls"]["rows"] > 0
    left = sqlite["retention"]["rows_left"]
    assert "webhook_deliveries" not in left and "remote_calls" not in left
    assert left["sent_events"] > 0  # the ledgers stay
