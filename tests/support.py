"""Helpers every test module can import (`from support import require, make_settings`).

Kept out of conftest.py because a folder with its own conftest.py shadows `import conftest`."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.fernet import Fernet

from smbc.core.config import Settings, get_settings, load_settings
from smbc.db.session import MIGRATIONS_DIR, Database

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
    """Settings on `tmp_path`; its SQLite database starts as a copy of the migrated template."""
    database = tmp_path / "smbc.db"
    base: dict[str, object] = {
        "database_url": f"sqlite:///{database}",
        "queue_url": f"sqlite:///{tmp_path / 'queue.db'}",
        "secret_key": Fernet.generate_key().decode(),
        "var_dir": tmp_path,
        "bc_client_id": "test-client-id",
        "bc_client_secret": "test-client-secret",
        "workers": "inline",
        "inline_worker_threads": 2,
    }
    base.update(overrides)
    settings = load_settings(**base)
    # Only the default file, and only before anything opened it (a second call must keep its rows).
    if settings.database_url == f"sqlite:///{database}" and not database.exists():
        shutil.copyfile(schema_templates().sqlite_file(), database)
    return settings


def schema_key(migrations: Path = MIGRATIONS_DIR) -> str:
    """A hash of what decides the migrated schema: the migrations and the column types they use."""
    digest = hashlib.sha256()
    for path in sorted([*migrations.rglob("*.py"), migrations.parent / "types.py"]):
        digest.update(path.relative_to(migrations.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class SchemaTemplates:
    """Databases migrated once per test process, copied for each test: Alembic then finds the schema at
    head and runs nothing. Keyed on `schema_key()` (checked at every copy), so a changed migration
    builds a new template and no test ever sees a stale schema."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._sqlite: dict[str, Path] = {}
        self._postgres: dict[str, str] = {}

    def start(self, directory: Path) -> None:
        """Keep the SQLite templates in `directory` (pytest's temporary one, which pytest cleans)."""
        self._dir = directory

    def sqlite_file(self) -> Path:
        key = schema_key()
        if key not in self._sqlite:
            if self._dir is None:  # used outside a test session
                self._dir = Path(tempfile.mkdtemp(prefix="smbc-schema-"))
            path = self._dir / f"template-{key}.db"
            _migrate(f"sqlite:///{path}")
            with sqlite3.connect(path) as conn:  # one self-contained file: no -wal beside it to copy
                conn.execute("PRAGMA journal_mode=DELETE")
            self._sqlite[key] = path
        return self._sqlite[key]

    def postgres_database(self) -> str:
        """The name of a migrated template database; `CREATE DATABASE x TEMPLATE <it>` copies it."""
        key = schema_key()
        if key not in self._postgres:
            # Per process: a template must have no connection while it is copied, and test sessions
            # of other checkouts may share this server.
            name = f"smbc_template_{key}_{uuid.uuid4().hex[:8]}"
            _admin_execute(f'CREATE DATABASE "{name}"')
            try:
                _migrate(postgres_database_url(name))
                _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            except BaseException:
                _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
            self._postgres[key] = name
        return self._postgres[key]

    def close(self) -> None:
        for name in self._postgres.values():
            _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._postgres.clear()
        self._sqlite.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


_templates = SchemaTemplates()


def schema_templates() -> SchemaTemplates:
    return _templates


def postgres_database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        database.upgrade()
    finally:
        database.dispose()


def _admin_execute(statement: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


@contextmanager
def settings_in_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings in the process's environment, where `smbc` commands read them."""
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
