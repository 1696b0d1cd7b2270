"""Who may steer the integration, in Chromium inside the sandbox control panel: a staff user sees the
Account tab read-only with the line saying who can change it; once the owner names them a manager,
the same user can log in to SALESmanago."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from smbc.core.http_server import BackgroundServer, free_port
from smbc.sandbox import Sandbox
from smbc.web.app import create_app
from support import make_settings

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
OWNER = "owner@sandbox.test"
STAFF = "staff@sandbox.test"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url) as sb:
        settings = make_settings(tmp_path, **{**sb.app_settings(), "app_url": app_url})
        with BackgroundServer(create_app(settings, start_workers=False), host="127.0.0.1", port=port):
            assert sb.bc.install(sb.bc.default_store_hash).status_code == 200
            yield sb


@pytest.fixture
def page(browser_context, sandbox: Sandbox):
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(sandbox.control_panel_url)
    yield page
    page.close()


def open_app_as(page, email: str, expected_heading: str):
    """Choose the user in the control panel and open the app in its frame."""
    value = page.locator("#user-select option", has_text=email).get_attribute("value")
    page.locator("#user-select").select_option(value)
    page.get_by_role("button", name="Open app").click()
    frame = page.frame_locator("iframe[name='app-frame']")
    # The frame is reused: wait for the page of this user (its header names them), then the tab.
    frame.locator(".app-header__email", has_text=email).wait_for()
    frame.locator("#tab-content:not([aria-busy])").wait_for()
    frame.get_by_role("heading", name=expected_heading).wait_for()
    return frame


def test_staff_sees_the_tab_read_only_until_named_a_manager(page, sandbox: Sandbox) -> None:
    frame = open_app_as(page, STAFF, "Log in to SALESmanago")
    expect(frame.locator("#who-may-change")).to_have_text(
        f"Only the store owner ({OWNER}) can change these settings."
    )
    expect(frame.get_by_role("button", name="Log in")).to_have_count(0)
    expect(frame.get_by_label("Password")).to_have_count(0)

    frame = open_app_as(page, OWNER, "Log in to SALESmanago")
    frame.get_by_label("Managers").fill(STAFF)
    frame.get_by_role("button", name="Update managers").click()
    frame.get_by_text("Managers saved.").wait_for()

    frame = open_app_as(page, STAFF, "Log in to SALESmanago")
    expect(frame.locator("#who-may-change")).to_have_count(0)
    frame.get_by_label("Email").fill(sandbox.sm.NORMAL.email)
    frame.get_by_label("Password").fill(sandbox.sm.NORMAL.password)
    frame.get_by_role("button", name="Log in").click()
    frame.get_by_text("Connected to SALESmanago.").wait_for()
    expect(frame.get_by_label("Opt-in callback URL")).to_have_count(1)
