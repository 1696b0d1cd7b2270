"""Login steps, the sha check, the special accounts and API v3 keys on the fake SALESmanago."""

from __future__ import annotations

import re
from typing import Any

from sm_helpers import *  # noqa: F403 - the fixtures
from sm_helpers import NOW_S, SmSession, TestClient, sha1

from smbc.core.clock import FakeClock
from smbc.sandbox.salesmanago import FakeSalesmanago

USER_NOT_AUTHENTICATED = {"success": False, "message": ["User not authenticated"]}


def token(http: TestClient, email: str, password: str) -> dict[str, Any]:
    return http.post("/api/authorization/token", json={"username": email, "password": password}).json()


def test_password_login_returns_token_endpoint_and_smapp(http: TestClient, fake: FakeSalesmanago) -> None:
    answer = token(http, "merchant@sandbox.test", "sandbox-password")
    assert answer["success"] is True
    assert answer["token"]
    assert answer["endpoint"] == "http://sm.sandbox.test:9100"
    assert isinstance(answer["smapp"], int)


def test_login_endpoint_falls_back_to_the_request_address_when_not_bound(clock: FakeClock) -> None:
    from starlette.testclient import TestClient

    from smbc.sandbox.salesmanago import FakeSalesmanago

    with TestClient(FakeSalesmanago(clock=clock).app, base_url="http://10.1.2.3:8200") as client:
        assert (
            token(client, "merchant@sandbox.test", "sandbox-password")["endpoint"] == "http://10.1.2.3:8200"
        )


def test_wrong_password_or_unknown_user_is_not_authenticated(http: TestClient) -> None:
    assert token(http, "merchant@sandbox.test", "wrong") == USER_NOT_AUTHENTICATED
    assert token(http, "nobody@sandbox.test", "sandbox-password") == USER_NOT_AUTHENTICATED
    missing = http.post("/api/authorization/token", json={"username": "merchant@sandbox.test"}).json()
    assert missing["success"] is False


def test_two_factor_account_refuses_password_login_with_a_clear_reason(
    http: TestClient, fake: FakeSalesmanago
) -> None:
    answer = token(http, fake.TWO_FACTOR.email, fake.TWO_FACTOR.password)
    assert answer["success"] is False
    assert "token" not in answer
    assert "Two-factor authentication" in answer["message"][0]
    assert "User not authenticated" not in answer["message"]


def test_two_factor_account_works_with_api_credentials(http: TestClient, fake: FakeSalesmanago) -> None:
    account = fake.TWO_FACTOR
    body = {
        "clientId": account.client_id,
        "apiKey": "manual",
        "sha": sha1("manual" + account.client_id + account.api_secret),
        "requestTime": NOW_S,
        "owner": account.email,
    }
    answer = http.post("/api/user/listByClient", json=body).json()
    assert answer == {"success": True, "message": [], "users": account.owners}


def test_integration_signs_the_callers_api_key(http: TestClient, fake: FakeSalesmanago) -> None:
    login = token(http, fake.NORMAL.email, fake.NORMAL.password)
    answer = http.post("/api/account/integration", json={"token": login["token"], "apiKey": "k-123"}).json()
    assert answer["success"] is True
    assert answer["shortId"] == fake.NORMAL.client_id
    assert re.fullmatch(r"[0-9a-f]{40}", answer["sha1"])


def test_integration_refuses_unknown_token_and_missing_api_key(
    http: TestClient, fake: FakeSalesmanago
) -> None:
    bad = http.post("/api/account/integration", json={"token": "made-up", "apiKey": "k"}).json()
    assert bad == USER_NOT_AUTHENTICATED
    login = token(http, fake.NORMAL.email, fake.NORMAL.password)
    no_key = http.post("/api/account/integration", json={"token": login["token"]}).json()
    assert no_key == {"success": False, "message": ["apiKey is required"]}


def test_sha_from_integration_and_sha_from_api_secret_both_work(
    http: TestClient, fake: FakeSalesmanago, session: SmSession
) -> None:
    assert session.call("/api/user/listByClient")["users"] == fake.NORMAL.owners
    manual = {
        "clientId": fake.NORMAL.client_id,
        "apiKey": "my-own-key",
        "sha": sha1("my-own-key" + fake.NORMAL.client_id + fake.NORMAL.api_secret),
        "requestTime": NOW_S,
        "owner": fake.NORMAL.email,
    }
    assert http.post("/api/user/listByClient", json=manual).json()["success"] is True


def test_wrong_sha_unknown_client_and_foreign_api_key_are_refused(
    http: TestClient, session: SmSession
) -> None:
    assert session.call("/api/user/listByClient", sha="0" * 40) == USER_NOT_AUTHENTICATED
    assert session.call("/api/user/listByClient", clientId="nope") == USER_NOT_AUTHENTICATED
    # The integration sha is only valid together with the apiKey it was issued for.
    assert session.call("/api/user/listByClient", apiKey="another-key") == USER_NOT_AUTHENTICATED
    assert session.call("/api/user/listByClient", sha=session.sha.upper()) == USER_NOT_AUTHENTICATED


def test_missing_or_malformed_request_time_is_refused(http: TestClient, session: SmSession) -> None:
    body = session.auth()
    del body["requestTime"]
    assert http.post("/api/user/listByClient", json=body).json() == {
        "success": False,
        "message": ["requestTime is required"],
    }
    assert session.call("/api/user/listByClient", requestTime="yesterday")["success"] is False
    assert session.call("/api/user/listByClient", requestTime=str(NOW_S))["success"] is True


def test_list_by_client_needs_an_owner(session: SmSession) -> None:
    assert session.call("/api/user/listByClient", owner="") == {
        "success": False,
        "message": ["owner is required"],
    }


def test_inactive_account_logs_in_but_every_call_is_not_authenticated(
    http: TestClient, fake: FakeSalesmanago
) -> None:
    inactive = SmSession(http, fake).login(fake.INACTIVE.email, fake.INACTIVE.password)
    assert inactive.client_id == fake.INACTIVE.client_id
    not_authenticated = {"success": False, "message": ["Not authenticated"]}
    assert inactive.call("/api/user/listByClient") == not_authenticated
    assert inactive.upsert("a@example.com") == not_authenticated
    assert fake.contacts(fake.INACTIVE.client_id) == []


def test_invalid_json_and_unknown_methods(http: TestClient, session: SmSession) -> None:
    bad = http.post("/api/contact/upsert", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json() == {"success": False, "message": ["Specified json is not valid"]}
    unknown = http.post("/api/contact/teleport", json=session.auth())
    assert unknown.status_code == 404
    assert unknown.json()["success"] is False
    assert http.get("/api/contact/upsert").status_code == 405


def test_v3_create_returns_a_key_that_revoke_accepts(http: TestClient, fake: FakeSalesmanago) -> None:
    body = {
        "email": fake.NORMAL.email,
        "password": fake.NORMAL.password,
        "keyName": "BigCommerce_1767225600",
        "expiry": "NEVER",
        "endpoint": "sm.sandbox.test:9100",
    }
    created = http.post("/v3/auth/create", json=body)
    assert created.status_code == 200
    key = created.json()["apiKey"]
    assert re.fullmatch(r"[a-zA-Z0-9]{1,64}", key)
    assert [k["keyName"] for k in fake.v3_keys(fake.NORMAL.client_id)] == ["BigCommerce_1767225600"]

    revoked = http.post("/v3/auth/revoke", json={"apiKey": key}, headers={"API-KEY": key})
    assert revoked.status_code == 200
    assert revoked.json() == {"apiKeyName": "BigCommerce_1767225600"}
    assert fake.v3_keys(fake.NORMAL.client_id) == []
    again = http.post("/v3/auth/revoke", json={"apiKey": key}, headers={"API-KEY": key})
    assert again.status_code == 401
    assert again.json()["reasonCode"] == 10


def test_v3_create_validates_credentials_and_fields(http: TestClient, fake: FakeSalesmanago) -> None:
    base = {"email": fake.NORMAL.email, "password": fake.NORMAL.password, "keyName": "k", "expiry": "NEVER"}
    wrong = http.post("/v3/auth/create", json={**base, "password": "nope"})
    assert (wrong.status_code, wrong.json()["reasonCode"]) == (401, 10)
    missing = http.post("/v3/auth/create", json={**base, "keyName": ""})
    assert (missing.status_code, missing.json()) == (
        400,
        {"messages": ["keyName|is required"], "reasonCode": 13},
    )
    scheme = http.post("/v3/auth/create", json={**base, "endpoint": "https://app2.salesmanago.pl"})
    assert (scheme.status_code, scheme.json()["reasonCode"]) == (400, 18)
    expiry = http.post("/v3/auth/create", json={**base, "expiry": "FOREVER"})
    assert (expiry.status_code, expiry.json()["reasonCode"]) == (400, 18)
    two_factor = http.post(
        "/v3/auth/create", json={**base, "email": fake.TWO_FACTOR.email, "password": fake.TWO_FACTOR.password}
    )
    assert two_factor.status_code == 401
    assert fake.v3_keys(fake.NORMAL.client_id) == []
    assert fake.v3_keys(fake.TWO_FACTOR.client_id) == []


def test_v3_revoke_needs_the_api_key_header(http: TestClient, fake: FakeSalesmanago) -> None:
    body = {"email": fake.NORMAL.email, "password": fake.NORMAL.password, "keyName": "k", "expiry": "NEVER"}
    key = http.post("/v3/auth/create", json=body).json()["apiKey"]
    no_header = http.post("/v3/auth/revoke", json={"apiKey": key})
    assert (no_header.status_code, no_header.json()["reasonCode"]) == (401, 10)
    unknown = http.post("/v3/auth/revoke", json={"apiKey": "zzz"}, headers={"API-KEY": key})
    assert (unknown.status_code, unknown.json()["reasonCode"]) == (400, 16)
    assert len(fake.v3_keys(fake.NORMAL.client_id)) == 1


def test_calls_are_recorded_without_secrets(
    http: TestClient, fake: FakeSalesmanago, session: SmSession, clock: FakeClock
) -> None:
    session.call("/api/user/listByClient")
    first = fake.calls[0]
    assert first["path"] == "/api/authorization/token"
    assert first["body"]["password"] == "[redacted]"
    assert first["response"]["token"] == "[redacted]"
    last = fake.calls[-1]
    assert last["path"] == "/api/user/listByClient"
    assert last["clientId"] == fake.NORMAL.client_id
    assert last["status"] == 200
    assert last["time"] == clock.now()
    assert last["body"]["sha"] == "[redacted]"
    assert last["body"]["apiKey"] == "[redacted]"
    assert last["body"]["owner"] == fake.NORMAL.email
    everything = repr(fake.calls)
    for secret in (fake.NORMAL.password, session.sha, session.api_key):
        assert secret not in everything
