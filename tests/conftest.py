"""Shared fixtures: settings on a temp directory, backends (SQLite/PostgreSQL, SQLite/Redis queue),
and the rule that a missing service skips locally but fails under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.session import Database
from smbc.sandbox.salesmanago import FakeSalesmanago
from support import (  # noqa: F401  (re-exported for older imports)
    IN_CI,
    OPENAPI_DIR,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    chromium_path,
    make_settings,
    postgres_available,
    postgres_database_url,
    redis_available,
    require,
    schema_templates,
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core, as most tests wait on their servers and fakes, not on the CPU;
    at most 8, to stay well inside PostgreSQL's 100 connections with other sessions on the server."""
    return min(2 * len(os.sched_getaffinity(0)), 8)


@pytest.fixture(scope="session", autouse=True)
def _schema_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The migrated template databases live for the session (of each xdist worker); dropped at its end."""
    schema_templates().start(tmp_path_factory.mktemp("schema"))
    yield
    schema_templates().close()


@pytest.fixture
def openapi_dir() -> Path:
    # Not `require`: the specs live beside the repository (../shared), never in it, and a clone
    # without them skips these checks even under CI=true (the developers' guide says so).
    if not OPENAPI_DIR.is_dir():
        pytest.skip(f"BigCommerce OpenAPI specs not found at {OPENAPI_DIR} (../shared is absent)")
    return OPENAPI_DIR


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of one test, dropped afterwards: a copy of the migrated template."""
    require(postgres_available(), "PostgreSQL is not reachable on 127.0.0.1:5432")
    from sqlalchemy import create_engine, text

    template = schema_templates().postgres_database()
    name = f"smbc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield postgres_database_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    require(redis_available(), "Redis is not reachable on 127.0.0.1:6379")
    import redis

    # No FLUSHDB: other test processes may share this Redis; each test has its own queue_name.
    redis.Redis.from_url(REDIS_URL).ping()
    yield REDIS_URL


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The integration suites run on both: SQLite + SQLite queue, and PostgreSQL + Redis."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    pg = request.getfixturevalue("postgres_url")
    rd = request.getfixturevalue("redis_url")
    name = f"smbctest{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: _drop_redis_keys(rd, name))
    return make_settings(tmp_path, database_url=pg, queue_url=rd, queue_name=name)


@pytest.fixture
def backend_db(backend_settings: Settings) -> Iterator[Database]:
    """A migrated database of each backend, with the app's runtime around it."""
    yield init_runtime(backend_settings, migrate=True).db
    close_runtime()


def _drop_redis_keys(url: str, name: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"*{name}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _restore_process_clock() -> Iterator[None]:
    """A test whose set-up fails half-way (after `set_clock`) must not leave its FakeClock to the tests
    that follow: signed payloads and tokens would all look expired or not yet valid."""
    from smbc.core.clock import get_clock, set_clock

    previous = get_clock()
    yield
    set_clock(previous)


@pytest.fixture(scope="session", autouse=True)
def _no_remote_calls_in_transactions() -> Iterator[None]:
    """Every suite runs with the guard on: a remote call made while the calling thread has a database
    session open fails the test (the app under test runs in this process, so it is covered too)."""
    from smbc.core.http_clients import forbid_remote_calls_in_transactions

    previous = forbid_remote_calls_in_transactions(True)
    yield
    forbid_remote_calls_in_transactions(previous)


@pytest.fixture
def fake_sm() -> Iterator[tuple[FakeSalesmanago, str]]:
    """The fake SALESmanago on a free port, and its URL. One fake clock for the app and the fake:
    retry waits pass instantly, request times still agree."""
    clock = FakeClock()
    previous = set_clock(clock)
    sm = FakeSalesmanago(clock=clock)
    try:
        with BackgroundServer(sm.app) as server:
            sm.bind(server.url)
            yield sm, server.url
    finally:
        set_clock(previous)
