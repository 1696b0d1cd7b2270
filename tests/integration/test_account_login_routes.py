"""Logging in from the Account Settings tab and from `smbc sm login|logout`, against the fake
SALESmanago over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, make_app, store_row
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.account.credentials import get_account
from smbc.account.login import MSG_TWO_FACTOR, MSG_WRONG_LOGIN
from smbc.cli.main import app as cli_app
from smbc.core.config import Settings, get_settings
from smbc.core.http_server import BackgroundServer
from smbc.db.models import Store
from smbc.sandbox.salesmanago import FakeSalesmanago


@pytest.fixture
def fake_sm() -> Iterator[tuple[object, str]]:
    sm = FakeSalesmanago()
    with BackgroundServer(sm.app) as server:
        sm.bind(server.url)
        yield sm, server.url


@pytest.fixture
def client(fake_sm: tuple[object, str], settings: Settings) -> Iterator[TestClient]:
    _, url = fake_sm
    app = make_app(
        settings.model_copy(update={"sm_default_endpoint": url, "sm_v3_url": url, "sm_endpoint_hosts": url})
    )
    with TestClient(app) as test_client:
        yield test_client


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_login_from_the_tab_then_settings_then_logout(client: TestClient, fake_sm) -> None:
    sm, url = fake_sm
    token = add_store(client.app)
    response = client.post(
        "/app/account/login",
        headers=bearer(token),
        data={"email": sm.NORMAL.email, "password": FakeSalesmanago.PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert "Connected to SALESmanago." in response.text
    assert (
        f'value="{sm.NORMAL.client_id}" readonly' in response.text
        and f'value="{url}" readonly' in response.text
    )
    for owner in sm.NORMAL.owners:
        assert f'<option value="{owner}"' in response.text
    refreshed = client.post("/app/account/owners/refresh", headers=bearer(token))
    assert "Owners list refreshed: 3 users." in refreshed.text
    out = client.post("/app/account/logout", headers=bearer(token))
    assert "Logged out of SALESmanago" in out.text and 'action="/app/account/login"' in out.text
    assert sm.v3_keys(sm.NORMAL.client_id) == []
    assert store_row(client.app).sync_paused_reason == "logged_out"


def test_wrong_password_shown_at_the_field(client: TestClient, fake_sm) -> None:
    sm, _ = fake_sm
    token = add_store(client.app)
    response = client.post(
        "/app/account/login", headers=bearer(token), data={"email": sm.NORMAL.email, "password": "nope"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "password") == MSG_WRONG_LOGIN
    assert f'value="{sm.NORMAL.email}"' in response.text and "nope" not in response.text


def test_two_factor_then_api_credentials(client: TestClient, fake_sm) -> None:
    sm, url = fake_sm
    token = add_store(client.app)
    response = client.post(
        "/app/account/login",
        headers=bearer(token),
        data={"email": sm.TWO_FACTOR.email, "password": FakeSalesmanago.PASSWORD},
    )
    assert response.status_code == 422
    assert "two-factor authentication" in response.text and "banner--danger" in response.text
    assert MSG_TWO_FACTOR.split("“")[0] in response.text
    bad = client.post(
        "/app/account/login-credentials",
        headers=bearer(token),
        data={
            "endpoint": url,
            "client_id": sm.TWO_FACTOR.client_id,
            "api_secret": "wrong",
            "owner": sm.TWO_FACTOR.email,
        },
    )
    assert bad.status_code == 422 and field_error(bad.text, "api_secret")
    assert 'action="/app/account/login-credentials"' in bad.text
    good = client.post(
        "/app/account/login-credentials",
        headers=bearer(token),
        data={
            "endpoint": url,
            "client_id": sm.TWO_FACTOR.client_id,
            "api_secret": sm.TWO_FACTOR.api_secret,
            "owner": sm.TWO_FACTOR.email,
        },
    )
    assert good.status_code == 200 and "with API credentials" in good.text


def test_cli_login_show_logout(client: TestClient, fake_sm, settings: Settings, monkeypatch) -> None:
    sm, url = fake_sm
    add_store(client.app)
    for name, value in {
        "SMBC_DATABASE_URL": settings.database_url,
        "SMBC_QUEUE_URL": settings.queue_url,
        "SMBC_SECRET_KEY": settings.secret_key,
        "SMBC_VAR_DIR": str(settings.var_dir),
        "SMBC_SM_V3_URL": url,
        "SMBC_SM_ENDPOINT_HOSTS": url,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        wrong = runner.invoke(
            cli_app,
            [
                "sm",
                "login",
                "--store",
                "abc123",
                "--email",
                sm.NORMAL.email,
                "--password",
                "x",
                "--endpoint",
                url,
            ],
        )
        assert wrong.exit_code == 1 and MSG_WRONG_LOGIN in wrong.output
        result = runner.invoke(
            cli_app,
            [
                "sm",
                "login",
                "--store",
                "abc123",
                "--email",
                sm.NORMAL.email,
                "--password",
                FakeSalesmanago.PASSWORD,
                "--endpoint",
                url,
            ],
        )
        assert result.exit_code == 0, result.output
        assert f"client {sm.NORMAL.client_id}" in result.output
        keys = json.loads(runner.invoke(cli_app, ["settings", "show", "--store", "abc123", "--json"]).output)
        assert (keys["sm.connected"], keys["sm.client_id"], keys["sm.endpoint"]) == (
            "true",
            sm.NORMAL.client_id,
            url,
        )
        out = runner.invoke(cli_app, ["sm", "logout", "--store", "abc123"])
        assert out.exit_code == 0 and "paused" in out.output
        assert sm.v3_keys(sm.NORMAL.client_id) == []
        creds = runner.invoke(
            cli_app,
            [
                "sm",
                "login",
                "--store",
                "abc123",
                "--endpoint",
                url,
                "--client-id",
                sm.TWO_FACTOR.client_id,
                "--api-secret",
                sm.TWO_FACTOR.api_secret,
                "--owner",
                sm.TWO_FACTOR.email,
            ],
        )
        assert creds.exit_code == 0, creds.output
        mixed = runner.invoke(
            cli_app, ["sm", "login", "--store", "abc123", "--email", "a@b.c", "--client-id", "x"]
        )
        assert mixed.exit_code == 2 and "not both" in mixed.output
    finally:
        get_settings.cache_clear()
    with client.app.state.runtime.db.session() as s:
        account = get_account(s, store_row(client.app).id)
        assert account is not None and account.auth_mode == "credentials"
        assert s.scalar(select(type(account).client_id)) == sm.TWO_FACTOR.client_id


def test_login_resumes_deliveries_that_waited_while_logged_out(client: TestClient, fake_sm) -> None:
    from smbc.realtime.models import WebhookDelivery

    sm, _ = fake_sm
    token = add_store(client.app)
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        store.sync_paused_reason = "logged_out"
        s.add(
            WebhookDelivery(
                store_id=store.id, scope="store/customer/created", hash="h1", created_at=1, status="waiting"
            )
        )
    response = client.post(
        "/app/account/login",
        headers=bearer(token),
        data={"email": sm.NORMAL.email, "password": FakeSalesmanago.PASSWORD},
    )
    assert response.status_code == 200
    assert store_row(client.app).sync_paused_reason is None
    with client.app.state.runtime.db.session() as s:
        assert s.scalar(select(WebhookDelivery.status)) == "pending"
