"""No remote call while a database transaction is open: with the guard on, the store set-up, the
monitoring-code sync and live read, log in (both ways), refresh owners and log out run their
BigCommerce and SALESmanago calls with no session open (a call inside one raises)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smbc.account import login as account_login
from smbc.account.models import SalesmanagoAccount
from smbc.bigcommerce.client import for_store
from smbc.core import http_clients
from smbc.core.config import Settings
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store
from smbc.monitoring.scripts import live_status, sync_store
from smbc.sandbox.salesmanago import FakeSalesmanago
from smbc.stores.setup import run_store_setup


class ScriptedBigCommerce:
    """Just enough of one store's API: store, channels, sites, hooks and scripts."""

    def __init__(self) -> None:
        self.hooks: list[dict[str, Any]] = []
        self.scripts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else {}
        if path.endswith("/v2/store"):
            return httpx.Response(200, json={"id": "abc", "name": "Shop", "timezone": {"name": "UTC"}})
        if path.endswith(("/v3/channels", "/v3/sites")):
            row = {"id": 1, "name": "Shop", "type": "storefront", "status": "active", "channel_id": 1}
            return httpx.Response(200, json={"data": [row], "meta": {"pagination": {"total_pages": 1}}})
        if path.endswith("/v3/hooks") and method == "GET":
            return httpx.Response(200, json={"data": self.hooks, "meta": {}})
        if path.endswith("/v3/hooks") and method == "POST":
            self.hooks.append({**body, "id": next(self._ids)})
            return httpx.Response(200, json={"data": self.hooks[-1]})
        if path.endswith("/v3/content/scripts") and method == "GET":
            data = list(self.scripts.values())
            return httpx.Response(200, json={"data": data, "meta": {"pagination": {"total_pages": 1}}})
        if path.endswith("/v3/content/scripts") and method == "POST":
            uuid = f"00000000-0000-4000-8000-{next(self._ids):012d}"
            self.scripts[uuid] = {**body, "uuid": uuid}
            return httpx.Response(200, json={"data": self.scripts[uuid]})
        return httpx.Response(404, json={"title": "not here"})


@pytest.fixture
def runtime(settings: Settings, fake_sm: tuple[FakeSalesmanago, str]) -> Iterator[Runtime]:
    url = fake_sm[1]
    yield init_runtime(
        settings.model_copy(update={"sm_default_endpoint": url, "sm_v3_url": url, "sm_endpoint_hosts": url}),
        migrate=True,
    )
    close_runtime()


@pytest.fixture
def guard() -> Iterator[None]:
    previous = http_clients.forbid_remote_calls_in_transactions(True)
    yield
    http_clients.forbid_remote_calls_in_transactions(previous)


def add_store(runtime: Runtime) -> int:
    with runtime.db.session() as s:
        store = Store(hash="abc", status="installed", access_token="tok", sync_paused_reason="logged_out")
        s.add(store)
        s.flush()
        return store.id


def test_the_guard_refuses_a_call_inside_a_session(runtime: Runtime, guard: None) -> None:
    store_id = add_store(runtime)
    http = httpx.Client(transport=httpx.MockTransport(ScriptedBigCommerce().handler))
    with runtime.db.session() as s, pytest.raises(http_clients.RemoteCallInTransaction):
        for_store(s.get(Store, store_id), http=http).store_info()


def test_store_setup_and_monitoring_sync_call_bigcommerce_outside_transactions(
    runtime: Runtime, guard: None
) -> None:
    store_id = add_store(runtime)
    bc = ScriptedBigCommerce()
    http = httpx.Client(transport=httpx.MockTransport(bc.handler))
    assert run_store_setup(store_id, http=http) is True
    assert bc.hooks
    with runtime.db.session() as s:
        s.add(
            SalesmanagoAccount(
                store_id=store_id,
                endpoint="app.example",
                client_id="cid",
                api_key="k",
                sha="s",
                login_email="a@b.c",
                owners=["a@b.c"],
                auth_mode="login",
            )
        )
        store = s.get(Store, store_id)
    api = for_store(store, http=http)
    app_url = runtime.settings.app_url
    result = sync_store(runtime.db, store_id, app_url=app_url, refresh=True, api=api)
    assert result.ok and result.created == 1
    status = live_status(runtime.db, store_id, app_url=app_url, api=api)
    assert status is not None and status.problems == []


def test_login_owners_and_logout_call_salesmanago_outside_transactions(
    runtime: Runtime, guard: None, fake_sm: tuple[FakeSalesmanago, str]
) -> None:
    sm, url = fake_sm
    store_id = add_store(runtime)
    db, settings = runtime.db, runtime.settings
    result = account_login.login_with_password(
        db, store_id, email=sm.NORMAL.email, password=sm.PASSWORD, endpoint=url, settings=settings, actor="t"
    )
    assert result.warnings == []
    again = account_login.login_with_api_credentials(
        db,
        store_id,
        endpoint=url,
        client_id=sm.TWO_FACTOR.client_id,
        api_secret=sm.TWO_FACTOR.api_secret,
        owner=sm.TWO_FACTOR.email,
        settings=settings,
        actor="t",
    )  # replaces the first account: its v3 key is revoked after the commit
    assert again.account.auth_mode == "credentials"
    assert account_login.refresh_owners(db, store_id).owners == sm.TWO_FACTOR.owners
    assert account_login.logout(db, store_id, settings=settings, actor="t").was_connected
