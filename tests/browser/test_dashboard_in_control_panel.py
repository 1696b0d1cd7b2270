"""The merchant's path in Chromium with third-party cookies blocked: the sandbox control panel
(http://localhost:PORT/manage) frames the app (http://127.0.0.1:PORT); Install opens the onboarding
dashboard in the frame; tabs switch; the app sets no cookie; a revoked session says what to do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app_stack import AppStack
from smbc.core.config import Settings
from support import require

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SMBC_SCREENSHOT_DIR", "var/screenshots"))


@pytest.fixture
def stack(settings: Settings) -> Iterator[AppStack]:
    with AppStack(settings) as running:
        yield running


def install_from_control_panel(page, stack: AppStack):
    answer = page.goto(stack.sb.control_panel_url)
    require(answer.status != 404, "the sandbox control panel page (/manage) has not landed yet")
    assert page.url.startswith("http://localhost:")
    page.get_by_role("button", name="Install app").click()
    frame = page.frame(name="app-frame")
    frame.wait_for_url(f"{stack.app_url}/bigcommerce/auth?*")
    frame.get_by_text("The app is installed").wait_for()
    # The first tab has loaded: dashboard.js is running (clicks before that only move to an anchor).
    frame.locator("#tab-content:not([aria-busy])").wait_for()
    return frame


def test_install_by_clicking_opens_the_dashboard_and_tabs_switch(browser_context, stack: AppStack) -> None:
    page = browser_context.new_page()
    frame = install_from_control_panel(page, stack)
    assert frame.locator("[data-role]").inner_text() == "Store owner"
    assert stack.store().installed

    frame.get_by_role("tab", name="Export Data").click()
    frame.locator("#tab-content").get_by_role("heading", name="Export Data").wait_for()
    assert "is-active" in frame.get_by_role("tab", name="Export Data").get_attribute("class")
    assert frame.get_by_role("tab", name="Account Settings").get_attribute("aria-selected") == "false"

    frame.get_by_role("tab", name="Activity").click()
    frame.locator("#tab-content").get_by_role("heading", name="Activity").wait_for()

    # Whatever each tab answers, the dashboard shows something meaningful (never a blank panel).
    for name in ("Account Settings", "Platform Settings", "Monitoring Code"):
        frame.get_by_role("tab", name=name).click()
        frame.locator("#tab-content:not([aria-busy])").wait_for()
        assert frame.locator("#tab-content").inner_text().strip()

    # The app never relies on cookies (they are blocked here anyway).
    assert [c for c in browser_context.cookies() if c["domain"] == "127.0.0.1"] == []

    # Open the app again from the control panel as the staff user: same frame, "Store user".
    page.get_by_label("Act as user").select_option(label="staff@sandbox.test (staff, id 1002)")
    page.get_by_role("button", name="Open app").click()
    frame.locator("[data-role]", has_text="Store user").wait_for()


def test_revoked_session_tells_the_merchant_to_reopen_the_app(browser_context, stack: AppStack) -> None:
    page = browser_context.new_page()
    frame = install_from_control_panel(page, stack)
    assert stack.sb.bc.uninstall(stack.store_hash).status_code == 200
    frame.get_by_role("tab", name="Activity").click()
    banner = frame.locator("#session-ended")
    banner.wait_for(state="visible")
    assert "open the app again from the control panel" in banner.inner_text()


def test_a_settings_form_saves_and_shows_errors_next_to_fields(browser_context, stack: AppStack) -> None:
    page = browser_context.new_page()
    frame = install_from_control_panel(page, stack)
    frame.get_by_role("tab", name="Platform Settings").click()
    tags = frame.get_by_label("Registration tags")
    tags.fill("vip, new customer")
    frame.get_by_role("button", name="Save").click()
    frame.get_by_text("Settings saved.").wait_for()

    frame.get_by_label("Custom monitoring cookie lifetime").check()
    frame.get_by_label("Monitoring cookie lifetime (days)").fill("0")
    frame.get_by_role("button", name="Save").click()
    days = frame.get_by_label("Monitoring cookie lifetime (days)")
    frame.locator(".field-error").first.wait_for()
    assert days.get_attribute("aria-invalid") == "true"

    # What was saved is there after switching tabs (the refused change is not).
    frame.get_by_role("tab", name="Activity").click()
    frame.locator("#tab-content").get_by_role("heading", name="Activity").wait_for()
    frame.get_by_role("tab", name="Platform Settings").click()
    saved = frame.get_by_label("Registration tags")
    saved.wait_for()
    assert saved.input_value().replace(" ", "").upper() in ("VIP,NEW_CUSTOMER", "VIP,NEWCUSTOMER")
    assert not frame.get_by_label("Custom monitoring cookie lifetime").is_checked()


@pytest.mark.parametrize("width", [1024, 1440])
def test_dashboard_fits_and_is_screenshotted(chromium, stack: AppStack, width: int) -> None:
    context = chromium.launch(block_third_party_cookies=True, width=width, height=900)
    page = context.new_page()
    frame = install_from_control_panel(page, stack)
    frame.get_by_role("tab", name="Export Data").click()
    frame.locator("#tab-content").get_by_role("heading", name="Export Data").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"control-panel-{width}.png"), full_page=True)

    # The app on its own at this width (as BigCommerce's full-width app frame shows it).
    direct = context.new_page()
    direct.goto(stack.sb.bc.load_url(stack.store_hash))
    direct.locator("#tab-content:not([aria-busy])").wait_for()
    direct.screenshot(path=str(SCREENSHOTS / f"dashboard-account-{width}.png"), full_page=True)
    direct.get_by_role("tab", name="Export Data").click()
    direct.locator("#tab-content").get_by_role("heading", name="Export Data").wait_for()
    direct.screenshot(path=str(SCREENSHOTS / f"dashboard-{width}.png"), full_page=True)
    overflow = direct.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the dashboard scrolls sideways at {width} px"
    tabs = direct.locator("[data-tab]")
    tops = {round(tabs.nth(i).bounding_box()["y"]) for i in range(tabs.count())}
    assert len(tops) == 1, "the tabs wrap onto more than one row"
    context.close()
