"""`smbc sm login` (the real command, as a separate process) against the sandbox: the same account
action as the dashboard's, so a store connected from the command line gets the monitoring code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitoring_support import MonitoringEnv, QueueWorker, monitoring_env
from smbc.core import jobs
from smbc.core.config import Settings
from support import wait_for

pytestmark = pytest.mark.subprocess


def _command_env(env: MonitoringEnv) -> dict[str, str]:
    """The app's settings as the `SMBC_*` variables a command reads."""
    settings = env.app.state.settings
    variables = {k: v for k, v in os.environ.items() if not k.startswith("SMBC_")}
    variables["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    for name in (
        "database_url",
        "queue_url",
        "secret_key",
        "var_dir",
        "app_url",
        *env.sb.app_settings(),
    ):
        variables["SMBC_" + name.upper()] = str(getattr(settings, name))
    return variables


def _wait_for_channels(env: MonitoringEnv, expected: list[int]) -> None:
    wait_for(
        lambda: sorted(env.scripts()) == expected,
        lambda: f"storefront scripts {expected} (now {sorted(env.scripts())})",
        timeout=20,
    )


def test_cli_login_installs_the_monitoring_code(settings: Settings, tmp_path: Path) -> None:
    with monitoring_env(settings, tmp_path) as env:
        out = httpx.post(env.url + "/app/account/logout", headers=env.headers, timeout=30)
        assert out.status_code == 200
        jobs.huey.flush()  # nothing is installed yet: the sync the logout queued has nothing to remove
        assert env.scripts() == {}

        command = [sys.executable, "-m", "smbc", "sm", "login", "--store", env.store_hash]
        command += ["--email", env.sb.sm.NORMAL.email, "--password", env.sb.sm.PASSWORD]
        command += ["--endpoint", env.sb.sm_url]
        done = subprocess.run(
            command, cwd=tmp_path, env=_command_env(env), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Connected store {env.store_hash}" in done.stdout

        with QueueWorker():  # runs what the command queued, as a worker would
            _wait_for_channels(env, [1, 2])  # on by default: every storefront gets the code
        assert all(f'var _smid = "{env.client_id}";' in s.html for s in env.scripts().values())
