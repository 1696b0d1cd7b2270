"""Account and Platform Settings routes with a minted session token (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, connect_account, make_app, store_row
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import default_location, load_store_settings

ACCOUNT_FORM = {
    "location_1": "main_shop",
    "location_2": "",
    "contact_owner": "team@sandbox.test",
    "double_opt_in_enabled": "on",
    "double_opt_in_template_id": "t-1",
    "double_opt_in_account_id": "a-1",
    "double_opt_in_subject": "Please confirm",
    "opt_in_sync": "on",
}
PLATFORM_FORM = {
    "tags_registration": "new customer, bc",
    "tags_newsletter": "news",
    "tags_purchase": "buyer",
    "tags_guest_purchase": "guest buyer",
    "cart_event_window": "4h",
    "monitoring_cookie_custom": "on",
    "monitoring_cookie_days": "30",
    "ignored_domains": "Temp-Mail.com, 10minutemail.net",
    "product_identifier": "sku",
    "purchase_statuses": ["10", "11"],
    "delete_contact_on_customer_delete": "on",
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """SQLite only."""
    with TestClient(make_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client_b(backend_settings: Settings) -> Iterator[TestClient]:
    """SQLite and PostgreSQL: for what is stored."""
    with TestClient(make_app(backend_settings)) as test_client:
        yield test_client


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def test_every_route_needs_a_session(client: TestClient) -> None:
    for method, path in [
        ("GET", "/app/tabs/account"),
        ("GET", "/app/tabs/platform"),
        ("POST", "/app/account/login"),
        ("POST", "/app/account/login-credentials"),
        ("POST", "/app/account/settings"),
        ("POST", "/app/account/owners/refresh"),
        ("POST", "/app/account/callback-token/rotate"),
        ("POST", "/app/account/logout"),
        ("POST", "/app/platform/settings"),
    ]:
        assert client.request(method, path).status_code == 401, path
        assert client.request(method, path, headers=bearer("forged.token.value")).status_code == 401, path


def test_login_form_while_not_connected(client: TestClient) -> None:
    token = add_store(client.app)
    html = client.get("/app/tabs/account", headers=bearer(token)).text
    assert 'action="/app/account/login"' in html
    for field in ("email", "password", "change_endpoint", "endpoint"):
        assert f'<label for="{field}"' in html or f'for="{field}"' in html
    assert 'value="app2.salesmanago.pl"' in html  # SMBC_SM_DEFAULT_ENDPOINT
    credentials = client.get("/app/tabs/account?mode=credentials", headers=bearer(token)).text
    assert 'action="/app/account/login-credentials"' in credentials
    for field in ("endpoint", "client_id", "api_secret", "owner"):
        assert f'for="{field}"' in credentials


def test_login_form_field_errors_without_network(client: TestClient) -> None:
    token = add_store(client.app)
    response = client.post(
        "/app/account/login", headers=bearer(token), data={"email": "nope", "password": "x"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "email") == "Enter a valid e-mail address."
    response = client.post(
        "/app/account/login",
        headers=bearer(token),
        data={"email": "a@b.com", "password": "x", "change_endpoint": "on", "endpoint": "bad host name"},
    )
    assert response.status_code == 422 and "not a SALESmanago endpoint" in field_error(
        response.text, "endpoint"
    )
    assert 'id="change_endpoint" name="change_endpoint" value="on" checked' in response.text


def test_account_tab_when_connected(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    html = client.get("/app/tabs/account", headers=bearer(token)).text
    assert 'id="sm_client_id" name="sm_client_id" value="cid123" readonly' in html
    assert 'value="http://127.0.0.1:9" readonly' in html
    # One location per storefront channel (not the marketplace), defaulting to sm_ + md5 of its primary URL.
    assert f'value="{default_location("https://main.example.test")}"' in html
    assert f'value="{default_location("https://www.outlet.example.test")}"' in html
    assert "location_3" not in html
    store = store_row(client.app)
    assert (
        f"/callbacks/salesmanago/opt-in?email=$email$&amp;store=abc123&amp;token={store.callback_secret}"
        in html
    )
    assert "/callbacks/salesmanago/opt-out?email=$email$" in html
    assert 'data-copy="#callback_url_opt_in"' in html


def test_account_save_then_reload(client_b: TestClient) -> None:
    client = client_b
    token = add_store(client.app)
    connect_account(client.app)
    response = client.post("/app/account/settings", headers=bearer(token), data=ACCOUNT_FORM)
    assert response.status_code == 200, response.text
    assert "Settings saved." in response.text
    html = client.get("/app/tabs/account", headers=bearer(token)).text
    assert 'value="main_shop"' in html
    assert '<option value="team@sandbox.test" selected>' in html
    assert 'id="double_opt_in_enabled" name="double_opt_in_enabled" value="on" checked' in html
    assert 'value="Please confirm"' in html
    assert 'id="opt_in_sync" name="opt_in_sync" value="on" checked' in html
    with client.app.state.runtime.db.session() as s:
        settings = load_store_settings(s, store_row(client.app).id)
        assert settings.locations == {1: "main_shop"}  # the empty one keeps its default
        keys = {c.key: c.actor for c in s.scalars(select(SettingsChange))}
    assert keys["location.1"] == "merchant@shop.test" and keys["opt_in_sync"] == "merchant@shop.test"


def test_account_save_422_shows_each_error_and_saves_nothing(client_b: TestClient) -> None:
    client = client_b
    token = add_store(client.app)
    connect_account(client.app)
    bad = {
        **ACCOUNT_FORM,
        "location_1": "1 bad",
        "contact_owner": "stranger@x.test",
        "double_opt_in_account_id": "",
    }
    response = client.post("/app/account/settings", headers=bearer(token), data=bad)
    assert response.status_code == 422
    assert "letters, digits and _" in field_error(response.text, "location_1")
    assert "from the list" in field_error(response.text, "contact_owner")
    assert "all three" in field_error(response.text, "double_opt_in_account_id")
    assert 'aria-invalid="true"' in response.text and 'value="1 bad"' in response.text
    with client.app.state.runtime.db.session() as s:
        assert load_store_settings(s, store_row(client.app).id).opt_in_sync is False
        assert s.scalars(select(SettingsChange)).all() == []


def test_platform_save_then_reload_and_other_tab_kept(client_b: TestClient) -> None:
    client = client_b
    token = add_store(client.app)
    connect_account(client.app)
    assert client.post("/app/account/settings", headers=bearer(token), data=ACCOUNT_FORM).status_code == 200
    response = client.post("/app/platform/settings", headers=bearer(token), data=PLATFORM_FORM)
    assert response.status_code == 200 and "Settings saved." in response.text
    html = client.get("/app/tabs/platform", headers=bearer(token)).text
    assert 'value="NEW_CUSTOMER, BC"' in html and 'value="GUEST_BUYER"' in html
    assert '<option value="4h" selected>' in html and '<option value="sku" selected>' in html
    assert 'value="30"' in html and 'value="temp-mail.com, 10minutemail.net"' in html
    assert 'name="purchase_statuses" value="10" checked' in html
    assert 'name="purchase_statuses" value="2">' in html
    with client.app.state.runtime.db.session() as s:
        settings = load_store_settings(s, store_row(client.app).id)
    assert settings.opt_in_sync is True and settings.contact_owner == "team@sandbox.test"  # account tab kept
    assert settings.monitoring_cookie_days == 30 and settings.delete_contact_on_customer_delete is True
    # Saving the account tab again keeps the platform values.
    assert client.post("/app/account/settings", headers=bearer(token), data=ACCOUNT_FORM).status_code == 200
    with client.app.state.runtime.db.session() as s:
        assert load_store_settings(s, store_row(client.app).id).tags_purchase == ["BUYER"]


def test_platform_422(client: TestClient) -> None:
    token = add_store(client.app)
    bad = {
        **PLATFORM_FORM,
        "monitoring_cookie_days": "4000",
        "ignored_domains": "ok.com, not a domain",
        "cart_event_window": "2h",
        "purchase_statuses": [],
    }
    response = client.post("/app/platform/settings", headers=bearer(token), data=bad)
    assert response.status_code == 422
    assert "1 to 3652" in field_error(response.text, "monitoring_cookie_days")
    assert "not a domain" in field_error(response.text, "ignored_domains")
    assert "Choose one of" in field_error(response.text, "cart_event_window")
    assert "at least one" in field_error(response.text, "purchase_statuses")
    empty_days = {**PLATFORM_FORM, "monitoring_cookie_days": ""}
    response = client.post("/app/platform/settings", headers=bearer(token), data=empty_days)
    assert response.status_code == 422 and "1 to 3652" in field_error(response.text, "monitoring_cookie_days")
    with client.app.state.runtime.db.session() as s:
        assert load_store_settings(s, store_row(client.app).id).tags_purchase == []


def test_unticked_cookie_box_means_salesmanago_default(client: TestClient) -> None:
    token = add_store(client.app)
    form = {k: v for k, v in PLATFORM_FORM.items() if k != "monitoring_cookie_custom"}
    assert client.post("/app/platform/settings", headers=bearer(token), data=form).status_code == 200
    with client.app.state.runtime.db.session() as s:
        assert load_store_settings(s, store_row(client.app).id).monitoring_cookie_days is None


def test_rotate_token_changes_the_urls(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    client.get("/app/tabs/account", headers=bearer(token))
    before = store_row(client.app).callback_secret
    html = client.post("/app/account/callback-token/rotate", headers=bearer(token)).text
    after = store_row(client.app).callback_secret
    assert before and after and before != after
    assert f"token={after}" in html and f"token={before}" not in html


def test_owner_fallback_message(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    assert client.post("/app/account/settings", headers=bearer(token), data=ACCOUNT_FORM).status_code == 200
    with client.app.state.runtime.db.session() as s:
        from smbc.account.credentials import get_account

        get_account(s, store_row(client.app).id).owners = ["merchant@sandbox.test"]
    html = client.get("/app/tabs/account", headers=bearer(token)).text
    assert "team@sandbox.test is no longer a user" in html
    assert "Contacts go to merchant@sandbox.test" in html


def test_logout_without_v3_key_pauses_and_shows_login(client_b: TestClient) -> None:
    client = client_b
    token = add_store(client.app)
    connect_account(client.app)
    html = client.post("/app/account/logout", headers=bearer(token)).text
    assert "Logged out of SALESmanago" in html and 'action="/app/account/login"' in html
    assert store_row(client.app).sync_paused_reason == "logged_out"


def test_another_store_is_never_touched(client: TestClient) -> None:
    token = add_store(client.app, "abc123")
    add_store(client.app, "other9", email="someone@else.test")
    connect_account(client.app, "other9")
    html = client.get("/app/tabs/account", headers=bearer(token)).text
    assert 'action="/app/account/login"' in html  # abc123 is not connected, other9's account is not shown
    assert client.post("/app/account/logout", headers=bearer(token)).status_code == 200
    assert store_row(client.app, "other9").sync_paused_reason is None
