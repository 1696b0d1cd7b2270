"""Monitoring code in Chromium, as the merchant and a shopper see it: the merchant saves the
Monitoring Code tab in the dashboard, the sandbox storefronts carry the code in their footer (and the
fake SALESmanago's sm.js sees what it set), a deleted script is reported and restored, and a visitor
SALESmanago knows gets their cart into SALESmanago under their contact id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitoring_support import MonitoringEnv, defaults, monitoring_env
from smbc.core.config import Settings
from support import require, wait_for

pytestmark = pytest.mark.browser

ENABLED = "Use the Monitoring Code on your BigCommerce store (recommended)"
# What the code on a storefront page set, and whether it sits after the page's content (footer).
READ_CODE = """() => {
  const code = [...document.scripts].find(s => s.text.includes('var _smid'));
  if (!code) return null;
  const main = document.querySelector('main');
  return {
    in_footer: !document.head.contains(code)
      && !!(main.compareDocumentPosition(code) & Node.DOCUMENT_POSITION_FOLLOWING),
    smid: window._smid, smapp: window._smapp || null,
    smcustom: window._smcustom === true, smbanners: window._smbanners === true,
    popups: [...document.scripts].some(s => s.src.endsWith('/popups.js')),
  };
}"""


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> Iterator[MonitoringEnv]:
    with monitoring_env(settings, tmp_path, workers=True) as running:
        page = httpx.get(running.storefront_url(1), timeout=10)
        require(page.status_code == 200, "the fake BigCommerce does not serve storefront pages")
        yield running


def open_tab(context, env: MonitoringEnv):
    page = context.new_page()
    page.goto(env.sb.bc.load_url(env.store_hash, url="/monitoring"))
    page.get_by_label(ENABLED).wait_for()
    return page


def save(page) -> str:
    """Click Save and wait for the tab to come back; returns the page-level message."""
    with page.expect_response(lambda r: r.request.method == "POST" and "/app/tabs/monitoring" in r.url):
        page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#tab-content:not([aria-busy])")
    return page.locator("#tab-content .banner").first.inner_text()


def storefront_code(context, env: MonitoringEnv, channel_id: int) -> dict[str, Any] | None:
    page = context.new_page()
    try:
        page.goto(env.storefront_url(channel_id))
        code = page.evaluate(READ_CODE)
        if code is not None:
            # sm.js came from the account's endpoint and saw the same values.
            page.wait_for_function("() => window.smSandbox && window.smSandbox['sm.js']")
            seen = page.evaluate("() => window.smSandbox")
            assert seen["smid"] == code["smid"] and seen["smcustom"] == code["smcustom"]
            assert seen["smbanners"] == code["smbanners"]
            if code["popups"]:
                page.wait_for_function("() => window.smSandbox['popups.js'] === true")
        return code
    finally:
        page.close()


def test_the_code_goes_live_on_each_selected_storefront_and_follows_every_change(
    browser_context, env: MonitoringEnv
) -> None:
    assert storefront_code(browser_context, env, 1) is None  # nothing before the first Save
    page = open_tab(browser_context, env)
    assert page.get_by_label(ENABLED).is_checked()  # [1] on by default
    assert "live on 2 storefronts" in save(page)
    for channel_id in (1, 2):
        code = storefront_code(browser_context, env, channel_id)
        assert code is not None and code["in_footer"], channel_id
        assert code["smid"] == env.client_id and code["smapp"] == 2
        assert not (code["smcustom"] or code["smbanners"] or code["popups"])
    # The preview [3] shows what BigCommerce holds now.
    assert page.get_by_label(re.compile("Monitoring code live on")).first.inner_text().startswith("<script>")

    page.get_by_label("Use additional flags or scripts").check()
    page.get_by_label("Custom Script").check()
    save(page)
    code = storefront_code(browser_context, env, 1)
    assert code and code["smcustom"] and not code["smbanners"] and not code["popups"]

    page.get_by_label("Custom Script").uncheck()
    page.get_by_label("Advanced Banners").check()
    save(page)
    code = storefront_code(browser_context, env, 2)
    assert code and code["smbanners"] and not code["smcustom"] and not code["popups"]

    page.get_by_label("HTML and Advanced Pop-ups").check()
    save(page)
    code = storefront_code(browser_context, env, 1)
    assert code and code["popups"] and code["smbanners"]

    page.get_by_label("Only the storefronts ticked below").check()
    page.get_by_label(re.compile(r"\(channel 2\)$")).check()
    assert "live on 1 storefront." in save(page)
    assert storefront_code(browser_context, env, 1) is None
    assert storefront_code(browser_context, env, 2) is not None

    page.get_by_label(ENABLED).uncheck()
    assert "not on any storefront" in save(page)
    assert storefront_code(browser_context, env, 1) is None
    assert storefront_code(browser_context, env, 2) is None
    assert page.get_by_text("No monitoring code is installed on your storefronts.").is_visible()


def test_a_script_deleted_in_script_manager_is_reported_and_restored(
    browser_context, env: MonitoringEnv
) -> None:
    assert env.save(**defaults()).status_code == 200
    env.sb.bc.admin(env.store_hash).delete_script(env.scripts()[1].uuid)
    assert storefront_code(browser_context, env, 1) is None

    page = open_tab(browser_context, env)
    assert page.get_by_text(re.compile("missing on channel 1")).is_visible()
    with page.expect_response(lambda r: r.url.endswith("/app/tabs/monitoring/restore")):
        page.get_by_role("button", name="Restore the monitoring code").click()
    page.wait_for_selector("#tab-content:not([aria-busy])")
    assert page.get_by_text("The monitoring code was restored.").is_visible()
    assert page.get_by_text(re.compile("missing on channel")).count() == 0
    code = storefront_code(browser_context, env, 1)
    assert code is not None and code["in_footer"]


def test_a_known_visitor_s_cart_reaches_salesmanago_under_their_contact_id(
    browser_context, env: MonitoringEnv
) -> None:
    from smbc.realtime.cart_links import linked_contact_id

    assert env.save(**defaults()).status_code == 200
    contact = env.sb.sm.add_contact(env.client_id, "known.visitor@example.test")
    contact_id = contact["contactId"]
    # sm.js sets `smclient` for a visitor SALESmanago knows; here the visitor already has it.
    browser_context.add_cookies([{"name": "smclient", "value": contact_id, "url": env.sb.bc_url}])

    page = browser_context.new_page()
    page.goto(env.storefront_url(1))
    page.get_by_role("button", name="Add Sandbox Mug to cart").click()
    cart_id = page.locator("#cart-id").inner_text()

    def linked() -> str | None:
        with env.app.state.runtime.db.session() as s:
            return linked_contact_id(s, env.store_id, cart_id)

    assert wait_for(linked, "the cart link", timeout=20) == contact_id

    def cart_event() -> list[dict[str, Any]]:
        return [e for e in env.sb.sm.events(env.client_id, type="CART") if e.get("contactId") == contact_id]

    events = wait_for(cart_event, "a CART event under the visitor's contact id", timeout=30)
    event = events[-1]
    assert event["email"] == "known.visitor@example.test"  # the contact SALESmanago already had
    assert "77" in str(event.get("products")) and float(event["value"]) == 12.5


def test_a_page_on_another_origin_cannot_link_a_cart(browser_context, env: MonitoringEnv) -> None:
    """CORS in a real browser: the preflight from a site that is not the store's storefront is refused,
    so the POST is never sent and nothing is stored."""
    from sqlalchemy import func, select

    from smbc.monitoring.models import CartLink

    page = browser_context.new_page()
    page.goto(env.sb.sm_url + "/sandbox")  # any page that is not one of the store's storefronts
    outcome = page.evaluate(
        """async ([url, store]) => {
          try {
            const r = await fetch(url + '/storefront/cart-link?store=' + store, {
              method: 'POST', mode: 'cors', headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({store: store, channel_id: 1,
                cart_id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
                smclient: '7c9e6679-7425-40de-944b-e07fc1f90ae7'})});
            return 'answered ' + r.status;
          } catch (e) { return 'blocked'; }
        }""",
        [env.url, env.store_hash],
    )
    assert outcome == "blocked"
    with env.app.state.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(CartLink)) == 0
