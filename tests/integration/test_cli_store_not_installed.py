"""Every command on one store ends with exit 1 and what to do when the app is not installed on it,
including an uninstalled store, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.encryption import configure
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.settings.models import SettingsChange

runner = CliRunner()

COMMANDS = [
    ("catalog", "list"),
    ("catalog", "sync"),
    ("settings", "set", "cart_event_window=1h"),
    ("monitoring", "restore"),
    ("deliveries", "retry", "1"),
    ("deliveries", "resend", "1"),
    ("export", "cancel", "1"),
    ("export", "resend", "1"),
    ("export", "contacts"),
    ("sm", "logout"),
]


@pytest.fixture
def db(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    for name, value in {
        "SMBC_DATABASE_URL": settings.database_url,
        "SMBC_QUEUE_URL": settings.queue_url,
        "SMBC_SECRET_KEY": settings.secret_key,
        "SMBC_VAR_DIR": str(settings.var_dir),
        "SMBC_APP_URL": "https://smbc.example.test",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    configure(settings.secret_keys)
    database = Database(settings.database_url)
    database.upgrade()
    with database.session() as s:
        s.add(Store(hash="gone42", status="uninstalled", channels=[], sites=[]))
    yield database
    get_settings.cache_clear()
    database.dispose()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("store_hash", ["nope", "gone42"])
def test_a_store_without_the_app_ends_the_command_with_exit_1(
    db: Database, command: tuple[str, ...], store_hash: str
) -> None:
    result = runner.invoke(app, [*command, "--store", store_hash])
    assert result.exit_code == 1, result.output
    assert f"No installed store with hash {store_hash!r} (see `smbc stores`)." in result.output
    with db.session() as s:
        assert s.scalars(select(SettingsChange)).all() == []
