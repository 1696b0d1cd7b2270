from __future__ import annotations

import time

import httpx
import jwt
import pytest
from fake_bc_harness import CLIENT_ID, CLIENT_SECRET, Harness, fake_bc_servers, harness_fixture  # noqa: F401

from smbc.sandbox.bigcommerce import FakeBigCommerce


def token_request(h: Harness, code: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    body = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "scope": " ".join(h.bc.app_scopes),
        "context": f"stores/{h.store_hash}",
        "grant_type": "authorization_code",
        "redirect_uri": f"{h.app_url}/bigcommerce/auth",
    }
    body.update(overrides or {})
    return body


def test_install_runs_the_auth_callback_and_the_app_gets_a_working_token(harness: Harness) -> None:
    h = harness
    token = h.install()
    kind, params = h.app.calls[0]
    assert kind == "auth"
    assert params["context"] == f"stores/{h.store_hash}"
    assert set(params["scope"].split()) == set(h.bc.app_scopes)
    assert params["account_uuid"] == h.bc.account_uuid
    exchanged = h.app.tokens[0]
    assert exchanged["access_token"] == token
    assert exchanged["user"] == {"id": 1001, "username": "Sandbox Owner", "email": "owner@sandbox.test"}
    assert exchanged["owner"]["email"] == "owner@sandbox.test"
    assert exchanged["context"] == f"stores/{h.store_hash}"
    assert exchanged["account_uuid"] == h.bc.account_uuid
    with h.api(token) as api:
        assert api.get("/v2/store").json()["id"] == h.store_hash


def test_staff_user_can_install_and_token_is_reused_while_scopes_are_unchanged(harness: Harness) -> None:
    first = harness.install()
    harness.bc.install(harness.store_hash, user_id=1002)
    assert harness.app.tokens[-1]["user"]["email"] == "staff@sandbox.test"
    assert harness.bc.access_token(harness.store_hash) == first


@pytest.mark.parametrize(
    ("override", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"code": "made-up"}, 400, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:1/elsewhere"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"context": "stores/otherhash"}, 400, "invalid_grant"),
    ],
)
def test_token_exchange_refuses_bad_requests(
    harness: Harness, override: dict, status: int, error: str
) -> None:
    grant = harness.bc.new_grant(harness.store_hash)
    answer = httpx.post(f"{harness.url}/oauth2/token", json=token_request(harness, grant.code, override))
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert harness.bc.access_token(harness.store_hash) is None


def test_code_works_once_and_form_bodies_are_accepted(harness: Harness) -> None:
    grant = harness.bc.new_grant(harness.store_hash)
    first = httpx.post(f"{harness.url}/oauth2/token", data=token_request(harness, grant.code))
    assert first.status_code == 200
    assert first.json()["access_token"] == harness.bc.access_token(harness.store_hash)
    again = httpx.post(f"{harness.url}/oauth2/token", json=token_request(harness, grant.code))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_signed_payload_has_the_documented_claims(harness: Harness) -> None:
    token = harness.bc.signed_payload(harness.store_hash, 1002, channel_id=2, url="/products")
    claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID, issuer="bc")
    assert claims["sub"] == f"stores/{harness.store_hash}"
    assert claims["user"] == {"id": 1002, "email": "staff@sandbox.test", "locale": "en-US"}
    assert claims["owner"] == {"id": 1001, "email": "owner@sandbox.test"}
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 24 * 3600
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["channel_id"] == 2 and claims["url"] == "/products"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-that-is-long-enough-32b", algorithms=["HS256"], audience=CLIENT_ID)


def test_load_uninstall_and_remove_user_call_the_app_with_signed_payloads(harness: Harness) -> None:
    h = harness
    token = h.install()
    assert h.bc.load(h.store_hash, channel_id=1).status_code == 200
    kind, params = h.app.calls[-1]
    assert kind == "load"
    claims = jwt.decode(params["signed_payload_jwt"], CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
    assert claims["channel_id"] == 1 and claims["user"]["id"] == 1001

    h.bc.remove_user(h.store_hash)
    kind, params = h.app.calls[-1]
    claims = jwt.decode(params["signed_payload_jwt"], CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
    assert kind == "remove-user" and claims["user"]["id"] == 1002

    h.hook(token, "store/customer/*")
    with h.api(token) as api:
        created = api.post(
            "/v3/content/scripts",
            json={
                "name": "tracker",
                "kind": "src",
                "src": "https://cdn.test/t.js",
                "auto_uninstall": True,
                "consent_category": "analytics",
            },
        )
        assert created.status_code == 200
    h.bc.uninstall(h.store_hash)
    assert h.app.calls[-1][0] == "uninstall"
    state = h.bc.store(h.store_hash)
    assert h.bc.access_token(h.store_hash) is None
    assert state.hooks == {} and state.scripts == {}
    with h.api(token) as api:
        assert api.get("/v2/store").status_code == 401


def test_changing_app_scopes_invalidates_the_token_until_reinstall(harness: Harness) -> None:
    h = harness
    old = h.install()
    h.bc.set_app_scopes([*h.bc.app_scopes, "store_v2_orders"])
    assert h.bc.access_token(h.store_hash) is None
    with h.api(old) as api:
        assert api.get("/v2/store").status_code == 401
    new = h.install()
    assert new != old
    assert "store_v2_orders" in h.app.tokens[-1]["scope"].split()


def test_empty_client_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        FakeBigCommerce(client_id="x", client_secret="")
