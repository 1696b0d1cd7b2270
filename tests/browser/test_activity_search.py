"""The Activity tab's search box in Chromium: after a real checkout in the sandbox, the merchant
looks up the order and the buyer's e-mail and sees what happened and why; a bad search says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from integration.realtime_env import RealtimeEnv
from smbc.core.clock import FakeClock
from smbc.core.config import Settings

pytestmark = pytest.mark.browser


@pytest.fixture
def env(settings: Settings) -> Iterator[RealtimeEnv]:
    # The fake clock starts at the real time: the browser checks the session's expiry with its own.
    with RealtimeEnv(settings, FakeClock(datetime.now(UTC))) as environment:
        yield environment


def search(page, kind: str, value: str) -> None:
    page.get_by_label("Look for").select_option(kind)
    page.get_by_label("Order id, customer id, e-mail or cart id").fill(value)
    with page.expect_response(lambda r: "/app/activity/search" in r.url):
        page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#activity-search:not([aria-busy])")


def test_the_merchant_finds_what_happened_to_an_order_and_a_person(browser_context, env: RealtimeEnv) -> None:
    customer = env.storefront.register("ola@example.com", "Ola", "<b>Bold</b>", newsletter=True)
    cart = env.storefront.add_to_cart(product_id=77, quantity=1, customer_id=customer["id"])
    order = env.storefront.checkout(cart["id"], customer_id=customer["id"])
    env.settle()

    page = browser_context.new_page()
    page.goto(env.sb.bc.load_url(env.store_hash, url="/activity"))
    page.get_by_role("button", name="Search").wait_for()

    search(page, "order", str(order["id"]))
    result = page.locator("#search-result")
    assert result.locator("h4").first.inner_text() == f"Everything about order {order['id']}"
    rows = result.locator("tbody tr").all_inner_texts()
    assert any("store/order/" in row and "PURCHASE sent (event " in row for row in rows)
    assert any(f"PURCHASE of order {order['id']}" in row and "sent" in row for row in rows)

    search(page, "email", "  OLA@example.com ")
    assert page.locator("#search-result h4").first.inner_text() == "Everything about email ola@example.com"
    assert page.locator("#consent-history").is_visible()
    consent = page.locator("#consent-history tbody tr").all_inner_texts()
    assert any("BigCommerce" in row and "opted in" in row and "/api/contact/upsert" in row for row in consent)
    rows = page.locator("#search-result tbody tr").all_inner_texts()
    assert any("consent opted in, from BigCommerce (delivery:" in row for row in rows)

    search(page, "customer", "seven")
    error = page.locator("#search-value-error")
    assert error.inner_text() == "customer: must be a customer id (a whole number)"
    assert (
        page.get_by_label("Order id, customer id, e-mail or cart id").get_attribute("aria-invalid") == "true"
    )
    assert page.locator("#search-result").count() == 0
    assert page.locator("#tab-content b").count() == 0  # a customer's name is text, never markup
