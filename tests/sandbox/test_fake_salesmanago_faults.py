"""Fault switches and revoked credentials on the fake SALESmanago."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sm_helpers import *  # noqa: F403 - the fixtures
from sm_helpers import SmSession, TestClient

from smbc.sandbox.salesmanago import FakeSalesmanago

USER_NOT_AUTHENTICATED = {"success": False, "message": ["User not authenticated"]}


def post(session: SmSession, path: str, **body: Any) -> httpx.Response:
    return session.http.post(path, json=session.auth(**body))


def test_fail_next_fails_exactly_that_many_calls(session: SmSession, fake: FakeSalesmanago) -> None:
    fake.fail_next(2, status=503)
    first, second, third = (post(session, "/api/user/listByClient") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["retry-after"] == "1"
    assert first.json()["success"] is False
    assert [c["status"] for c in fake.calls[-3:]] == [503, 503, 200]
    fake.fail_next(1, status=429)
    assert post(session, "/api/user/listByClient").status_code == 429


def test_a_failed_call_changes_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    fake.fail_next(1)
    assert post(session, "/api/contact/upsert", contact={"email": "lost@example.com"}).status_code == 500
    assert fake.contacts(fake.NORMAL.client_id) == []
    assert session.upsert("lost@example.com")["success"] is True


def test_down_answers_503_until_restored_but_the_page_still_works(
    session: SmSession, fake: FakeSalesmanago, http: TestClient
) -> None:
    fake.faults.down = True
    assert post(session, "/api/contact/upsert", contact={"email": "a@example.com"}).status_code == 503
    assert http.post("/api/authorization/token", json={}).status_code == 503
    v3 = http.post("/v3/auth/create", json={})
    assert v3.status_code == 503
    assert "messages" in v3.json()
    assert http.get("/sandbox").status_code == 200
    assert http.get("/sandbox/api/faults").json()["down"] is True
    fake.restore()
    assert post(session, "/api/contact/upsert", contact={"email": "a@example.com"}).status_code == 200


def test_error_rate_is_the_share_of_500s(session: SmSession, fake: FakeSalesmanago) -> None:
    fake.faults.error_rate = 1.0
    assert {post(session, "/api/user/listByClient").status_code for _ in range(5)} == {500}
    fake.faults.error_rate = 0.5
    statuses = [post(session, "/api/user/listByClient").status_code for _ in range(200)]
    assert 60 < statuses.count(500) < 140
    fake.faults.error_rate = 0.0
    assert post(session, "/api/user/listByClient").status_code == 200


def test_latency_delays_every_api_answer(session: SmSession, fake: FakeSalesmanago) -> None:
    fake.faults.latency_ms = 150
    started = time.monotonic()
    assert post(session, "/api/user/listByClient").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_faults_over_json(http: TestClient, fake: FakeSalesmanago) -> None:
    assert http.post(
        "/sandbox/api/faults", json={"latency_ms": 3, "error_rate": 0.25, "down": True}
    ).json() == {
        "latency_ms": 3,
        "error_rate": 0.25,
        "down": True,
        "fail_next": 0,
    }
    assert http.post("/sandbox/api/faults", json={"error_rate": -1}).status_code == 400
    assert fake.faults.error_rate == 0.25


def test_revoked_credentials_refuse_every_call_of_that_account_only(
    session: SmSession, fake: FakeSalesmanago, http: TestClient
) -> None:
    cid = fake.NORMAL.client_id
    fake.revoke_credentials(cid)
    assert session.call("/api/user/listByClient") == USER_NOT_AUTHENTICATED
    assert session.upsert("a@example.com") == USER_NOT_AUTHENTICATED
    assert session.add_event("a@example.com") == USER_NOT_AUTHENTICATED
    login = http.post(
        "/api/authorization/token", json={"username": fake.NORMAL.email, "password": "sandbox-password"}
    )
    assert login.json() == USER_NOT_AUTHENTICATED
    v3 = http.post(
        "/v3/auth/create",
        json={"email": fake.NORMAL.email, "password": "sandbox-password", "keyName": "k", "expiry": "NEVER"},
    )
    assert (v3.status_code, v3.json()["reasonCode"]) == (401, 10)
    assert fake.contacts(cid) == []

    fake.restore_credentials(cid)
    assert session.call("/api/user/listByClient")["success"] is True
    assert session.upsert("a@example.com")["success"] is True


def test_restore_clears_every_fault(fake: FakeSalesmanago) -> None:
    fake.faults.latency_ms = 10
    fake.faults.error_rate = 0.3
    fake.faults.down = True
    fake.fail_next(4)
    fake.revoke_credentials(fake.TWO_FACTOR.client_id)
    fake.restore()
    assert fake.faults.snapshot() == {"latency_ms": 0, "error_rate": 0.0, "down": False, "fail_next": 0}
    assert fake.account(fake.TWO_FACTOR.client_id).revoked is False
