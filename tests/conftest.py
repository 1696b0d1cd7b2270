"""Shared fixtures: settings on a temp directory, backends (SQLite/PostgreSQL, SQLite/Redis queue),
and the rule that a missing service skips locally but fails under CI=true."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smbc.config import Settings, load_settings

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


@pytest.fixture
def openapi_dir() -> Path:
    require(OPENAPI_DIR.is_dir(), f"BigCommerce OpenAPI specs not found at {OPENAPI_DIR}")
    return OPENAPI_DIR


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require(postgres_available(), "PostgreSQL is not reachable on 127.0.0.1:5432")
    from sqlalchemy import create_engine, text

    name = f"smbc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    require(redis_available(), "Redis is not reachable on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The integration suites run on both: SQLite + SQLite queue, and PostgreSQL + Redis."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    pg = request.getfixturevalue("postgres_url")
    rd = request.getfixturevalue("redis_url")
    return make_settings(tmp_path, database_url=pg, queue_url=rd)
