"""Account and Platform Settings in Chromium, inside the sandbox control panel (the app in its
cross-site frame, third-party cookies blocked): log in, change every field of both tabs, save, open
the app again and see the values; each validation error appears at its field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from smbc.core.http_server import BackgroundServer, free_port
from smbc.db.models import Store
from smbc.sandbox import Sandbox
from smbc.settings.store_settings import load_store_settings
from smbc.stores.setup import run_store_setup
from smbc.web.app import create_app
from support import make_settings

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@dataclass
class Running:
    sb: Sandbox
    app: FastAPI
    app_url: str
    store_hash: str

    def store_settings(self):
        with self.app.state.runtime.db.session() as s:
            store = s.scalar(select(Store).where(Store.hash == self.store_hash))
            return load_store_settings(s, store.id)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The sandbox and the app, installed on the sandbox store and set up (channels and sites)."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url) as sb:
        settings = make_settings(tmp_path, **{**sb.app_settings(), "app_url": app_url})
        app = create_app(settings, start_workers=False)
        with BackgroundServer(app, host="127.0.0.1", port=port):
            store_hash = sb.bc.default_store_hash
            assert sb.bc.install(store_hash).status_code == 200
            with app.state.runtime.db.session() as s:
                store_id = s.scalar(select(Store.id).where(Store.hash == store_hash))
            assert run_store_setup(store_id)  # what the queued set-up job does
            yield Running(sb, app, app_url, store_hash)


@pytest.fixture
def page(browser_context, running: Running):
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.close()


def open_app(page, running: Running):
    """Open the app from the sandbox control panel (another site), inside its frame."""
    page.goto(running.sb.control_panel_url)
    page.get_by_role("button", name="Open app").click()
    frame = page.frame_locator("iframe[name='app-frame']")
    frame.locator("#tab-content:not([aria-busy])").wait_for()
    frame.locator("#tab-content h2").first.wait_for()
    return frame


def log_in(frame, running: Running) -> None:
    frame.get_by_label("Email").fill(running.sb.sm.NORMAL.email)
    frame.get_by_label("Password").fill(running.sb.sm.NORMAL.password)
    frame.get_by_role("button", name="Log in").click()
    frame.get_by_text("Connected to SALESmanago.").wait_for()


def save_and_wait(frame) -> None:
    frame.get_by_role("button", name="Save").click()
    frame.get_by_text("Settings saved.").wait_for()


def expect_error(frame, field: str, fragment: str) -> None:
    """The message appears under the field (waiting for the new answer, not a previous one)."""
    from playwright.sync_api import expect

    expect(frame.locator(f"#{field}-error")).to_contain_text(fragment, timeout=TIMEOUT_MS)
    expect(frame.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(frame.locator(f"#{field}")).to_have_attribute(
        "aria-describedby", re.compile(rf"\b{field}-error\b")
    )


def test_login_change_every_field_save_reopen(page, running: Running) -> None:
    sm = running.sb.sm
    frame = open_app(page, running)

    # Login form: the endpoint appears only with "Change endpoint".
    endpoint = frame.get_by_label("Endpoint", exact=True)
    assert not endpoint.is_visible()
    frame.get_by_label("Change endpoint").check()
    assert endpoint.is_visible() and endpoint.input_value() == running.sb.sm_url
    log_in(frame, running)

    # Account Settings: [1], [2] read-only; [3]-[7] changed; [8] callback URLs.
    assert frame.get_by_label("SALESmanago Client ID").input_value() == sm.NORMAL.client_id
    assert frame.get_by_label("Endpoint").input_value() == running.sb.sm_url
    assert frame.get_by_label("SALESmanago Client ID").get_attribute("readonly") is not None
    main_shop = frame.get_by_label(re.compile(r"^Location for .*", re.I)).first
    assert main_shop.input_value().startswith("sm_")
    locations = frame.locator("input[id^='location_']")
    assert locations.count() == 2  # one per storefront channel of the sandbox store
    locations.nth(0).fill("main_shop")
    locations.nth(1).fill("outlet_shop")
    frame.get_by_label("Contact owner email").select_option("sales@sandbox.test")
    frame.get_by_label("Double opt-in").check()
    frame.get_by_label("Email template ID").fill("tpl-1")
    frame.get_by_label("Email account ID").fill("acc-2")
    frame.get_by_label("Email subject").fill("Please confirm")
    frame.get_by_label("Opt-in consent synchronization").check()
    opt_in_url = frame.get_by_label("Opt-in callback URL").input_value()
    assert opt_in_url.startswith(f"{running.app_url}/callbacks/salesmanago/opt-in?email=$email$&store=")
    assert (
        frame.get_by_label("Opt-out callback URL")
        .input_value()
        .startswith(f"{running.app_url}/callbacks/salesmanago/opt-out?email=$email$&store=")
    )
    copy = frame.get_by_role("button", name="Copy the opt-in address")
    copy.click()
    frame.get_by_role("button", name="Copy the opt-in address").filter(has_text="Copied").wait_for()
    save_and_wait(frame)

    # Platform Settings: every field.
    frame.get_by_role("tab", name="Platform Settings").click()
    frame.get_by_label("Registration tags").wait_for()
    frame.get_by_label("Registration tags").fill("new customer, bc")
    frame.get_by_label("Newsletter subscription tags").fill("newsletter")
    frame.get_by_label("Purchase tags", exact=True).fill("buyer, buyer")
    frame.get_by_label("Guest purchase tags").fill("guest buyer")
    frame.get_by_label("Cart updates become new events after").select_option("4h")
    frame.get_by_label("Custom monitoring cookie lifetime").check()
    frame.get_by_label("Monitoring cookie lifetime (days)").fill("30")
    frame.get_by_label("Ignored email domains").fill("Temp-Mail.com , 10minutemail.net")
    frame.get_by_label("Product identifier").select_option("sku")
    frame.get_by_label("Shipped", exact=True).uncheck()
    frame.get_by_label("Pending", exact=True).check()
    frame.get_by_label("Delete the SALESmanago contact when a customer is deleted").check()
    save_and_wait(frame)

    # Open the app again (a fresh load): every value is there, in both tabs.
    frame = open_app(page, running)
    assert locations_values(frame) == ["main_shop", "outlet_shop"]
    assert frame.get_by_label("Contact owner email").input_value() == "sales@sandbox.test"
    assert frame.get_by_label("Double opt-in").is_checked()
    assert frame.get_by_label("Email template ID").input_value() == "tpl-1"
    assert frame.get_by_label("Email account ID").input_value() == "acc-2"
    assert frame.get_by_label("Email subject").input_value() == "Please confirm"
    assert frame.get_by_label("Opt-in consent synchronization").is_checked()
    assert frame.get_by_label("Opt-in callback URL").input_value() == opt_in_url
    frame.get_by_role("tab", name="Platform Settings").click()
    frame.get_by_label("Registration tags").wait_for()
    assert frame.get_by_label("Registration tags").input_value() == "NEW_CUSTOMER, BC"
    assert frame.get_by_label("Newsletter subscription tags").input_value() == "NEWSLETTER"
    assert frame.get_by_label("Purchase tags", exact=True).input_value() == "BUYER"
    assert frame.get_by_label("Guest purchase tags").input_value() == "GUEST_BUYER"
    assert frame.get_by_label("Cart updates become new events after").input_value() == "4h"
    assert frame.get_by_label("Custom monitoring cookie lifetime").is_checked()
    assert frame.get_by_label("Monitoring cookie lifetime (days)").input_value() == "30"
    assert frame.get_by_label("Ignored email domains").input_value() == "temp-mail.com, 10minutemail.net"
    assert frame.get_by_label("Product identifier").input_value() == "sku"
    assert frame.get_by_label("Pending", exact=True).is_checked()
    assert not frame.get_by_label("Shipped", exact=True).is_checked()
    assert frame.get_by_label("Completed", exact=True).is_checked()
    assert frame.get_by_label("Delete the SALESmanago contact when a customer is deleted").is_checked()

    saved = running.store_settings()
    assert saved.purchase_statuses == [1, 3, 8, 9, 10, 11]
    assert saved.locations == {1: "main_shop", 2: "outlet_shop"}
    assert saved.contact_owner == "sales@sandbox.test" and saved.monitoring_cookie_days == 30


def locations_values(frame) -> list[str]:
    inputs = frame.locator("input[id^='location_']")
    return [inputs.nth(i).input_value() for i in range(inputs.count())]


def test_each_validation_error_at_its_field(page, running: Running) -> None:
    frame = open_app(page, running)
    # Login errors.
    frame.get_by_label("Email").fill("merchant@sandbox.test")
    frame.get_by_label("Password").fill("wrong-password")
    frame.get_by_role("button", name="Log in").click()
    expect_error(frame, "password", "did not accept this e-mail and password")
    frame.get_by_label("Email").fill(running.sb.sm.TWO_FACTOR.email)
    frame.get_by_label("Password").fill(running.sb.sm.TWO_FACTOR.password)
    frame.get_by_role("button", name="Log in").click()
    frame.get_by_text("two-factor authentication", exact=False).wait_for()
    frame.get_by_role("button", name="Use API credentials instead").click()
    frame.get_by_label("Client ID").wait_for()
    frame.get_by_label("Endpoint").fill(running.sb.sm_url)
    frame.get_by_label("Client ID").fill(running.sb.sm.NORMAL.client_id)
    frame.get_by_label("API secret").fill("not-the-secret")
    frame.get_by_label("Owner email").fill(running.sb.sm.NORMAL.email)
    frame.get_by_role("button", name="Connect").click()
    expect_error(frame, "api_secret", "did not accept this client ID and API secret")
    frame.get_by_label("API secret").fill(running.sb.sm.NORMAL.api_secret)
    frame.get_by_role("button", name="Connect").click()
    frame.get_by_text("Connected to SALESmanago.").wait_for()

    # Account Settings errors: location, double opt-in (all or nothing).
    frame.locator("input[id^='location_']").first.fill("1 shop")
    frame.get_by_label("Email template ID").fill("tpl-1")
    frame.get_by_role("button", name="Save").click()
    expect_error(frame, "location_1", "letters, digits and _")
    expect_error(frame, "double_opt_in_account_id", "all three")
    expect_error(frame, "double_opt_in_subject", "all three")
    assert frame.locator("#location_1").input_value() == "1 shop"  # what was typed stays to be fixed
    frame.locator("#location_1").fill("ab")
    frame.get_by_role("button", name="Save").click()
    expect_error(frame, "location_1", "3 to 36 characters")

    # Platform Settings errors.
    frame.get_by_role("tab", name="Platform Settings").click()
    frame.get_by_label("Registration tags").wait_for()
    frame.get_by_label("Registration tags").fill("x" * 256)
    frame.get_by_label("Custom monitoring cookie lifetime").check()
    frame.get_by_label("Monitoring cookie lifetime (days)").fill("4000")
    frame.get_by_label("Ignored email domains").fill("ok.com, not a domain")
    for status in ("Shipped", "Partially Shipped", "Awaiting Pickup", "Awaiting Shipment", "Completed"):
        frame.get_by_label(status, exact=True).uncheck()
    frame.get_by_label("Awaiting Fulfillment", exact=True).uncheck()
    frame.get_by_role("button", name="Save").click()
    expect_error(frame, "tags_registration", "at most 255 characters")
    expect_error(frame, "monitoring_cookie_days", "1 to 3652")
    expect_error(frame, "ignored_domains", "Not a domain name: not a domain")
    from playwright.sync_api import expect

    expect(frame.locator("#purchase_statuses-error")).to_contain_text("at least one")

    saved = running.store_settings()  # nothing of the refused saves was stored
    assert saved.tags_registration == [] and saved.monitoring_cookie_days is None
    assert saved.locations == {} and saved.double_opt_in_template_id == ""
