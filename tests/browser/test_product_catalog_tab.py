"""The Product Catalog tab in Chromium: the merchant picks a catalog listed live from SALESmanago for a
storefront, starts a full sync, and sees the products sent once the background sync ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from monitoring_support import MonitoringEnv, monitoring_env
from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings

pytestmark = pytest.mark.browser


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> Iterator[MonitoringEnv]:
    with monitoring_env(settings, tmp_path, workers=True) as running:
        yield running


def give_v3_key_and_a_catalog(env: MonitoringEnv) -> str:
    """What a login leaves (an API v3 key) and a catalog the merchant made in SALESmanago."""
    normal = env.sb.sm.NORMAL
    body = {"email": normal.email, "password": normal.password, "keyName": "BC_browser", "expiry": "NEVER"}
    key = httpx.post(f"{env.sb.sm_url}/v3/auth/create", json=body, timeout=10).json()["apiKey"]
    with env.app.state.runtime.db.session() as s:
        s.scalars(
            select(SalesmanagoAccount).where(SalesmanagoAccount.store_id == env.store_id)
        ).one().v3_key = key
    catalog = {"name": "Browser_Shop", "currency": "USD", "location": "sm_browser", "setAsDefault": True}
    answer = httpx.post(
        f"{env.sb.sm_url}/v3/product/catalogUpsert", json=catalog, headers={"API-KEY": key}, timeout=10
    )
    return str(answer.json()["catalogId"])


def test_pick_a_catalog_sync_and_see_the_counts(browser_context, env: MonitoringEnv) -> None:
    page = browser_context.new_page()
    page.goto(env.sb.bc.load_url(env.store_hash, url="/catalog"))
    page.locator("#catalog-no-key").wait_for()  # no v3 key yet: the tab says what to do

    catalog_id = give_v3_key_and_a_catalog(env)
    page.get_by_role("tab", name="Product Catalog").click()
    page.wait_for_selector("#tab-content:not([aria-busy])")
    storefront = page.locator("#catalog-storefront-1")
    storefront.get_by_label("Catalog for this storefront").select_option(catalog_id)
    with page.expect_response(lambda r: r.request.method == "POST" and "/choose" in r.url):
        storefront.get_by_role("button", name="Use this catalog").click()
    page.locator(".banner--success").wait_for()
    assert catalog_id in page.locator(".banner--success").inner_text()

    with page.expect_response(lambda r: r.request.method == "POST" and "/sync" in r.url):
        page.locator("#catalog-sync-1").get_by_role("button", name="Sync now").click()
    page.wait_for_function(
        "() => { const c = document.querySelector('#catalog-sync-1 td:nth-child(3)');"
        " return c && c.textContent.trim().startsWith('done'); }",
        timeout=30_000,
    )
    sent = int(page.locator("#catalog-sync-1 .catalog-sent").inner_text())
    assert sent == len(env.sb.sm.catalogs.products(env.sb.sm.NORMAL.client_id, catalog_id)) > 0
    assert page.locator("#catalog-sync-1 .catalog-failed").inner_text().strip().startswith("0")
