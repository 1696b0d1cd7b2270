from __future__ import annotations

import re
import threading
from collections.abc import Callable

import httpx
import jwt
import pytest
from fake_bc_harness import CLIENT_ID, CLIENT_SECRET, Harness, fake_bc_servers, harness_fixture  # noqa: F401

from support import chromium_path, require


def add_script(h: Harness, token: str, **fields: object) -> dict:
    body = {
        "name": "s",
        "kind": "src",
        "src": "https://cdn.test/a.js",
        "consent_category": "analytics",
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    with h.api(token) as api:
        answer = api.post("/v3/content/scripts", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_storefront_renders_enabled_scripts_of_its_channel_by_location(harness: Harness) -> None:
    h = harness
    token = h.install()
    add_script(h, token, name="head-1", src="https://cdn.test/head.js", location="head", load_method="async")
    add_script(h, token, name="foot-1", kind="script_tag", html="<script>window.tracked = 1;</script>")
    add_script(h, token, name="other-channel", src="https://cdn.test/two.js", channel_id=2)
    add_script(h, token, name="off", src="https://cdn.test/off.js", enabled=False)
    page = httpx.get(f"{h.url}/storefront/{h.store_hash}/1/").text
    head, body = page.split("</head>", 1)
    assert '<script src="https://cdn.test/head.js" async' in head
    assert "<script>window.tracked = 1;</script>" in body.split("</main>", 1)[1]
    assert "two.js" not in page and "off.js" not in page
    assert "https://cdn.test/two.js" in httpx.get(f"{h.url}/storefront/{h.store_hash}/2/").text
    assert httpx.get(f"{h.url}/storefront/{h.store_hash}/9/").status_code == 404


def test_consent_banner_holds_back_scripts_until_the_shopper_accepts(harness: Harness) -> None:
    h = harness
    token = h.install()
    add_script(h, token, name="tracker", src="https://cdn.test/track.js", consent_category="analytics")
    add_script(h, token, name="needed", src="https://cdn.test/needed.js", consent_category="essential")
    add_script(h, token, name="unsorted", src="https://cdn.test/unknown.js", consent_category=None)
    base = f"/storefront/{h.store_hash}/1"
    assert "track.js" in httpx.get(f"{h.url}{base}/").text  # no banner: everything runs
    h.bc.admin(h.store_hash).set_consent_banner(True)
    with h.api(token) as api:
        assert api.get("/v2/store").json()["features"]["shopper_consent_tracking_enabled"] is True
    with httpx.Client(base_url=h.url, follow_redirects=True) as browser:
        first = browser.get(f"{base}/").text
        assert "Accept all cookies" in first and "needed.js" in first
        assert "track.js" not in first and "unknown.js" not in first
        essential = browser.post(f"{base}/actions/consent", data={"choice": "essential"}).text
        assert "Accept all cookies" not in essential and "track.js" not in essential
        accepted = browser.post(f"{base}/actions/consent", data={"choice": "all"}).text
        assert "track.js" in accepted and "needed.js" in accepted and "unknown.js" not in accepted


def test_storefront_buttons_drive_the_python_api_and_the_cart_endpoint(harness: Harness) -> None:
    h = harness
    base = f"/storefront/{h.store_hash}/1"
    with httpx.Client(base_url=h.url, follow_redirects=True) as browser:
        browser.get(f"{base}/")
        assert browser.get("/api/storefront/carts").json() == []
        page = browser.post(f"{base}/actions/add", data={"product_id": "78"})
        assert "Added to cart." in page.text
        carts = browser.get("/api/storefront/carts").json()
        assert len(carts) == 1 and carts[0]["lineItems"]["physicalItems"][0]["sku"] == "TEE-01"
        cart_id = carts[0]["id"]
        registered = browser.post(
            f"{base}/actions/register",
            data={"email": "web@shop.test", "first_name": "Web", "last_name": "Shopper", "newsletter": "on"},
        )
        assert "Signed in as web@shop.test" in registered.text
        state = h.bc.store(h.store_hash)
        customer = state.customer_by_email("web@shop.test")
        assert customer is not None and state.carts[cart_id].customer_id == customer.id
        assert state.subscriber_by_email("web@shop.test").consents == ["marketing_newsletter"]
        item_id = carts[0]["lineItems"]["physicalItems"][0]["id"]
        browser.post(f"{base}/actions/update", data={"item_id": item_id, "quantity": "3"})
        assert state.carts[cart_id].line_items[0].quantity == 3
        done = browser.post(f"{base}/actions/checkout", data={})
        order_id = int(re.search(r"Order #(\d+)", done.text).group(1))
        assert state.orders[order_id].customer_id == customer.id
        assert browser.get("/api/storefront/carts").json() == []
        bad = browser.post(f"{base}/actions/register", data={"email": "web@shop.test", "first_name": "A"})
        assert "already exists" in bad.text


def test_current_customer_jwt_names_the_signed_in_shopper(harness: Harness) -> None:
    h = harness
    base = f"/storefront/{h.store_hash}/2"
    customer = h.bc.storefront(h.store_hash, channel_id=2).register("me@shop.test", "Me", "Myself")
    with httpx.Client(base_url=h.url, follow_redirects=True) as browser:
        browser.get(f"{base}/")
        assert browser.get("/customer/current.jwt", params={"app_client_id": CLIENT_ID}).status_code == 404
        browser.post(f"{base}/actions/login", data={"email": "me@shop.test"})
        answer = browser.get("/customer/current.jwt", params={"app_client_id": CLIENT_ID})
        assert browser.get("/customer/current.jwt", params={"app_client_id": "other"}).status_code == 403
    claims = jwt.decode(answer.text, CLIENT_SECRET, algorithms=["HS512"], audience=CLIENT_ID)
    assert claims["customer"]["id"] == customer["id"] and claims["customer"]["email"] == "me@shop.test"
    assert claims["store_hash"] == h.store_hash and claims["operation"] == "current_customer"
    assert claims["channel_id"] == 2


def test_guest_checkout_with_newsletter_box(harness: Harness) -> None:
    h = harness
    base = f"/storefront/{h.store_hash}/2"
    with httpx.Client(base_url=h.url, follow_redirects=True) as browser:
        browser.post(f"{base}/actions/add", data={"product_id": "77"})
        done = browser.post(f"{base}/actions/checkout", data={"email": "guest@shop.test", "newsletter": "on"})
    order_id = int(re.search(r"Order #(\d+)", done.text).group(1))
    order = h.bc.store(h.store_hash).orders[order_id]
    assert order.customer_id == 0 and order.channel_id == 2 and order.is_email_opt_in
    subscriber = h.bc.store(h.store_hash).subscriber_by_email("guest@shop.test")
    assert subscriber.source == "order" and subscriber.order_id == order_id


def test_control_panel_install_and_open_redirect_into_the_app(harness: Harness) -> None:
    h = harness
    with httpx.Client(base_url=h.url) as browser:
        page = browser.get("/manage").text
        for name in ("Install app", "Open app", "Uninstall", "Revoke user access"):
            assert f">{name}</button>" in page
        install = browser.post("/manage/install", data={"store": h.store_hash, "user_id": "1002"})
        assert install.status_code == 303
        target = install.headers["location"]
        assert target.startswith(f"{h.app_url}/bigcommerce/auth?code=")
        assert httpx.get(target).status_code == 200
        assert h.app.tokens[-1]["user"]["id"] == 1002
        opened = browser.post(
            "/manage/open", data={"store": h.store_hash, "user_id": "1001", "channel_id": "2"}
        )
        jwt_value = httpx.URL(opened.headers["location"]).params["signed_payload_jwt"]
        claims = jwt.decode(jwt_value, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
        assert claims["channel_id"] == 2 and claims["user"]["id"] == 1001
        revoked = browser.post("/manage/remove-user", data={"store": h.store_hash, "user_id": "1002"})
        assert revoked.status_code == 303 and h.app.calls[-1][0] == "remove-user"
        owner = browser.post(
            "/manage/remove-user", data={"store": h.store_hash, "user_id": "1001"}, follow_redirects=True
        )
        assert "cannot be revoked" in owner.text
        gone = browser.post(
            "/manage/uninstall", data={"store": h.store_hash, "user_id": "1001"}, follow_redirects=True
        )
        assert "App uninstalled" in gone.text and "not installed" in gone.text
        assert h.bc.access_token(h.store_hash) is None


def in_own_thread(work: Callable[[], None]) -> None:
    """Run Playwright's sync API on a thread of its own: a session-wide Playwright (tests/browser) keeps an
    event loop on the main thread, where a second sync_playwright() refuses to start."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the browser did not finish"
    if failures:
        raise failures[0]


@pytest.mark.browser
def test_control_panel_frames_the_app_cross_site_in_chromium(harness: Harness) -> None:
    chromium = chromium_path()
    require(chromium is not None, "Chromium is not installed")
    from playwright.sync_api import sync_playwright

    h = harness
    panel = h.url.replace("127.0.0.1", "localhost")  # a different site from the app at 127.0.0.1
    args = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"]

    def shop_and_install() -> None:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=args)
            try:
                page = browser.new_page()
                page.goto(f"{panel}/manage")
                page.get_by_label("Act as user").select_option("1002")
                page.get_by_role("button", name="Install app").click()
                frame = page.frame_locator("iframe[name=app-frame]")
                frame.get_by_role("heading", name="Installed").wait_for()
                assert h.app.tokens[-1]["user"]["email"] == "staff@sandbox.test"
                page.get_by_label("Open from").select_option("1")
                page.get_by_role("button", name="Open app").click()
                frame.get_by_role("heading", name="load").wait_for()
                token = h.app.calls[-1][1]["signed_payload_jwt"]
                claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
                assert claims["channel_id"] == 1
                page.goto(f"{panel}/storefront/{h.store_hash}/1/")
                page.get_by_role("button", name="Add Sandbox Mug to cart").click()
                page.get_by_label("Checkout email").fill("pw@shop.test")
                page.get_by_label("Subscribe to our newsletter").check()
                page.get_by_role("button", name="Place order").click()
                page.get_by_text(re.compile(r"Order #\d+ was placed")).wait_for()
            finally:
                browser.close()

    in_own_thread(shop_and_install)
    assert h.bc.store(h.store_hash).subscriber_by_email("pw@shop.test").consents == ["marketing_newsletter"]
