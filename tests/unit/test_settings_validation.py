"""Configuration is checked at start: each wrong value is named with the reason, all at once; the
web server refuses to start without the app's BigCommerce credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import ConfigError, get_settings, load_settings


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("queue_url", "amqp://x", "SMBC_QUEUE_URL"),
        ("workers", "forked", "SMBC_WORKERS"),
        ("inline_worker_threads", 0, "SMBC_INLINE_WORKER_THREADS"),
        ("sm_default_endpoint", "app2 salesmanago.pl", "SMBC_SM_DEFAULT_ENDPOINT"),
        ("bc_login_url", "login.bigcommerce.com", "SMBC_BC_LOGIN_URL"),
        ("log_level", "LOUD", "SMBC_LOG_LEVEL"),
    ],
)
def test_each_wrong_value_names_its_variable(
    tmp_path: Path, field: str, value: object, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(var_dir=tmp_path, **{field: value})


def test_every_wrong_value_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(var_dir=tmp_path, database_url="mysql://x", app_url="nope", workers="forked")
    message = str(err.value)
    assert all(name in message for name in ("SMBC_DATABASE_URL", "SMBC_APP_URL", "SMBC_WORKERS"))


def test_urls_lose_their_trailing_slash(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, app_url="https://apps.example.com/", bc_api_url="http://x:1/")
    assert settings.app_url == "https://apps.example.com" and settings.bc_api_url == "http://x:1"


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMBC_WORKERS", "external")
    monkeypatch.setenv("SMBC_QUEUE_URL", "redis://127.0.0.1:6379/3")
    settings = load_settings(var_dir=tmp_path)
    assert settings.workers == "external" and settings.queue_url == "redis://127.0.0.1:6379/3"


def test_bad_environment_stops_the_cli_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMBC_DATABASE_URL", "mysql://x")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "SMBC_DATABASE_URL" in result.output


def test_serve_refuses_to_start_without_client_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMBC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SMBC_DATABASE_URL", f"sqlite:///{tmp_path / 'smbc.db'}")
    monkeypatch.setenv("SMBC_BC_CLIENT_ID", "id")
    monkeypatch.setenv("SMBC_BC_CLIENT_SECRET", "")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "SMBC_BC_CLIENT_SECRET" in result.output
