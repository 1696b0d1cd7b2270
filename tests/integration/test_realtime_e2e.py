"""Real time end to end: shopper and admin actions on the fake BigCommerce become contacts and
events in the fake SALESmanago, through webhooks, the inbox, the queue and the workers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from realtime_env import RealtimeEnv

from smbc.core.config import Settings
from smbc.realtime import processing as realtime
from smbc.reconcile.service import reconcile_store
from smbc.settings.store_settings import default_location
from smbc.stores.hooks import SECRET_HEADER
from support import wait_for


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


def channel_location(env: RealtimeEnv, channel_id: int = 1) -> str:
    site = next(s for s in env.store.sites if int(s["channel_id"]) == channel_id)
    return default_location(site["url"])


def test_registration_customer_update_and_email_change(env: RealtimeEnv) -> None:
    env.configure(**{"tags.registration": "bc register"})
    customer = env.storefront.register(
        "Ann.Lee@Example.com",
        "Ann",
        "Lee",
        phone="+1 555 0100",
        company="Lee & Co",
        address={"address1": "1 Elm St", "city": "Austin", "postal_code": "78701", "country_code": "US"},
    )
    env.settle()
    contact = env.contact("ann.lee@example.com")
    assert contact is not None
    assert (contact["name"], contact["phone"], contact["company"]) == ("Ann Lee", "+1 555 0100", "Lee & Co")
    assert contact["externalId"] == str(customer["id"])
    assert "BC_REGISTER" in contact["tags"]
    assert contact["address"]["city"] == "Austin"
    assert contact["optedIn"] is False  # registering without the newsletter box opts nobody in

    env.admin.update_customer(customer["id"], phone="+1 555 0199")
    env.settle()
    assert env.contact("ann.lee@example.com")["phone"] == "+1 555 0199"

    env.admin.update_customer(customer["id"], email="ann.new@example.com")
    env.settle()
    assert env.contact("ann.new@example.com") is not None
    assert env.contact("ann.lee@example.com") is None  # the same contact, renamed (newEmail)


def test_guest_checkout_sends_purchase_with_contact_and_closes_the_cart(env: RealtimeEnv) -> None:
    env.configure(**{"tags.guest_purchase": "guest buyer"})
    cart = env.storefront.add_to_cart(product_id=77, quantity=2)
    env.storefront.set_cart_email(cart["id"], "guest@example.com")
    env.settle()
    [cart_event] = env.events("CART")
    order = env.storefront.checkout(cart["id"], guest_email="guest@example.com")
    env.settle()
    [purchase] = env.events("PURCHASE")
    assert purchase["email"] == "guest@example.com"
    assert purchase["externalId"] == str(order["id"])
    assert purchase["value"] == float(order["total_inc_tax"])
    assert purchase["products"] == "77"
    assert purchase["location"] == channel_location(env)
    assert purchase["description"] == order["payment_method"]
    contact = env.contact("guest@example.com")
    assert "GUEST_BUYER" in contact["tags"] and not contact.get("externalId")
    assert cart_event["eventId"] != purchase["eventId"]
    # a new cart of the same shopper after the purchase is a new CART event
    again = env.storefront.add_to_cart(product_id=77, quantity=1)
    env.storefront.set_cart_email(again["id"], "guest@example.com")
    env.settle()
    assert len(env.events("CART")) == 2


def test_customer_checkout_cancel_and_refund(env: RealtimeEnv) -> None:
    env.configure(**{"tags.purchase": "buyer"})
    customer = env.storefront.register("bob@example.com", "Bob", "Buyer")
    cart = env.storefront.add_to_cart(product_id=77, quantity=1, customer_id=customer["id"])
    order = env.storefront.checkout(cart["id"], customer_id=customer["id"])
    env.settle()
    [purchase] = env.events("PURCHASE")
    assert purchase["email"] == "bob@example.com"
    contact = env.contact("bob@example.com")
    assert "BUYER" in contact["tags"] and contact["externalId"] == str(customer["id"])

    env.admin.refund(order["id"], amount="1.00")
    env.settle()
    [refund] = env.events("RETURN")
    assert refund["value"] == 1.0 and refund["externalId"] == str(order["id"])

    env.admin.set_order_status(order["id"], 5)
    env.settle()
    [cancel] = env.events("CANCELLATION")
    assert cancel["externalId"] == str(order["id"])
    assert len(env.events("PURCHASE")) == 1


def test_the_same_delivery_three_times_sends_once(env: RealtimeEnv) -> None:
    cart = env.storefront.add_to_cart(product_id=77)
    order = env.storefront.checkout(cart["id"], guest_email="thrice@example.com")
    env.settle()
    [attempt] = [
        a for a in env.bc.webhooks.attempts("store/order/created") if a.payload["data"]["id"] == order["id"]
    ]
    for _ in range(3):
        answer = httpx.post(
            f"{env.app_url}/webhooks/bigcommerce",
            json=attempt.payload,
            headers={SECRET_HEADER: attempt.headers[SECRET_HEADER]},
        )
        assert answer.status_code == 200
    env.bc.webhooks.duplicates = True
    env.admin.set_order_status(order["id"], 2)  # shipped: still a purchase, nothing new to send
    env.settle()
    assert len(env.events("PURCHASE")) == 1
    assert len(env.deliveries("store/order/created")) == 1


def test_status_update_arriving_before_created(env: RealtimeEnv) -> None:
    cart = env.storefront.add_to_cart(product_id=77)
    env.settle()
    env.bc.webhooks.drop_next(100)  # lose everything the checkout fires; we deliver it ourselves
    order = env.storefront.checkout(cart["id"], guest_email="early@example.com")
    env.settle()
    dropped = {d.payload["scope"]: d for d in env.bc.webhooks.dropped}
    for scope in ("store/order/statusUpdated", "store/order/created"):
        delivery = dropped[scope]
        answer = httpx.post(
            f"{env.app_url}/webhooks/bigcommerce", json=delivery.payload, headers=delivery.target.headers
        )
        assert answer.status_code == 200
        env.settle()
    [purchase] = env.events("PURCHASE")
    assert purchase["externalId"] == str(order["id"])
    statuses = [d.reason for d in env.deliveries("store/order/created")]
    assert statuses and "already sent" in statuses[0]


def test_salesmanago_failing_for_a_while_then_recovering(env: RealtimeEnv) -> None:
    env.sm.fail_next(6, 503)
    customer = env.storefront.register("patient@example.com", "Pat", "Ient")
    env.settle()
    [row] = env.deliveries("store/customer/created")
    assert row.status == "pending" and row.next_attempt_at is not None and row.last_error
    assert env.contact("patient@example.com") is None
    for _ in range(5):
        if env.contact("patient@example.com"):
            break
        env.retry_due(advance_s=3 * 3600)
    assert env.contact("patient@example.com")["externalId"] == str(customer["id"])
    assert env.deliveries("store/customer/created")[0].status == "done"


def test_credentials_revoked_then_restored(env: RealtimeEnv) -> None:
    env.sm.revoke_credentials(env.client_id)
    env.storefront.register("waiting@example.com", "Wai", "Ting")
    env.settle()
    [row] = env.deliveries("store/customer/created")
    assert row.status == "waiting"
    assert env.store.sync_paused_reason == "credentials"
    cart = env.storefront.add_to_cart(product_id=77)
    env.storefront.checkout(cart["id"], guest_email="later@example.com")
    env.settle()
    assert {d.status for d in env.deliveries("store/order/created")} == {"waiting"}
    env.sm.restore_credentials(env.client_id)
    env.login()  # the merchant logs in again
    env.settle()
    assert env.store.sync_paused_reason is None
    assert env.contact("waiting@example.com") is not None
    assert len(env.events("PURCHASE")) == 1


def test_lost_webhooks_found_by_reconciliation(env: RealtimeEnv) -> None:
    env.bc.webhooks.drop_next(1000)
    env.storefront.register("lost@example.com", "Lo", "St")
    cart = env.storefront.add_to_cart(product_id=77)
    order = env.storefront.checkout(cart["id"], guest_email="lostorder@example.com")
    env.settle()
    assert env.contact("lost@example.com") is None and env.events("PURCHASE") == []
    hooks = env.bc.store(env.store_hash).hooks
    victim = next(iter(hooks.values()))
    victim.is_active = False  # a deactivated hook is repaired too
    env.clock.advance(60)
    report = reconcile_store(env.store_id, db=env.db)
    env.settle()
    assert env.contact("lost@example.com") is not None
    [purchase] = env.events("PURCHASE")
    assert purchase["externalId"] == str(order["id"])
    assert report.hooks_repaired and all(h.is_active for h in hooks.values())
    calls = len(env.sm.calls)
    env.clock.advance(16 * 60)
    again = reconcile_store(env.store_id, db=env.db)
    env.settle()
    assert again.error == "" and len(env.events("PURCHASE")) == 1
    assert len(env.sm.calls) == calls  # everything was already sent: the second run sends nothing


def test_ignored_domain_sends_nothing_and_records_why(env: RealtimeEnv) -> None:
    env.configure(ignored_domains="mailinator.com")
    env.storefront.register("spam@mailinator.com", "Spam", "Bot")
    cart = env.storefront.add_to_cart(product_id=77)
    env.storefront.checkout(cart["id"], guest_email="spam2@mailinator.com")
    env.settle()
    assert env.contact("spam@mailinator.com") is None and env.events() == []
    reasons = {d.reason for d in env.deliveries() if d.status == "skipped"}
    assert "ignored e-mail domain mailinator.com" in reasons


WINDOWS = {  # option: (first change after, second change after, events made, updates made)
    "always_new": (60, 60, 3, 0),
    "15m": (10 * 60, 16 * 60, 2, 1),
    "1h": (50 * 60, 61 * 60, 2, 1),
    "4h": (3 * 3600, 5 * 3600, 2, 1),
    "12h": (11 * 3600, 13 * 3600, 2, 1),
    "7d": (6 * 86400, 8 * 86400, 2, 1),
    "always_update": (86400, 60 * 86400, 1, 2),
}


def test_carts_under_each_window_option(env: RealtimeEnv) -> None:
    for index, (window, (first, second, events, updates)) in enumerate(WINDOWS.items()):
        env.configure(cart_event_window=window)
        email = f"cart{index}@example.com"
        cart = env.storefront.add_to_cart(product_id=77)
        env.storefront.set_cart_email(cart["id"], email)
        env.settle()
        item = cart["line_items"]["physical_items"][0]["id"]
        env.clock.advance(first)
        env.storefront.update_item(cart["id"], item, 2)
        env.settle()
        env.clock.advance(second)
        env.storefront.update_item(cart["id"], item, 3)
        env.settle()
        made = [e for e in env.events("CART") if e["email"] == email]
        assert len(made) == events, window
        assert sum(len(e["history"]) - 1 for e in made) == updates, window
        latest = max(made, key=lambda e: e["modifiedOn"])
        assert latest["value"] == pytest.approx(3 * float(cart["cart_amount"])), window


def test_cart_without_known_contact_is_skipped(env: RealtimeEnv) -> None:
    env.storefront.add_to_cart(product_id=77)
    env.settle()
    assert env.events("CART") == []
    # The cart's created and updated deliveries may share a batch (whichever arrived first is handled).
    handled = [
        d.reason
        for d in env.deliveries()
        if d.scope.startswith("store/cart/") and not d.reason.startswith("coalesced with delivery ")
    ]
    assert handled and set(handled) == {"no known contact for the cart"}


def test_many_workers_one_cart_one_event(env: RealtimeEnv) -> None:
    env.configure(cart_event_window="always_update")
    cart = env.storefront.add_to_cart(product_id=77)
    env.storefront.set_cart_email(cart["id"], "busy@example.com")
    item = cart["line_items"]["physical_items"][0]["id"]
    for quantity in range(2, 8):
        env.storefront.update_item(cart["id"], item, quantity)
    env.settle()
    for _ in range(5):
        if not [d for d in env.deliveries() if d.status == "pending"]:
            break
        env.retry_due(advance_s=60)
    assert len(env.events("CART")) == 1
    wait_for(lambda: env.events("CART")[0]["value"] > 0, what="cart value")
    assert realtime.due_delivery_ids(env.db, env.clock.now() + timedelta(days=1)) == []
