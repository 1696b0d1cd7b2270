"""`kill -9` of the process running an export, in the middle: another worker takes it over once its
heartbeat is stale, resumes from the saved cursor, and the fake SALESmanago ends with every event
exactly once (SQLite and PostgreSQL+Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from export_support import World, export_world

from smbc.core.clock import FakeClock, set_clock, utcnow
from smbc.core.config import Settings
from smbc.engine import long_jobs
from smbc.export import runner, service
from support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SRC = Path(__file__).resolve().parents[2] / "src"
WORKER = (
    "import sys\n"
    "from smbc.core.config import load_settings\n"
    "from smbc.core.runtime import init_runtime\n"
    "from smbc.export.runner import run_export\n"
    "init_runtime(load_settings())\n"
    "run_export(int(sys.argv[1]), time_slice=None)\n"
)


def worker_env(w: World) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), **w.settings.environment()}


def between_batches(w: World, export_id: int) -> bool:
    held = [url for url in w.sb.bc.held if "/v2/orders?" in url]
    if not held:
        return False
    # Two reads are in flight (`OrderWindows`): the next page is the lowest window held, whichever came first.
    next_first = min(int(parse_qs(urlsplit(url).query)["min_id"][0]) for url in held)
    cursor = w.export(export_id).cursor
    return "inflight" not in cursor and cursor.get("after_id") == next_first - 1


def test_a_killed_worker_resumes_and_each_event_is_sent_exactly_once(backend_settings: Settings) -> None:
    with export_world(backend_settings) as w:
        # No refunds: no BigCommerce read inside a batch. Enough batches that the reader is still
        # reading when four are sent, though the batches wait for their buyers a few batches ahead.
        w.seed_completed_orders(120, customers=10)
        first, last = date(2026, 2, 1), date(2026, 2, 28)
        export_id = service.start_export(
            w.db, w.store_id, "events", first, last, batch_size=3, page_size=3, enqueue=False
        )
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(export_id)],
            env=worker_env(w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(lambda: w.export(export_id).batches >= 4, "four batches", timeout=60, interval=0.01)
            # Catch the worker between batches: its page reader waits for the next BigCommerce page
            # while the sender commits every order served before it (a page is a batch here).
            w.sb.bc.faults.hold = True
            wait_for(
                lambda: between_batches(w, export_id),
                "the worker to wait for its next page",
                timeout=60,
                interval=0.01,
            )
            os.kill(worker.pid, signal.SIGKILL)
            assert worker.wait(timeout=30) == -signal.SIGKILL
        finally:
            w.sb.bc.faults.hold = False
            if worker.poll() is None:
                worker.kill()
        stopped = w.export(export_id)
        sent_before = len(w.events("PURCHASE"))
        assert stopped.status == "running" and stopped.lease_owner is not None
        assert 0 < stopped.sent == sent_before < 120
        assert runner.run_export(export_id, db=w.db) is None  # its heartbeat is still fresh

        previous = set_clock(FakeClock(utcnow() + long_jobs.LEASE_STALE + timedelta(seconds=1)))
        try:
            assert runner.EXPORTS_JOBS.due_ids(w.db) == [export_id]  # the sweep would queue it
            assert runner.run_export(export_id, db=w.db, time_slice=None) == "done"
        finally:
            set_clock(previous)
        row = w.export(export_id)
        counts = Counter(e["externalId"] for e in w.events("PURCHASE"))
        assert len(counts) == 120 and set(counts.values()) == {1}
        assert row.sent == 120 and row.done == 120 and row.unconfirmed == 0 and row.failed == {}
