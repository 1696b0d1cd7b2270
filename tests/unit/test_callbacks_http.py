"""The control-panel callbacks over HTTP (TestClient) with a local token endpoint: install, re-auth,
load, uninstall, remove-user, and every bad input answered with an HTML error page that changes
nothing in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from bc_fakes import ALL_SCOPES, OWNER, STAFF, LoginServer
from fastapi.testclient import TestClient
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.remote_calls import record_call
from smbc.db.base import Base
from smbc.db.models import Store, StoreUser, User
from smbc.web.app import create_app

INSTALL = "/bigcommerce/auth"


@pytest.fixture
def client(settings: Settings, login_server: LoginServer) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"bc_login_url": login_server.url, "bc_api_url": login_server.url})
    with TestClient(create_app(settings, start_workers=False)) as test_client:
        yield test_client


def db(client: TestClient):
    return client.app.state.runtime.db


def snapshot(client: TestClient) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refused request changed nothing."""
    with db(client).session() as s:
        return {
            t.name: sorted(map(tuple, s.execute(select(t)).all()), key=repr)
            for t in Base.metadata.sorted_tables
        }


def install(client: TestClient, login_server: LoginServer, store_hash: str = "abc123", **grant):
    code = f"code-{store_hash}-{len(login_server.requests)}"
    login_server.grant(code, store_hash, **grant)
    return client.get(
        INSTALL,
        params={"code": code, "scope": grant.get("scope", ALL_SCOPES), "context": f"stores/{store_hash}"},
    )


def session_token(html: str) -> str:
    match = re.search(r'<meta name="smbc-session" content="([^"]+)"', html)
    assert match, "the page carries no session token"
    return match.group(1)


def store_row(client: TestClient, store_hash: str = "abc123") -> Store:
    with db(client).session() as s:
        return s.scalar(select(Store).where(Store.hash == store_hash))


def test_install_stores_token_secrets_owner_and_shows_onboarding(
    client: TestClient, login_server: LoginServer
) -> None:
    response = install(client, login_server)
    assert response.status_code == 200
    assert "The app is installed" in response.text and "Account Settings" in response.text
    assert "Store owner" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    sent = login_server.requests[-1]
    assert sent["grant_type"] == "authorization_code" and sent["context"] == "stores/abc123"
    assert sent["redirect_uri"].endswith("/bigcommerce/auth")
    store = store_row(client)
    assert store.installed and store.access_token == "access-token-1"
    assert store.webhook_secret and store.callback_secret and store.webhook_secret != store.callback_secret
    assert store.owner_bc_id == OWNER["id"] and "store_v2_customers" in store.scopes.split()
    with db(client).session() as s:
        link = s.scalar(select(StoreUser))
        assert link.role == "owner" and link.user.bc_user_id == OWNER["id"]
    tab = client.get("/app/tabs/export", headers={"Authorization": f"Bearer {session_token(response.text)}"})
    assert tab.status_code == 200 and "Export Data" in tab.text


def test_reauth_replaces_token_and_keeps_secrets(client: TestClient, login_server: LoginServer) -> None:
    install(client, login_server)
    before = store_row(client)
    response = install(client, login_server, token="access-token-2")
    assert response.status_code == 200
    after = store_row(client)
    assert after.access_token == "access-token-2"
    assert (after.webhook_secret, after.callback_secret) == (before.webhook_secret, before.callback_secret)
    assert after.installed_at == before.installed_at


@pytest.mark.parametrize(
    ("params", "status", "text_part"),
    [
        ({"scope": ALL_SCOPES, "context": "stores/abc123"}, 400, "no authorization code"),
        ({"code": "c", "scope": ALL_SCOPES, "context": "nope"}, 400, "does not name a store"),
        ({"code": "c", "scope": ALL_SCOPES}, 400, "does not name a store"),
        ({"code": "unknown-code", "scope": ALL_SCOPES, "context": "stores/abc123"}, 401, "did not accept"),
        (
            {"code": "c", "scope": "store_v2_customers", "context": "stores/abc123"},
            403,
            "store_cart_read_only",
        ),
    ],
)
def test_bad_install_requests_change_nothing(
    client: TestClient, login_server: LoginServer, params: dict, status: int, text_part: str
) -> None:
    install(client, login_server, "other1")
    before = snapshot(client)
    response = client.get(INSTALL, params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text_part in response.text and "<h1" in response.text
    assert snapshot(client) == before


def test_grant_missing_a_scope_is_refused_after_exchange(
    client: TestClient, login_server: LoginServer
) -> None:
    before = snapshot(client)
    login_server.grant("c1", scope="store_v2_customers store_v2_content")
    response = client.get(INSTALL, params={"code": "c1", "context": "stores/abc123"})
    assert response.status_code == 403 and "store_sites_read_only" in response.text
    assert snapshot(client) == before


def test_grant_for_another_store_is_refused(client: TestClient, login_server: LoginServer) -> None:
    before = snapshot(client)
    login_server.grant("c1", "someoneelse")
    response = client.get(INSTALL, params={"code": "c1", "scope": ALL_SCOPES, "context": "stores/abc123"})
    assert response.status_code == 401
    assert snapshot(client) == before


def test_token_endpoint_down_is_a_clear_502(settings: Settings) -> None:
    from smbc.core.http_server import free_port

    settings = settings.model_copy(update={"bc_login_url": f"http://127.0.0.1:{free_port()}"})
    with TestClient(create_app(settings, start_workers=False)) as client:
        response = client.get(INSTALL, params={"code": "c", "scope": ALL_SCOPES, "context": "stores/abc123"})
        assert response.status_code == 502 and "could not reach BigCommerce" in response.text
        assert snapshot(client)["stores"] == []


def test_load_opens_dashboard_and_provisions_new_users(
    client: TestClient, login_server: LoginServer, bc_jwt
) -> None:
    install(client, login_server)
    response = client.get(
        "/bigcommerce/load", params={"signed_payload_jwt": bc_jwt(user=STAFF, url="/export")}
    )
    assert response.status_code == 200
    assert "Store user" in response.text and STAFF["email"] in response.text
    assert 'data-initial-tab="/app/tabs/export"' in response.text
    with db(client).session() as s:
        roles = {link.user.bc_user_id: link.role for link in s.scalars(select(StoreUser))}
        assert roles == {OWNER["id"]: "owner", STAFF["id"]: "user"}
        assert s.scalar(select(User).where(User.bc_user_id == STAFF["id"])).locale == "en-US"
    again = client.get("/bigcommerce/load", params={"signed_payload_jwt": bc_jwt(user=STAFF)})
    assert again.status_code == 200
    assert len(snapshot(client)["store_users"]) == 2


def test_load_ignores_a_deep_link_to_another_host(
    client: TestClient, login_server: LoginServer, bc_jwt
) -> None:
    install(client, login_server)
    response = client.get(
        "/bigcommerce/load", params={"signed_payload_jwt": bc_jwt(url="//evil.example/export")}
    )
    assert response.status_code == 200
    assert 'data-initial-tab="/app/tabs/account"' in response.text
    assert "evil.example" not in response.text


@pytest.mark.parametrize(
    ("token_kind", "status", "text_part"),
    [
        ("missing", 400, "no signed_payload_jwt"),
        ("wrong-key", 401, "signature"),
        ("unknown-store", 403, "not installed"),
    ],
)
def test_bad_loads_change_nothing(
    client: TestClient, login_server: LoginServer, bc_jwt, token_kind: str, status: int, text_part: str
) -> None:
    from bc_fakes import bc_claims, sign

    install(client, login_server)
    before = snapshot(client)
    token = {
        "missing": None,
        "wrong-key": sign(bc_claims(user=STAFF), key="x" * 32),
        "unknown-store": bc_jwt("nostore", user=STAFF),
    }[token_kind]
    response = client.get("/bigcommerce/load", params={"signed_payload_jwt": token} if token else {})
    assert response.status_code == status and text_part in response.text
    assert "control panel" in response.text
    assert snapshot(client) == before


def test_uninstall_wipes_secrets_keeps_history_and_reinstall_gets_new_token(
    client: TestClient, login_server: LoginServer, bc_jwt
) -> None:
    page = install(client, login_server)
    token = session_token(page.text)
    store_id = store_row(client).id
    with db(client).session() as s:
        record_call(
            s, store_id=store_id, service="bigcommerce", method="GET", endpoint="/v2/store", outcome="success"
        )
    assert client.get("/bigcommerce/uninstall", params={"signed_payload_jwt": bc_jwt()}).status_code == 200
    store = store_row(client)
    assert store.status == "uninstalled" and store.uninstalled_at is not None
    assert (store.access_token, store.webhook_secret, store.callback_secret) == (None, None, None)
    assert store.sync_paused_reason == "uninstalled"
    assert len(snapshot(client)["remote_calls"]) == 1
    # A dashboard session minted before the uninstall stops working.
    assert client.get("/app/tabs/export", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    load = client.get("/bigcommerce/load", params={"signed_payload_jwt": bc_jwt()})
    assert load.status_code == 403

    assert install(client, login_server, token="access-token-new").status_code == 200
    again = store_row(client)
    assert again.id == store_id and again.installed and again.access_token == "access-token-new"
    assert again.webhook_secret and again.sync_paused_reason is None
    assert len(snapshot(client)["remote_calls"]) == 1


def test_uninstall_with_a_forged_payload_changes_nothing(
    client: TestClient, login_server: LoginServer
) -> None:
    from bc_fakes import bc_claims, sign

    install(client, login_server)
    before = snapshot(client)
    forged = sign(bc_claims(), key="not-our-secret-not-our-secret-!!")
    assert client.get("/bigcommerce/uninstall", params={"signed_payload_jwt": forged}).status_code == 401
    assert snapshot(client) == before


def test_remove_user_unlinks_only_that_user(client: TestClient, login_server: LoginServer, bc_jwt) -> None:
    install(client, login_server)
    staff_page = client.get("/bigcommerce/load", params={"signed_payload_jwt": bc_jwt(user=STAFF)})
    staff_token = session_token(staff_page.text)
    headers = {"Authorization": f"Bearer {staff_token}"}
    assert client.get("/app/tabs/activity", headers=headers).status_code == 200
    response = client.get("/bigcommerce/remove-user", params={"signed_payload_jwt": bc_jwt(user=STAFF)})
    assert response.status_code == 200
    with db(client).session() as s:
        assert [link.user.bc_user_id for link in s.scalars(select(StoreUser))] == [OWNER["id"]]
        assert s.scalar(select(User).where(User.bc_user_id == STAFF["id"])) is None
    assert client.get("/app/tabs/activity", headers=headers).status_code == 401
