"""Shape fuzz of the one BigCommerce answer read outside the API client: the OAuth token exchange of an
install. Each field removed, nulled or given the wrong type ends in a grant or in the install refused
with a clear reason, never a traceback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from test_bigcommerce_answer_shapes import mutations

from smbc.core.config import Settings
from smbc.stores.installation import AuthCallback, CallbackError, TokenGrant, exchange_code

GRANT = {
    "access_token": "access-token-1",
    "scope": "store_v2_customers store_v2_orders",
    "user": {"id": 24654, "username": "owner", "email": "owner@example.com"},
    "owner": {"id": 24654, "username": "owner", "email": "owner@example.com"},
    "context": "stores/abc123",
    "account_uuid": "5f1e2b3c-0000-4000-8000-000000000001",
}
CALLBACK = AuthCallback(
    code="c", scopes=set(), context="stores/abc123", store_hash="abc123", account_uuid=None
)


def exchange(settings: Settings, answer: Any, monkeypatch: pytest.MonkeyPatch) -> TokenGrant:
    monkeypatch.setattr("smbc.stores.installation.check_scopes", lambda granted: None)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(answer).encode())

    return exchange_code(settings, CALLBACK, client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_every_shape_of_the_token_answer_grants_or_refuses_with_a_reason(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = []
    for what, changed in mutations(GRANT):
        try:
            exchange(settings, changed, monkeypatch)
        except CallbackError as refused:
            if refused.status != 401 or not str(refused):
                problems.append(f"{what}: {refused.status} {refused}")
        except Exception as exc:  # the very thing this test is about
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
    assert problems == []


def test_an_unreadable_user_refuses_the_install_naming_the_field(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CallbackError) as refused:
        exchange(settings, {**GRANT, "user": ["not", "an", "object"]}, monkeypatch)
    assert refused.value.status == 401 and "user" in str(refused.value)


def test_without_an_owner_the_installing_user_owns_the_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = exchange(settings, {key: value for key, value in GRANT.items() if key != "owner"}, monkeypatch)
    assert grant.owner == grant.user and grant.user.email == "owner@example.com"
