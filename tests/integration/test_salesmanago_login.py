"""Logging in, refreshing owners and logging out against the fake SALESmanago over HTTP
(SQLite and PostgreSQL): each login path and each failure message, nothing saved on failure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from smbc.account import login as sm_login
from smbc.account.credentials import get_account, salesmanago_client
from smbc.account.login import (
    LoginFailed,
    login_with_api_credentials,
    login_with_password,
    logout,
    refresh_owners,
)
from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.core.encryption import configure
from smbc.core.http_server import BackgroundServer, free_port
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.salesmanago.client import CallAttempt
from smbc.salesmanago.endpoints import EndpointAllowlist
from smbc.sandbox.salesmanago import FakeSalesmanago
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import load_store_settings, save_store_settings


def not_recorded(attempt: CallAttempt) -> None:
    """The tests' own calls through the stored credentials are not the login's: not recorded."""


@dataclass
class World:
    sm: FakeSalesmanago
    sm_url: str
    db: Database
    settings: Settings
    store_id: int

    def store(self, session) -> Store:
        return session.get(Store, self.store_id)

    @property
    def allowlist(self) -> EndpointAllowlist:
        return EndpointAllowlist.parse(self.settings.sm_endpoint_hosts)


def _world(fake_sm: tuple[FakeSalesmanago, str], base: Settings) -> Iterator[World]:
    sm, url = fake_sm
    settings = base.model_copy(
        update={"sm_default_endpoint": url, "sm_v3_url": url, "sm_endpoint_hosts": url}
    )
    configure(settings.secret_keys)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        store = Store(hash="abc123", sync_paused_reason="logged_out")
        s.add(store)
        s.flush()
        store_id = store.id
    yield World(sm, url, db, settings, store_id)
    db.dispose()


@pytest.fixture
def w(fake_sm: tuple[FakeSalesmanago, str], settings: Settings) -> Iterator[World]:
    """SQLite only: for the remote-call behaviour."""
    yield from _world(fake_sm, settings)


@pytest.fixture
def wb(fake_sm: tuple[FakeSalesmanago, str], backend_settings: Settings) -> Iterator[World]:
    """SQLite and PostgreSQL: for what is stored."""
    yield from _world(fake_sm, backend_settings)


def password_login(w: World, email: str | None = None, password: str = FakeSalesmanago.PASSWORD, **kw):
    return login_with_password(
        w.db,
        w.store_id,
        email=email or w.sm.NORMAL.email,
        password=password,
        endpoint=kw.pop("endpoint", None),
        settings=kw.pop("settings", w.settings),
        actor="merchant@shop.test",
    )


def failed_login(w: World, **kw) -> LoginFailed:
    with pytest.raises(LoginFailed) as info:
        password_login(w, **kw)
    assert_nothing_saved(w)
    return info.value


def assert_nothing_saved(w: World) -> None:
    with w.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SalesmanagoAccount)) == 0
        assert s.scalar(select(func.count()).select_from(SettingsChange)) == 0
        assert w.store(s).sync_paused_reason == "logged_out"


# -- e-mail and password ---------------------------------------------------------------------------------


def test_password_login_saves_the_account_and_the_client_works(wb: World) -> None:
    w = wb
    result = password_login(w)
    assert result.warnings == []
    normal = w.sm.NORMAL
    with w.db.session() as s:
        account = get_account(s, w.store_id)
        assert (account.client_id, account.endpoint, account.auth_mode) == (
            normal.client_id,
            w.sm_url,
            "login",
        )
        assert account.owners == normal.owners and account.smapp == "2" and account.token
        assert account.login_email == normal.email
        assert [k["apiKey"] for k in w.sm.v3_keys(normal.client_id)] == [account.v3_key]
        store = w.store(s)
        assert store.sync_paused_reason is None and store.callback_secret
        assert load_store_settings(s, w.store_id).contact_owner == normal.email
        changes = {c.key for c in s.scalars(select(SettingsChange))}
        assert changes == {"contact_owner", "sm.connected"}
        calls = s.scalars(select(RemoteCall).order_by(RemoteCall.id)).all()
        assert [c.endpoint for c in calls] == [
            "/api/authorization/token",
            "/api/account/integration",
            "/api/user/listByClient",
            "/v3/auth/create",
        ]
        assert {c.context for c in calls} == {"login"} and {c.outcome for c in calls} == {"success"}
        # The stored credentials work for the realtime pipeline.
        client = salesmanago_client(s, store, recorder=not_recorded, allowlist=w.allowlist)
    contact_id = client.upsert_contact({"contact": {"email": "jan@example.com", "name": "Jan"}})
    assert w.sm.contact(normal.client_id, "jan@example.com")["contactId"] == contact_id
    for call in w.sm.calls:  # the fake records bodies with secrets redacted; ours never held the password
        assert FakeSalesmanago.PASSWORD not in str(call["body"])


def test_custom_endpoint_is_used(w: World) -> None:
    settings = w.settings.model_copy(update={"sm_default_endpoint": "unused.invalid"})
    password_login(w, endpoint=w.sm_url, settings=settings)
    with w.db.session() as s:
        assert get_account(s, w.store_id).endpoint == w.sm_url


def test_wrong_password(wb: World) -> None:
    w = wb
    error = failed_login(w, password="wrong-password")
    assert (error.field, error.message) == ("password", sm_login.MSG_WRONG_LOGIN)
    error = failed_login(w, email="nobody@sandbox.test")
    assert error.message == sm_login.MSG_WRONG_LOGIN


def test_two_factor_points_to_the_credentials_form(w: World) -> None:
    error = failed_login(w, email=w.sm.TWO_FACTOR.email)
    assert error.message == sm_login.MSG_TWO_FACTOR and error.field is None
    assert "Use API credentials instead" in error.message


def test_inactive_account(w: World) -> None:
    error = failed_login(w, email=w.sm.INACTIVE.email)
    assert error.message == sm_login.MSG_INACTIVE and "Customer Success" in error.message


def allowing(w: World, *entries: str) -> Settings:
    """The world's settings with more SMBC_SM_ENDPOINT_HOSTS entries."""
    return w.settings.model_copy(
        update={"sm_endpoint_hosts": ",".join([w.settings.sm_endpoint_hosts, *entries])}
    )


def test_endpoint_that_does_not_answer(w: World) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    error = failed_login(w, endpoint=closed, settings=allowing(w, closed))
    assert error.field == "endpoint"
    assert error.message == sm_login.MSG_UNREACHABLE.format(host=closed.removeprefix("http://"))
    unknown = "no-such-host.salesmanago.invalid"
    error = failed_login(w, endpoint=unknown, settings=allowing(w, "*.salesmanago.invalid"))
    assert error.field == "endpoint" and f"{unknown} does not resolve or does not answer" in error.message


@pytest.mark.parametrize(
    "answer",
    [
        HTMLResponse("<html><body>Welcome to nginx</body></html>"),
        HTMLResponse("<html>Not Found</html>", status_code=404),
        JSONResponse({"status": "ok", "service": "something else"}),
    ],
)
def test_endpoint_that_is_not_salesmanago(w: World, answer) -> None:
    other = Starlette(routes=[Route("/{path:path}", lambda request: answer, methods=["GET", "POST"])])
    with BackgroundServer(other) as server:
        error = failed_login(w, endpoint=server.url, settings=allowing(w, server.url))
    assert error.field == "endpoint"
    assert "not like a SALESmanago server" in error.message and "app3.salesmanago.com" in error.message


def test_salesmanago_down(w: World) -> None:
    w.sm.faults.down = True
    error = failed_login(w)
    assert error.message == sm_login.MSG_DOWN.format(detail="HTTP 503")
    w.sm.faults.down = False
    w.sm.fail_next(2, 500)  # both attempts of the first step
    assert "HTTP 500" in failed_login(w).message


def test_a_transient_error_is_retried(w: World) -> None:
    w.sm.fail_next(1, 502)
    password_login(w)
    with w.db.session() as s:
        token_calls = s.scalars(
            select(RemoteCall).where(RemoteCall.endpoint == "/api/authorization/token")
        ).all()
        assert [(c.attempt, c.outcome) for c in token_calls] == [(1, "retry"), (2, "success")]


def test_v3_key_failure_is_not_fatal(w: World) -> None:
    settings = w.settings.model_copy(update={"sm_v3_url": f"http://127.0.0.1:{free_port()}"})
    result = password_login(w, settings=settings)
    assert len(result.warnings) == 1 and "API v3 key" in result.warnings[0]
    with w.db.session() as s:
        account = get_account(s, w.store_id)
        assert account is not None and account.v3_key is None


def test_bad_input_is_refused_before_any_call(w: World) -> None:
    assert failed_login(w, email="not-an-email").field == "email"
    assert failed_login(w, password="").field == "password"
    assert failed_login(w, endpoint="has spaces.com").field == "endpoint"
    assert w.sm.calls == []


# -- API credentials ---------------------------------------------------------------------------------------


def credentials_login(w: World, **overrides: str):
    account = w.sm.TWO_FACTOR
    values = {
        "endpoint": w.sm_url,
        "client_id": account.client_id,
        "api_secret": account.api_secret,
        "owner": account.email,
    }
    values.update(overrides)
    return login_with_api_credentials(
        w.db, w.store_id, settings=w.settings, actor="merchant@shop.test", **values
    )


def test_credentials_login_for_two_factor_accounts(wb: World) -> None:
    w = wb
    credentials_login(w, owner="Team@sandbox.test")
    account = w.sm.TWO_FACTOR
    with w.db.session() as s:
        saved = get_account(s, w.store_id)
        assert (saved.client_id, saved.auth_mode, saved.owners) == (
            account.client_id,
            "credentials",
            account.owners,
        )
        assert saved.token is None and saved.v3_key is None
        assert account.api_secret not in (saved.api_key, saved.sha)
        client = salesmanago_client(s, w.store(s), recorder=not_recorded, allowlist=w.allowlist)
    client.upsert_contact({"contact": {"email": "ann@example.com"}})
    assert w.sm.contact(account.client_id, "ann@example.com") is not None


def test_credentials_login_failures(w: World) -> None:
    with pytest.raises(LoginFailed) as info:
        credentials_login(w, api_secret="wrong")
    assert (info.value.field, info.value.message) == ("api_secret", sm_login.MSG_BAD_API_CREDENTIALS)
    with pytest.raises(LoginFailed) as info:
        credentials_login(w, owner="stranger@sandbox.test")
    assert info.value.field == "owner" and "2fa@sandbox.test, team@sandbox.test" in info.value.message
    with pytest.raises(LoginFailed) as info:
        credentials_login(w, client_id="")
    assert info.value.field == "client_id"
    with pytest.raises(LoginFailed) as info:
        credentials_login(
            w,
            client_id=w.sm.INACTIVE.client_id,
            api_secret=w.sm.INACTIVE.api_secret,
            owner=w.sm.INACTIVE.email,
        )
    assert info.value.message == sm_login.MSG_INACTIVE
    assert_nothing_saved(w)


# -- owners and logout ------------------------------------------------------------------------------------


def test_refresh_owners_and_fallback_when_the_owner_disappears(wb: World) -> None:
    w = wb
    password_login(w)
    normal = w.sm.NORMAL
    with w.db.session() as s:
        save_store_settings(s, w.store_id, {"contact_owner": "sales@sandbox.test"}, "merchant@shop.test")
    w.sm.remove_owner(normal.client_id, "sales@sandbox.test")
    refreshed = refresh_owners(w.db, w.store_id, allowlist=w.allowlist)
    assert refreshed.owners == ["merchant@sandbox.test", "support@sandbox.test"]
    assert refreshed.fell_back_from == "sales@sandbox.test"
    with w.db.session() as s:
        assert get_account(s, w.store_id).owners == refreshed.owners
        client = salesmanago_client(s, w.store(s), recorder=not_recorded, allowlist=w.allowlist)
        assert client.credentials.owner == normal.email  # the login e-mail, not the vanished owner
    client.upsert_contact({"contact": {"email": "kim@example.com"}})
    assert w.sm.contact(normal.client_id, "kim@example.com") is not None


def test_refresh_owners_with_broken_credentials(w: World) -> None:
    password_login(w)
    w.sm.revoke_credentials(w.sm.NORMAL.client_id)
    with pytest.raises(LoginFailed) as info:
        refresh_owners(w.db, w.store_id, allowlist=w.allowlist)
    assert info.value.message == sm_login.MSG_CREDENTIALS_BROKEN


def test_logout_revokes_the_key_wipes_and_pauses(wb: World) -> None:
    w = wb
    password_login(w)
    normal = w.sm.NORMAL
    assert len(w.sm.v3_keys(normal.client_id)) == 1
    result = logout(w.db, w.store_id, settings=w.settings, actor="merchant@shop.test")
    assert result.was_connected and result.warnings == []
    assert w.sm.v3_keys(normal.client_id) == []
    with w.db.session() as s:
        assert get_account(s, w.store_id) is None
        assert w.store(s).sync_paused_reason == "logged_out"
        last = s.scalars(select(SettingsChange).order_by(SettingsChange.id.desc())).first()
        assert (last.key, last.new_value, last.actor) == ("sm.connected", "false", "merchant@shop.test")
        from smbc.core.remote_calls import RemoteCallError

        with pytest.raises(RemoteCallError):
            salesmanago_client(s, w.store(s), recorder=not_recorded, allowlist=w.allowlist)
    # Logging in again lifts the pause.
    password_login(w)
    with w.db.session() as s:
        assert w.store(s).sync_paused_reason is None


def test_logout_when_salesmanago_is_down_still_wipes(w: World) -> None:
    password_login(w)
    w.sm.faults.down = True
    result = logout(w.db, w.store_id, settings=w.settings, actor="x")
    assert result.was_connected and "did not revoke the API v3 key" in result.warnings[0]
    with w.db.session() as s:
        assert get_account(s, w.store_id) is None
