"""Shared pieces for the fake SALESmanago tests: an in-process client that logs in like the plugin."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient will move from httpx to httpx2; it works as is.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from smbc.core.clock import FakeClock
from smbc.sandbox.salesmanago import FakeSalesmanago

__all__ = ["clock", "fake", "http", "session"]  # the fixtures, for `from sm_helpers import *`

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(START.timestamp() * 1000)
NOW_S = int(START.timestamp())


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - the API's own rule


class SmSession:
    """Talks to the fake as the plugin does: login, then auth blocks with apiKey + sha."""

    def __init__(self, http: TestClient, fake: FakeSalesmanago) -> None:
        self.http = http
        self.fake = fake
        self.client_id = ""
        self.api_key = ""
        self.sha = ""
        self.owner = ""

    def login(self, email: str, password: str, api_key: str = "plugin-api-key-1") -> SmSession:
        token = self.http.post(
            "/api/authorization/token", json={"username": email, "password": password}
        ).json()
        assert token["success"], token
        integration = self.http.post(
            "/api/account/integration", json={"token": token["token"], "apiKey": api_key}
        ).json()
        assert integration["success"], integration
        self.client_id, self.api_key, self.sha, self.owner = (
            integration["shortId"],
            api_key,
            integration["sha1"],
            email,
        )
        return self

    def auth(self, **extra: Any) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "apiKey": self.api_key,
            "sha": self.sha,
            "requestTime": NOW_S,
            "owner": self.owner,
            **extra,
        }

    def call(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(path, json=self.auth(**body))
        assert response.status_code == 200, response.text
        return response.json()

    def upsert(self, email: str, **body: Any) -> dict[str, Any]:
        contact = {"email": email, **body.pop("contact", {})}
        return self.call("/api/contact/upsert", contact=contact, **body)

    def add_event(self, email: str, **event: Any) -> dict[str, Any]:
        contact_event = {"contactExtEventType": "PURCHASE", "date": NOW_MS, "value": 10.5, **event}
        return self.call("/api/v2/contact/addContactExtEvent", email=email, contactEvent=contact_event)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def fake(clock: FakeClock) -> FakeSalesmanago:
    sm = FakeSalesmanago(clock=clock, seed=1)
    sm.bind("http://sm.sandbox.test:9100")
    return sm


@pytest.fixture
def http(fake: FakeSalesmanago) -> Iterator[TestClient]:
    with TestClient(fake.app, base_url="http://sm.sandbox.test:9100") as client:
        yield client


@pytest.fixture
def session(http: TestClient, fake: FakeSalesmanago) -> SmSession:
    return SmSession(http, fake).login(fake.NORMAL.email, fake.NORMAL.password)
