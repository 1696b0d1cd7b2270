"""`smbc demo` (what `make demo` runs) starts the sandbox and the app, prints the control panel URL,
serves until Ctrl-C and then exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smbc.core.http_server import free_port
from support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_demo_serves_the_app_and_the_control_panel_until_ctrl_c(tmp_path: Path) -> None:
    app_port, bc_port, sm_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMBC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    command = [sys.executable, "-m", "smbc", "demo", "--port", str(app_port)]
    command += ["--bc-port", str(bc_port), "--sm-port", str(sm_port)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines: list[str] = []

        def announced() -> bool:
            assert process.poll() is None, "".join(lines)  # the demo stopped early
            lines.append(process.stdout.readline())  # blocks until the next line
            return any("control panel" in line for line in lines)

        wait_for(
            announced, lambda: "the control panel URL in " + repr("".join(lines)), timeout=30, interval=0
        )
        assert f"http://localhost:{bc_port}/manage" in "".join(lines)

        def ready() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{app_port}/readyz", timeout=2)
            except httpx.TransportError:
                return None  # not listening yet

        assert wait_for(ready, "the app to answer /readyz", timeout=30, interval=0.1).status_code == 200
        info = httpx.get(f"http://127.0.0.1:{bc_port}/stores/sbx1demo/v2/store", timeout=5)
        assert info.status_code == 401  # the fake BigCommerce is up (and wants a token)
        assert (tmp_path / "var" / "demo" / "smbc.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode in (0, 130, -signal.SIGINT), process.stdout.read()
