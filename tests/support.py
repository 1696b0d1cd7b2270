"""Helpers every test module can import (`from support import require, make_settings`).

Kept out of conftest.py because a folder with its own conftest.py shadows `import conftest`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.fernet import Fernet

from smbc.core.config import Settings, load_settings

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENAPI_DIR = SHARED / "bigcommerce-openapi"
POSTGRES_ADMIN_URL = os.environ.get(
    "SMBC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SMBC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(available: bool, reason: str) -> None:
    """Skip when something the test needs is missing, except under CI=true where it must be there."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def postgres_available() -> bool:
    return _port_open("127.0.0.1", 5432)


def redis_available() -> bool:
    return _port_open("127.0.0.1", 6379)


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return None


def wait_for(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
) -> T:
    """Poll `condition()` until it returns something truthy, and return that: for work another thread,
    server or process does (a deadline, never a sleep that hopes). The failure names what was awaited;
    `what` may be a function, to describe the state at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {described} (last: {value!r:.200})"
            )
        time.sleep(interval)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'smbc.db'}",
        "queue_url": f"sqlite:///{tmp_path / 'queue.db'}",
        "secret_key": Fernet.generate_key().decode(),
        "var_dir": tmp_path,
        "bc_client_id": "test-client-id",
        "bc_client_secret": "test-client-secret",
        "workers": "inline",
        "inline_worker_threads": 2,
    }
    base.update(overrides)
    return load_settings(**base)
