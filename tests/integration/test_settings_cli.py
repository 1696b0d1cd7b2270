"""`smbc settings show|set` with Typer's CliRunner (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.account.models import SalesmanagoAccount
from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.encryption import configure
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import SETTINGS_KEYS, default_location

runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """SQLite only."""
    yield from _cli_env(settings, monkeypatch)


@pytest.fixture
def cli_env_b(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """SQLite and PostgreSQL: for what is stored."""
    yield from _cli_env(backend_settings, monkeypatch)


def _cli_env(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    for name, value in {
        "SMBC_DATABASE_URL": backend_settings.database_url,
        "SMBC_QUEUE_URL": backend_settings.queue_url,
        "SMBC_SECRET_KEY": backend_settings.secret_key,
        "SMBC_VAR_DIR": str(backend_settings.var_dir),
        "SMBC_APP_URL": "https://smbc.example.test",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    configure(backend_settings.secret_keys)
    db = Database(backend_settings.database_url)
    db.upgrade()
    with db.session() as s:
        s.add(
            Store(
                hash="abc123",
                channels=[{"id": 1, "name": "Main", "type": "storefront"}],
                sites=[{"channel_id": 1, "url": "https://main.example.test"}],
            )
        )
    yield db
    get_settings.cache_clear()
    db.dispose()


def test_show_lists_every_key_and_the_read_only_ones(cli_env: Database) -> None:
    result = runner.invoke(app, ["settings", "show", "--store", "abc123", "--json"])
    assert result.exit_code == 0, result.output
    keys = json.loads(result.output)
    for key in (*SETTINGS_KEYS, "location.1", *("sm.client_id", "sm.endpoint", "sm.connected")):
        assert key in keys
    assert keys["location.1"] == default_location("https://main.example.test")
    assert keys["sm.connected"] == "false" and keys["cart_event_window"] == "12h"
    assert keys["callback_url.opt_in"].startswith(
        "https://smbc.example.test/callbacks/salesmanago/opt-in?email=$email$&store=abc123&token="
    )
    assert keys["callback_url.opt_out"].startswith("https://smbc.example.test/callbacks/salesmanago/opt-out?")
    text = runner.invoke(app, ["settings", "show", "--store", "abc123"])
    assert text.exit_code == 0 and "cart_event_window" in text.output and "12h" in text.output


def test_show_connected_account(cli_env_b: Database) -> None:
    cli_env = cli_env_b
    with cli_env.session() as s:
        store = s.scalar(select(Store))
        s.add(
            SalesmanagoAccount(
                store_id=store.id,
                endpoint="https://app3.salesmanago.com",
                client_id="cid9",
                api_key="k",
                sha="s",
                login_email="m@x.com",
                owners=["m@x.com"],
                auth_mode="login",
            )
        )
    keys = json.loads(runner.invoke(app, ["settings", "show", "--store", "abc123", "--json"]).output)
    assert (keys["sm.client_id"], keys["sm.endpoint"], keys["sm.connected"]) == (
        "cid9",
        "https://app3.salesmanago.com",
        "true",
    )
    # The owner must be one of the account's users.
    result = runner.invoke(app, ["settings", "set", "--store", "abc123", "contact_owner=x@y.com"])
    assert result.exit_code == 1 and "from the list" in result.output


def test_set_validates_normalises_and_logs(cli_env_b: Database) -> None:
    cli_env = cli_env_b
    result = runner.invoke(
        app,
        [
            "settings",
            "set",
            "--store",
            "abc123",
            "tags.purchase=vip buyer, vip buyer",
            "cart_event_window=1h",
            "location.1=my_shop",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tags.purchase: '' -> 'VIP_BUYER'" in result.output
    keys = json.loads(runner.invoke(app, ["settings", "show", "--store", "abc123", "--json"]).output)
    assert (keys["tags.purchase"], keys["cart_event_window"], keys["location.1"]) == (
        "VIP_BUYER",
        "1h",
        "my_shop",
    )
    with cli_env.session() as s:
        actors = {c.actor for c in s.scalars(select(SettingsChange))}
    assert len(actors) == 1 and next(iter(actors)).startswith("cli")


def test_set_refuses_bad_values_and_saves_nothing(cli_env_b: Database) -> None:
    result = runner.invoke(
        app,
        [
            "settings",
            "set",
            "--store",
            "abc123",
            "tags.purchase=ok",
            "monitoring_cookie_days=0",
            "location.1=1x",
        ],
    )
    assert result.exit_code == 1
    assert "monitoring_cookie_days: Enter a whole number of days from 1 to 3652." in result.output
    assert "location.1:" in result.output and "Nothing was saved." in result.output
    keys = json.loads(runner.invoke(app, ["settings", "show", "--store", "abc123", "--json"]).output)
    assert keys["tags.purchase"] == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nonsense"], "write KEY=VALUE"),
        (["sm.client_id=x"], "read-only"),
        (["no.such.key=1"], "Unknown setting"),
        (["location.9=shop_x"], "no storefront channel 9"),
    ],
)
def test_set_errors(cli_env: Database, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["settings", "set", "--store", "abc123", *args])
    assert result.exit_code != 0 and message in result.output


def test_unknown_store(cli_env: Database) -> None:
    result = runner.invoke(app, ["settings", "show", "--store", "nope"])
    assert result.exit_code == 1 and "No installed store" in result.output
