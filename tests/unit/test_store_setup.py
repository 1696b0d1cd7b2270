"""The set-up job after install: reads store info, channels (all pages) and sites, keeps them,
registers webhooks through the real-time area's hook, records every call; failures leave the store
marked for the periodic sweep."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

import smbc.stores.setup as setup
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store
from smbc.stores.setup import run_store_setup, stores_needing_setup

STORE_INFO = {
    "id": "abc123",
    "name": "Plants & Pots <Demo>",
    "store_id": 1000123,
    "timezone": {"name": "Europe/Warsaw", "raw_offset": 3600},
    "secure_url": "https://plants.example.com",
}


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    previous = set_clock(FakeClock())  # retries back off on the fake clock, instantly
    yield init_runtime(settings, migrate=True)
    close_runtime()
    set_clock(previous)


@pytest.fixture
def no_hooks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Webhook registration is the real-time area's (tested there); here only that it is called."""
    registered: list[int] = []
    monkeypatch.setattr(setup, "register_webhooks", lambda db, store_id, client: registered.append(store_id))
    return registered


def add_store(runtime: Runtime, **fields) -> int:
    with runtime.db.session() as s:
        store = Store(hash="abc123", status="installed", access_token="tok-1", **fields)
        s.add(store)
        s.flush()
        return store.id


def bigcommerce(status: int = 200) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status != 200:
            return httpx.Response(status, json={"title": "nope"})
        path, page = request.url.path, int(request.url.params.get("page", 1))
        if path.endswith("/v2/store"):
            return httpx.Response(200, json=STORE_INFO)
        if path.endswith("/v3/channels"):
            data = (
                [{"id": 1, "name": "Main", "type": "storefront"}] if page == 1 else [{"id": 2, "name": "B2B"}]
            )
            return httpx.Response(200, json={"data": data, "meta": {"pagination": {"total_pages": 2}}})
        if path.endswith("/v3/sites"):
            sites = [{"id": 1000, "channel_id": 1, "url": "https://plants.example.com"}]
            return httpx.Response(200, json={"data": sites, "meta": {"pagination": {"total_pages": 1}}})
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_setup_keeps_store_info_channels_sites_and_registers_webhooks(runtime: Runtime, no_hooks) -> None:
    store_id = add_store(runtime)
    http, seen = bigcommerce()
    assert run_store_setup(store_id, http=http) is True
    assert {r.headers["X-Auth-Token"] for r in seen} == {"tok-1"}
    assert str(seen[0].url).startswith(f"{runtime.settings.bc_api_url}/stores/abc123/v2/store")
    with runtime.db.session() as s:
        store = s.get(Store, store_id)
        assert store.store_id == "1000123" and store.timezone == "Europe/Warsaw"
        assert store.info["name"] == "Plants & Pots <Demo>"
        assert [c["id"] for c in store.channels] == [1, 2]
        assert store.sites[0]["id"] == 1000
        assert store.setup_completed_at is not None
        calls = s.scalars(select(RemoteCall).order_by(RemoteCall.id)).all()
        assert [c.endpoint for c in calls] == ["/v2/store", "/v3/channels", "/v3/channels", "/v3/sites"]
        assert {c.outcome for c in calls} == {"success"}
        assert all("tok-1" not in (c.message + c.endpoint) for c in calls)
        assert stores_needing_setup(s) == []
    assert no_hooks == [store_id]


@pytest.mark.parametrize(("status", "outcome", "attempts"), [(500, "retry", 3), (401, "credentials", 1)])
def test_failed_setup_is_recorded_and_left_for_the_sweep(
    runtime: Runtime, no_hooks, status: int, outcome: str, attempts: int
) -> None:
    store_id = add_store(runtime)
    http, _ = bigcommerce(status)
    assert run_store_setup(store_id, http=http) is False
    with runtime.db.session() as s:
        assert s.get(Store, store_id).setup_completed_at is None
        assert stores_needing_setup(s) == [store_id]
        calls = s.scalars(select(RemoteCall)).all()
        assert [(c.endpoint, c.outcome, c.status) for c in calls] == [
            ("/v2/store", outcome, status)
        ] * attempts
    assert no_hooks == []


def test_setup_of_an_uninstalled_store_does_nothing(runtime: Runtime, no_hooks) -> None:
    store_id = add_store(runtime)
    with runtime.db.session() as s:
        s.get(Store, store_id).status = "uninstalled"
    http, seen = bigcommerce()
    assert run_store_setup(store_id, http=http) is False
    assert seen == []
    with runtime.db.session() as s:
        assert stores_needing_setup(s) == []
