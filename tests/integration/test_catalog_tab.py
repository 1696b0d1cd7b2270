"""The Product Catalog tab over HTTP: what it says without an API v3 key, creating a catalog (a bad
name refused next to its field, nothing created), picking one, Sync now, and a paused storefront."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from monitoring_support import MonitoringEnv, monitoring_env
from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.settings.store_settings import load_store_settings
from support import wait_for


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> Iterator[MonitoringEnv]:
    with monitoring_env(settings, tmp_path, workers=True) as running:
        yield running


def get(env: MonitoringEnv, path: str) -> httpx.Response:
    return httpx.get(env.url + path, headers=env.headers, timeout=30)


def post(env: MonitoringEnv, path: str, **form: str) -> httpx.Response:
    return httpx.post(env.url + path, headers=env.headers, data=form, timeout=60)


def give_v3_key(env: MonitoringEnv) -> None:
    normal = env.sb.sm.NORMAL
    body = {"email": normal.email, "password": normal.password, "keyName": "BC_tab", "expiry": "NEVER"}
    key = httpx.post(f"{env.sb.sm_url}/v3/auth/create", json=body, timeout=10).json()["apiKey"]
    with env.app.state.runtime.db.session() as s:
        s.scalars(
            select(SalesmanagoAccount).where(SalesmanagoAccount.store_id == env.store_id)
        ).one().v3_key = key


def test_without_a_key_the_tab_says_what_to_do(env: MonitoringEnv) -> None:
    tab = get(env, "/app/tabs/catalog")
    assert tab.status_code == 200 and "API v3 key" in tab.text and "Log in to SALESmanago again" in tab.text
    assert "Sync now" not in tab.text
    refused = post(env, "/app/catalog/1/sync")
    assert refused.status_code == 422 and "API v3 key" in refused.text
    assert httpx.get(env.url + "/app/tabs/catalog", timeout=10).status_code == 401  # no session, no tab


def test_create_pick_and_sync_from_the_tab(env: MonitoringEnv) -> None:
    give_v3_key(env)
    bad = post(env, "/app/catalog/1/create", name="no <way>!", recommendations="on")
    assert bad.status_code == 422 and 'id="name_1-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert env.sb.sm.catalogs.catalogs(env.client_id) == []

    created = post(env, "/app/catalog/1/create", name="Main shop", recommendations="on")
    assert created.status_code == 200, created.text
    [catalog] = env.sb.sm.catalogs.catalogs(env.client_id)
    assert catalog["name"] == "Main_shop" and catalog["setAsDefault"] is True
    with env.app.state.runtime.db.session() as s:
        assert load_store_settings(s, env.store_id).catalogs == {1: catalog["catalogId"]}
    assert f'<option value="{catalog["catalogId"]}" selected>' in created.text

    started = post(env, "/app/catalog/1/sync")
    assert started.status_code == 200 and "started" in started.text

    def synced() -> bool:
        status = get(env, "/app/catalog/status").text
        return "done" in status and "data-refresh" not in status

    wait_for(synced, "the background sync to end", timeout=60)
    sent = len(env.sb.sm.catalogs.products(env.client_id, catalog["catalogId"]))
    assert sent > 0 and f'<td class="catalog-sent">{sent}</td>' in get(env, "/app/catalog/status").text

    env.sb.sm.catalogs.delete(env.client_id, catalog["catalogId"])
    post(env, "/app/catalog/1/sync")
    wait_for(
        lambda: "no longer exists" in get(env, "/app/tabs/catalog").text, "the pause on the tab", timeout=60
    )
    unpicked = post(env, "/app/catalog/1/choose", catalog_id="")
    assert unpicked.status_code == 200 and "no longer synced" in unpicked.text
    assert 'role="alert">The SALESmanago catalog' not in get(env, "/app/tabs/catalog").text
