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

from smbc.core.http_server import BackgroundServer
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
    # Webhook requests being answered now, and the most at once.
    webhooks_in_progress: int = 0
    most_webhooks_at_once: int = 0
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
            self.webhooks_in_progress += 1  # one event loop: no lock needed
            self.most_webhooks_at_once = max(self.most_webhooks_at_once, self.webhooks_in_progress)
            try:
                await asyncio.sleep(self.webhook_delay.get(name, 0))
            finally:
                self.webhooks_in_progress -= 1
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


class Switch:
    """An ASGI app forwarding to whichever fake the current test made, so the servers start once."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.target(scope, receive, send)


@dataclass
class Servers:
    fake_url: str
    app_url: str
    switch: Switch
    stand_in: Switch


@pytest.fixture(scope="session")
def fake_bc_servers() -> Iterator[Servers]:
    fake_switch, app_switch = Switch(), Switch()
    with BackgroundServer(fake_switch) as fake_server, BackgroundServer(app_switch) as app_server:
        yield Servers(fake_server.url, app_server.url, fake_switch, app_switch)


@pytest.fixture(name="harness")
def harness_fixture(fake_bc_servers: Servers) -> Iterator[Harness]:
    """A fresh fake (and stand-in app) for each test, behind servers shared by the session."""
    servers = fake_bc_servers
    stand_in = StandInApp(fake_url=servers.fake_url)
    bc = FakeBigCommerce(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_url=servers.app_url)
    bc.bind(servers.fake_url)
    servers.switch.target = bc.app
    servers.stand_in.target = stand_in.build()
    try:
        yield Harness(bc, servers.fake_url, stand_in, servers.app_url)
    finally:
        bc.close()
