"""`smbc demo` (what `make demo` runs) starts the sandbox and the app, prints the control panel URL,
serves until Ctrl-C and then exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from smbc.core.http_server import free_port


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
        lines = []
        deadline = time.monotonic() + 30
        while not any("control panel" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        assert f"http://localhost:{bc_port}/manage" in "".join(lines)
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{app_port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready is not None and ready.status_code == 200, "the app did not come up"
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
