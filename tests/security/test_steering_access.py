"""Who may steer a store's integration (findings 1 and 7): connecting, disconnecting and re-pointing
SALESmanago, changing the Account tab, naming managers and seeing or rotating the callback token are
for the store owner and the `managers` the owner names; every other user sees the Account tab
read-only, with one line saying who can change it. Removing a manager (from the setting, or their
BigCommerce user) changes the callback token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from integration.sm_account_helpers import add_store, bearer, connect_account, make_app
from smbc.account.models import SalesmanagoAccount
from smbc.actions.settings import save_settings
from smbc.consent.models import ConsentWriteBack
from smbc.core.clock import get_clock
from smbc.core.config import Settings
from smbc.db.models import Store, StoreUser, User
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import SettingsInvalid, load_store_settings
from smbc.stores.access import NOT_ALLOWED

OWNER_EMAIL = "owner@shop.test"
STAFF_EMAIL = "staff@shop.test"
CLIENT_ID = "security-client-id"
CLIENT_SECRET = "security-client-secret-0123456789abcdef"

# Every route that steers the integration, with a form that would otherwise be accepted.
STEERING_ROUTES: list[tuple[str, dict[str, str]]] = [
    (
        "/app/account/login",
        {
            "email": "attacker@evil.test",
            "password": "x",
            "change_endpoint": "on",
            "endpoint": "http://127.0.0.1:9",
        },
    ),
    (
        "/app/account/login-credentials",
        {
            "endpoint": "http://127.0.0.1:9",
            "client_id": "evil",
            "api_secret": "s",
            "owner": "attacker@evil.test",
        },
    ),
    ("/app/account/logout", {}),
    ("/app/account/callback-token/rotate", {}),
    ("/app/account/managers", {"managers": STAFF_EMAIL}),
    ("/app/account/settings", {"location_1": "stolen_shop", "opt_in_sync": "on"}),
    ("/app/account/owners/refresh", {}),
]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"bc_client_id": CLIENT_ID, "bc_client_secret": CLIENT_SECRET})
    with TestClient(make_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def tokens(client: TestClient) -> dict[str, str]:
    """A connected store with its owner and a staff user; their session tokens."""
    owner = add_store(client.app, email=OWNER_EMAIL, role="owner")
    staff = add_store(client.app, email=STAFF_EMAIL, role="user")
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        store.owner_email = OWNER_EMAIL
        store.callback_secret = "original-callback-token"
    connect_account(client.app)
    return {"owner": owner, "staff": staff}


def state(client: TestClient) -> dict[str, Any]:
    """What a steering action would change: the account, the token, the settings and their log."""
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        account = s.scalar(select(SalesmanagoAccount))
        return {
            "account": (account.endpoint, account.client_id, account.login_email) if account else None,
            "token": store.callback_secret,
            "settings": load_store_settings(s, store.id).model_dump(),
            "changes": s.query(SettingsChange).count(),
        }


def test_a_staff_user_cannot_steer_the_integration(client: TestClient, tokens: dict[str, str]) -> None:
    before = state(client)
    for path, form in STEERING_ROUTES:
        response = client.post(path, data=form, headers=bearer(tokens["staff"]))
        assert response.status_code == 403, (path, response.text)
        assert response.json()["detail"] == NOT_ALLOWED
    assert state(client) == before


def test_a_staff_user_sees_the_account_tab_read_only_without_the_token(
    client: TestClient, tokens: dict[str, str]
) -> None:
    html = client.get("/app/tabs/account", headers=bearer(tokens["staff"])).text
    assert "original-callback-token" not in html and "/callbacks/salesmanago" not in html
    assert f"Only the store owner ({OWNER_EMAIL}) can change these settings." in html
    assert "<fieldset" in html and " disabled>" in html
    for action in ("/app/account/logout", "/app/account/callback-token/rotate", "/app/account/managers"):
        assert action not in html
    # The owner sees the token, the managers field and every button.
    owner_html = client.get("/app/tabs/account", headers=bearer(tokens["owner"])).text
    assert "original-callback-token" in owner_html and 'action="/app/account/managers"' in owner_html


def test_a_staff_user_gets_no_login_form_while_not_connected(
    client: TestClient, tokens: dict[str, str]
) -> None:
    with client.app.state.runtime.db.session() as s:
        s.query(SalesmanagoAccount).delete()
    html = client.get("/app/tabs/account", headers=bearer(tokens["staff"])).text
    assert 'action="/app/account/login"' not in html and "password" not in html.lower()
    assert "not connected" in html and "can change these settings" in html
    assert (
        'action="/app/account/login"' in client.get("/app/tabs/account", headers=bearer(tokens["owner"])).text
    )


def test_a_named_manager_may_steer_and_everyone_else_still_may_not(
    client: TestClient, tokens: dict[str, str]
) -> None:
    other = add_store(client.app, email="other@shop.test", role="user")
    answer = client.post(
        "/app/account/managers", data={"managers": "not an e-mail"}, headers=bearer(tokens["owner"])
    )
    assert answer.status_code == 422 and "Not an e-mail address" in answer.text
    answer = client.post(
        "/app/account/managers",
        data={"managers": f" {STAFF_EMAIL.upper()} "},
        headers=bearer(tokens["owner"]),
    )
    assert answer.status_code == 200 and "Managers saved." in answer.text
    staff_html = client.get("/app/tabs/account", headers=bearer(tokens["staff"])).text
    assert "original-callback-token" in staff_html
    assert (
        client.post("/app/account/callback-token/rotate", headers=bearer(tokens["staff"])).status_code == 200
    )
    other_html = client.get("/app/tabs/account", headers=bearer(other)).text
    assert f"and the managers {STAFF_EMAIL} can change these settings" in other_html
    assert client.post("/app/account/logout", headers=bearer(other)).status_code == 403


def test_removing_a_manager_changes_the_callback_token(client: TestClient, tokens: dict[str, str]) -> None:
    db = client.app.state.runtime.db
    save_settings(db, "abc123", {"managers": f"{STAFF_EMAIL}, second@shop.test"}, "operator")
    assert state(client)["token"] == "original-callback-token"  # adding one changes nothing
    answer = client.post(
        "/app/account/managers", data={"managers": STAFF_EMAIL}, headers=bearer(tokens["owner"])
    )
    assert answer.status_code == 200
    first_rotation = state(client)["token"]
    assert first_rotation != "original-callback-token"
    old = client.get(
        "/callbacks/salesmanago/opt-out",
        params={"email": "a@b.co", "store": "abc123", "token": "original-callback-token"},
    )
    assert old.status_code == 403
    # The same from the shell (`smbc settings set managers=`): the CLI runs this action.
    save_settings(db, "abc123", {"managers": ""}, "operator")
    assert state(client)["token"] not in ("original-callback-token", first_rotation)
    with pytest.raises(SettingsInvalid):
        save_settings(db, "abc123", {"managers": "a@b.co, nope"}, "operator")


def signed_payload(user: dict[str, Any]) -> str:
    now = int(get_clock().time())
    claims = {
        "aud": CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        "sub": "stores/abc123",
        "user": user,
        "owner": {"id": 1, "email": OWNER_EMAIL},
        "url": "/",
    }
    return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")


def bc_user(client: TestClient, email: str) -> dict[str, Any]:
    with client.app.state.runtime.db.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        return {"id": user.bc_user_id, "email": email}


def test_removing_a_managers_bigcommerce_user_changes_the_callback_token(
    client: TestClient, tokens: dict[str, str]
) -> None:
    other = add_store(client.app, email="other@shop.test", role="user")
    assert other
    save_settings(client.app.state.runtime.db, "abc123", {"managers": STAFF_EMAIL}, "operator")
    # A user who is not a manager never saw the token: removing them changes nothing.
    removed = client.get(
        "/bigcommerce/remove-user",
        params={"signed_payload_jwt": signed_payload(bc_user(client, "other@shop.test"))},
    )
    assert removed.status_code == 200
    assert state(client)["token"] == "original-callback-token"
    removed = client.get(
        "/bigcommerce/remove-user",
        params={"signed_payload_jwt": signed_payload(bc_user(client, STAFF_EMAIL))},
    )
    assert removed.status_code == 200
    with client.app.state.runtime.db.session() as s:
        assert s.query(StoreUser).count() == 1  # the owner only
    assert state(client)["token"] != "original-callback-token"


def test_the_callback_token_still_works_for_the_store_owner_flow(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """Guard against over-reach: the owner rotates, and the new URL is accepted."""
    answer = client.post("/app/account/callback-token/rotate", headers=bearer(tokens["owner"]))
    assert answer.status_code == 200
    token = state(client)["token"]
    assert token in answer.text
    ok = client.get(
        "/callbacks/salesmanago/opt-in", params={"email": "a@b.co", "store": "abc123", "token": token}
    )
    assert ok.status_code == 200
    with client.app.state.runtime.db.session() as s:
        assert s.query(ConsentWriteBack).count() == 1
