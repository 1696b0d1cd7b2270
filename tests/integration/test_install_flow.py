"""Install, open, uninstall and re-install the real app over HTTP against the sandbox BigCommerce,
on SQLite + SQLite queue and on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from sqlalchemy import func, select

from app_stack import CLIENT_SECRET, AppStack
from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import StoreUser
from support import wait_for

OWNER_ID, STAFF_ID = 1001, 1002


@pytest.fixture
def stack(backend_settings: Settings) -> Iterator[AppStack]:
    with AppStack(backend_settings) as running:
        yield running


def set_up(stack: AppStack) -> None:
    wait_for(lambda: stack.store().setup_completed_at, "the store's set-up job", timeout=60)


def links(stack: AppStack) -> dict[int, str]:
    with stack.runtime.db.session() as s:
        return {link.user.bc_user_id: link.role for link in s.scalars(select(StoreUser))}


def sm_account(stack: AppStack) -> SalesmanagoAccount | None:
    with stack.runtime.db.session() as s:
        return s.scalar(select(SalesmanagoAccount))


def call_count(stack: AppStack) -> int:
    with stack.runtime.db.session() as s:
        return s.scalar(select(func.count()).select_from(RemoteCall))


def test_install_load_uninstall_reinstall(stack: AppStack) -> None:
    bc, store_hash = stack.sb.bc, stack.store_hash
    installed = bc.install(store_hash)
    assert installed.status_code == 200
    assert "The app is installed" in installed.text and "Store owner" in installed.text

    set_up(stack)
    store = stack.store()
    assert store.access_token == bc.access_token(store_hash)
    assert store.store_id == str(bc.store(store_hash).store_id)
    assert store.info["name"] and {c["id"] for c in store.channels} >= {1, 2}
    assert {s["id"] for s in store.sites} >= {1000}
    assert links(stack) == {OWNER_ID: "owner"}
    history = call_count(stack)
    assert history >= 3  # the set-up's calls are recorded

    opened = bc.load(store_hash)
    assert opened.status_code == 200 and "Store owner" in opened.text
    token = stack.session_token(opened.text)
    assert stack.get("/app/tabs/activity", token=token).status_code == 200
    assert stack.get("/app/tabs/activity").status_code == 401

    sm = stack.sb.sm.NORMAL
    login = stack.post("/app/account/login", token=token, data={"email": sm.email, "password": sm.password})
    assert login.status_code == 200 and "Connected to SALESmanago" in login.text
    assert sm_account(stack) is not None

    old_token = store.access_token
    assert bc.uninstall(store_hash).status_code == 200
    assert sm_account(stack) is None  # SALESmanago credentials are gone too
    gone = stack.store()
    assert gone.status == "uninstalled" and gone.uninstalled_at is not None
    assert (gone.access_token, gone.webhook_secret, gone.callback_secret) == (None, None, None)
    assert gone.sync_paused_reason == "uninstalled"
    assert stack.get("/app/tabs/activity", token=token).status_code == 401
    assert bc.load(store_hash).status_code == 403

    again = bc.install(store_hash)
    assert again.status_code == 200
    back = stack.store()
    assert back.id == store.id and back.status == "installed"
    assert back.access_token == bc.access_token(store_hash) and back.access_token != old_token
    assert back.webhook_secret and back.callback_secret
    assert back.installed_at >= store.installed_at
    set_up(stack)
    # History from before the uninstall is still there (a re-install does not resend it).
    assert call_count(stack) >= history + 3


def test_two_users_and_remove_user(stack: AppStack) -> None:
    bc, store_hash = stack.sb.bc, stack.store_hash
    assert bc.install(store_hash).status_code == 200
    staff_page = bc.load(store_hash, user_id=STAFF_ID, url="/export")
    assert staff_page.status_code == 200
    assert "Store user" in staff_page.text and 'data-initial-tab="/app/tabs/export"' in staff_page.text
    owner_page = bc.load(store_hash, user_id=OWNER_ID)
    assert "Store owner" in owner_page.text
    assert links(stack) == {OWNER_ID: "owner", STAFF_ID: "user"}

    staff_token = stack.session_token(staff_page.text)
    owner_token = stack.session_token(owner_page.text)
    assert stack.get("/app/tabs/export", token=staff_token).status_code == 200

    assert bc.remove_user(store_hash, user_id=STAFF_ID).status_code == 200
    assert links(stack) == {OWNER_ID: "owner"}
    assert stack.get("/app/tabs/export", token=staff_token).status_code == 401
    assert stack.get("/app/tabs/export", token=owner_token).status_code == 200
    # Opening the app again makes the user known again (BigCommerce only loads allowed users).
    assert bc.load(store_hash, user_id=STAFF_ID).status_code == 200
    assert links(stack) == {OWNER_ID: "owner", STAFF_ID: "user"}


def test_reauth_after_scope_change_stores_the_new_token(stack: AppStack) -> None:
    bc, store_hash = stack.sb.bc, stack.store_hash
    assert bc.install(store_hash).status_code == 200
    first = stack.store()
    bc.set_app_scopes([*bc.app_scopes, "store_v2_products_read_only"])
    assert bc.access_token(store_hash) is None or bc.access_token(store_hash) != first.access_token
    assert bc.install(store_hash).status_code == 200
    second = stack.store()
    assert second.access_token == bc.access_token(store_hash) and second.access_token != first.access_token
    assert "store_v2_products_read_only" in second.scopes.split()
    assert (second.webhook_secret, second.callback_secret) == (first.webhook_secret, first.callback_secret)
    assert second.installed_at == first.installed_at


def test_install_missing_a_scope_is_refused_and_changes_nothing(stack: AppStack) -> None:
    bc = stack.sb.bc
    bc.set_app_scopes([s for s in bc.app_scopes if s != "store_sites_read_only"])
    before = stack.snapshot()
    response = bc.install(stack.store_hash)
    assert response.status_code == 403
    assert "store_sites_read_only" in response.text and response.headers["content-type"].startswith(
        "text/html"
    )
    assert stack.snapshot() == before


def test_bad_requests_get_error_pages_and_change_nothing(stack: AppStack) -> None:
    bc, store_hash = stack.sb.bc, stack.store_hash
    assert bc.install(store_hash).status_code == 200
    set_up(stack)
    before = stack.snapshot()
    other_store = bc.add_store()
    cases = [
        ("/bigcommerce/auth", {"context": f"stores/{store_hash}", "scope": " ".join(bc.app_scopes)}, 400),
        ("/bigcommerce/auth", {"code": "never-issued", "context": f"stores/{store_hash}"}, 401),
        ("/bigcommerce/load", {}, 400),
        ("/bigcommerce/load", {"signed_payload_jwt": "garbage"}, 400),
        ("/bigcommerce/load", {"signed_payload_jwt": bc.signed_payload(store_hash, aud="other-app")}, 401),
        ("/bigcommerce/load", {"signed_payload_jwt": bc.signed_payload(store_hash, exp=1_000_000)}, 401),
        ("/bigcommerce/load", {"signed_payload_jwt": bc.signed_payload(other_store)}, 403),
        ("/bigcommerce/uninstall", {"signed_payload_jwt": bc.signed_payload(store_hash, iss="evil")}, 401),
        ("/bigcommerce/remove-user", {"signed_payload_jwt": "x.y.z"}, 400),
    ]
    forged_claims = jwt.decode(bc.signed_payload(store_hash), options={"verify_signature": False})
    forged = jwt.encode(forged_claims, CLIENT_SECRET[::-1], algorithm="HS256")
    cases.append(("/bigcommerce/uninstall", {"signed_payload_jwt": forged}, 401))
    for path, params, status in cases:
        response = stack.get(path, params=params)
        assert response.status_code == status, (path, params, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1" in response.text and "control panel" in response.text
    assert stack.snapshot() == before
