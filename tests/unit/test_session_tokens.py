"""Dashboard session tokens: bound to one store and user, short-lived, unforgeable; the dependency
refuses them once the store is uninstalled or the user removed; owner-only routes refuse users."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.fernet import Fernet
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store, StoreUser, User
from smbc.stores.access import DashboardSession
from smbc.web.session import (
    SESSION_TTL,
    current_session,
    mint_session_token,
    read_session_token,
    require_owner,
)

KEYS = [Fernet.generate_key().decode()]
OWNER = DashboardSession(store_hash="abc123", user_id=1, bc_user_id=1001, role="owner", email="o@example.com")
STAFF = DashboardSession(store_hash="abc123", user_id=2, bc_user_id=1002, role="user", email="s@example.com")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    previous = set_clock(fake)
    yield fake
    set_clock(previous)


def test_round_trip(clock: FakeClock) -> None:
    assert read_session_token(mint_session_token(STAFF, KEYS), KEYS) == STAFF


def test_expires_after_the_ttl(clock: FakeClock) -> None:
    token = mint_session_token(OWNER, KEYS)
    clock.advance(SESSION_TTL.total_seconds() - 1)
    assert read_session_token(token, KEYS).store_hash == "abc123"
    clock.advance(1)
    with pytest.raises(jwt.ExpiredSignatureError, match="open the app again from the control panel"):
        read_session_token(token, KEYS)


def test_forged_or_tampered_tokens_are_refused(clock: FakeClock) -> None:
    other_keys = [Fernet.generate_key().decode()]
    with pytest.raises(jwt.InvalidSignatureError):
        read_session_token(mint_session_token(OWNER, other_keys), KEYS)
    header, _claims, signature = mint_session_token(STAFF, KEYS).split(".")
    owner_claims = mint_session_token(OWNER, KEYS).split(".")[1]
    with pytest.raises(jwt.InvalidSignatureError):
        read_session_token(f"{header}.{owner_claims}.{signature}", KEYS)


def test_a_bigcommerce_payload_is_not_a_session(clock: FakeClock) -> None:
    # Same key family, wrong audience: one kind of token cannot stand in for the other.
    from smbc.web.session import _signing_key

    token = jwt.encode({"aud": "x", "sub": "abc123", "uid": 1, "iat": 0, "exp": 2**40}, _signing_key(KEYS))
    with pytest.raises(jwt.InvalidAudienceError):
        read_session_token(token, KEYS)


@pytest.fixture
def guarded(settings: Settings, clock: FakeClock) -> Iterator[tuple[TestClient, Settings]]:
    runtime = init_runtime(settings, migrate=True)
    with runtime.db.session() as s:
        store = Store(hash="abc123", status="installed")
        s.add_all([store, User(id=1, bc_user_id=1001, email="o@example.com")])
        s.add(User(id=2, bc_user_id=1002, email="s@example.com"))
        s.flush()
        s.add_all(
            [
                StoreUser(store_id=store.id, user_id=1, role="owner"),
                StoreUser(store_id=store.id, user_id=2, role="user"),
            ]
        )
    api = FastAPI()
    api.state.settings = settings
    api.state.runtime = runtime

    @api.post("/app/owner-only")
    def owner_only(session: DashboardSession = Depends(require_owner)) -> dict:
        return {"by": session.email}

    @api.get("/app/any")
    def any_user(session: DashboardSession = Depends(current_session)) -> dict:
        return {"store": session.store_hash}

    yield TestClient(api), settings
    close_runtime()


def bearer(session: DashboardSession, settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_session_token(session, settings.secret_keys)}"}


def test_dependency_needs_the_header(guarded) -> None:
    client, settings = guarded
    assert client.get("/app/any").status_code == 401
    assert client.get("/app/any", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/app/any", headers=bearer(STAFF, settings)).json() == {"store": "abc123"}


def test_owner_only_route_refuses_a_staff_user(guarded) -> None:
    client, settings = guarded
    assert client.post("/app/owner-only", headers=bearer(STAFF, settings)).status_code == 403
    assert client.post("/app/owner-only", headers=bearer(OWNER, settings)).json() == {"by": "o@example.com"}


def test_session_for_an_unlinked_user_or_uninstalled_store_is_refused(guarded) -> None:
    client, settings = guarded
    stranger = DashboardSession(store_hash="abc123", user_id=99, bc_user_id=9, role="owner", email="x@x.x")
    assert client.get("/app/any", headers=bearer(stranger, settings)).status_code == 401
    other_store = DashboardSession(store_hash="zzz999", user_id=1, bc_user_id=1001, role="owner", email="o")
    assert client.get("/app/any", headers=bearer(other_store, settings)).status_code == 401
    from smbc.core.runtime import get_runtime

    with get_runtime().db.session() as s:
        s.query(Store).one().status = "uninstalled"
    assert client.get("/app/any", headers=bearer(OWNER, settings)).status_code == 401
