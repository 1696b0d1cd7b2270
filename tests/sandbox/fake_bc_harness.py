"""Test harness for the fake BigCommerce: the fake on a real port, plus a stand-in "app" that does
what an app does at its callbacks (exchanges the code, records JWTs) and receives webhooks.

Test modules import `harness_fixture` (the fixture named `harness`) from here: a plain module rather
than a conftest, so `from conftest import require` keeps meaning tests/conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from smbc.http_server import BackgroundServer, free_port
from smbc.sandbox.bigcommerce import FakeBigCommerce

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret-for-the-fake-bigcommerce"


@dataclass
class StandInApp:
    """Records every callback; `auth` exchanges the code at the fake like a real app would."""

    fake_url: str = ""
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    # Status each webhook path answers with (default 200).
    webhook_status: dict[str, int] = field(default_factory=dict)
    # Seconds each webhook path waits before answering.
    webhook_delay: dict[str, float] = field(default_factory=dict)
    exchange_overrides: dict[str, str] = field(default_factory=dict)

    def build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/bigcommerce/auth")
        async def auth(request: Request) -> Response:
            params = dict(request.query_params)
            self.calls.append(("auth", params))
            body = {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "code": params["code"],
                "scope": params["scope"],
                "context": params["context"],
                "grant_type": "authorization_code",
                "redirect_uri": str(request.url).split("?")[0],
            }
            body.update(self.exchange_overrides)
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{self.fake_url}/oauth2/token", json=body)
            if answer.status_code == 200:
                self.tokens.append(answer.json())
                return HTMLResponse("<h1>Installed</h1>")
            return JSONResponse(answer.json(), status_code=answer.status_code)

        for name in ("load", "uninstall", "remove-user"):

            async def callback(request: Request, name: str = name) -> HTMLResponse:
                self.calls.append((name, dict(request.query_params)))
                return HTMLResponse(f"<h1>{name}</h1>")

            app.add_api_route(f"/bigcommerce/{name}", callback, methods=["GET"])

        @app.post("/webhooks/{name}")
        async def webhook(name: str, request: Request) -> Response:
            await asyncio.sleep(self.webhook_delay.get(name, 0))
            self.webhooks.append((name, dict(request.headers), await request.json()))
            return Response(status_code=self.webhook_status.get(name, 200))

        return app


@dataclass
class Harness:
    bc: FakeBigCommerce
    url: str
    app: StandInApp
    app_url: str

    @property
    def store_hash(self) -> str:
        return self.bc.default_store_hash

    def api(
        self, token: str | None = None, store_hash: str | None = None, timeout: float = 10.0
    ) -> httpx.Client:
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        return httpx.Client(
            base_url=f"{self.url}/stores/{store_hash or self.store_hash}", headers=headers, timeout=timeout
        )

    def install(self, store_hash: str | None = None) -> str:
        response = self.bc.install(store_hash or self.store_hash)
        assert response.status_code == 200, response.text
        token = self.bc.access_token(store_hash or self.store_hash)
        assert token
        return token

    def hook(self, token: str, scope: str, name: str = "main", headers: dict[str, str] | None = None) -> int:
        with self.api(token) as api:
            answer = api.post(
                "/v3/hooks",
                json={
                    "scope": scope,
                    "destination": f"{self.app_url}/webhooks/{name}",
                    "is_active": True,
                    "headers": headers if headers is not None else {"X-Secret": "s3cret"},
                },
            )
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]["id"]


@pytest.fixture(name="harness")
def harness_fixture() -> Iterator[Harness]:
    stand_in = StandInApp()
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    bc = FakeBigCommerce(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_url=app_url)
    with BackgroundServer(bc.app) as server, BackgroundServer(stand_in.build(), port=app_port):
        bc.bind(server.url)
        stand_in.fake_url = server.url
        try:
            yield Harness(bc, server.url, stand_in, app_url)
        finally:
            bc.close()
