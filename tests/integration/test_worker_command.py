"""`smbc worker` (SMBC_WORKERS=external) consumes the queue the web process fills, and stops on
Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.stores.setup import store_setup_task

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_worker_runs_queued_tasks_until_ctrl_c(settings: Settings, tmp_path: Path) -> None:
    runtime = init_runtime(settings, migrate=True)
    try:
        with runtime.db.session() as s:
            # Uninstalled: the set-up task finds nothing to do and returns False without any call.
            store = Store(hash="abc123", status="uninstalled")
            s.add(store)
            s.flush()
            store_id = store.id
        result = store_setup_task(store_id)  # queued in the SQLite queue, nobody consuming yet
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMBC_")}
        env.update(
            PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"),
            SMBC_DATABASE_URL=settings.database_url,
            SMBC_QUEUE_URL=settings.queue_url,
            SMBC_SECRET_KEY=settings.secret_key,
            SMBC_VAR_DIR=str(tmp_path),
            SMBC_WORKERS="external",
            SMBC_LOG_LEVEL="DEBUG",  # Huey's per-task line is written at DEBUG only
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "smbc", "worker", "--threads", "1"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert result.get(blocking=True, timeout=20) is False
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=20)
        output = worker.stdout.read()
        assert worker.returncode == 0, output
        assert '"level"' in output  # JSON-lines logs
        assert "Executing smbc.stores.setup.store_setup_task" in output  # this worker ran it
    finally:
        close_runtime()
