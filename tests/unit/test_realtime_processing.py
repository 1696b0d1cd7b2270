"""Processing of inbox rows with an in-memory BigCommerce and SALESmanago port (no servers)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from realtime_harness import FakeSalesmanagoPort, MiniBigCommerce, fake_clients, save_settings
from sqlalchemy import func, select, update

from smbc.bigcommerce import client as bc_client
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import Outcome, RemoteCall
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine.context import Result
from smbc.engine.ledgers import SentEvent, SyncedContact, remember_contact
from smbc.engine.pausing import resume_store
from smbc.realtime import inbox
from smbc.realtime import processing as realtime
from smbc.realtime.handlers.carts import CART_BUSY_RETRY_S
from smbc.realtime.models import CartWindow, WebhookDelivery
from smbc.settings.store_settings import StoreSettings

LINE_ITEMS = [{"id": 1, "product_id": 111, "variant_id": 5, "sku": "MUG", "name": "Mug", "quantity": 2}]


def order(order_id: int, status_id: int = 11, customer_id: int = 0, email: str = "buyer@example.com") -> dict:
    return {
        "id": order_id,
        "status_id": status_id,
        "customer_id": customer_id,
        "channel_id": 1,
        "cart_id": f"cart-{order_id}",
        "date_created": "Tue, 06 Jan 2026 10:00:00 +0000",
        "date_modified": "Tue, 06 Jan 2026 11:00:00 +0000",
        "total_inc_tax": "20.00",
        "currency_code": "USD",
        "payment_method": "Test Payment",
        "billing_address": {"first_name": "Bo", "last_name": "Buyer", "email": email, "country_iso2": "US"},
        "consignments": [{"shipping": [{"shipping_method": "Flat", "line_items": LINE_ITEMS}]}],
        "refunded_amount": "0.0000",
    }


def cart(cart_id: str, quantity: int = 1, email: str = "shopper@example.com") -> dict:
    return {
        "id": cart_id,
        "customer_id": 0,
        "channel_id": 1,
        "email": email,
        "currency": {"code": "USD"},
        "cart_amount": 10.0 * quantity,
        "line_items": {
            "physical_items": [{"id": "li", "product_id": 111, "name": "Mug", "quantity": quantity}]
        },
        "redirect_urls": {"cart_url": f"https://shop.test/cart.php?id={cart_id}"},
    }


class World:
    def __init__(self, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runtime = init_runtime(settings, migrate=True)
        self.db = self.runtime.db
        self.clock = clock
        self.bc = MiniBigCommerce()
        self.sm = FakeSalesmanagoPort()
        self.clients = fake_clients(self.bc, self.sm)
        monkeypatch.setattr(realtime, "enqueue_delivery", lambda delivery_id: None)
        with self.db.session() as s:
            store = Store(hash="abc123", access_token="token", webhook_secret="x", sites=[])
            s.add(store)
            s.flush()
            self.store_id = store.id
        self.settings = StoreSettings(contact_owner="owner@shop.test", tags_registration=["reg"])
        self._n = 0

    @property
    def settings(self) -> StoreSettings:
        return self._settings

    @settings.setter
    def settings(self, value: StoreSettings) -> None:
        """Saved, so the processing reads them like any store's."""
        self._settings = value
        save_settings(self.db, self.store_id, value)

    def deliver(self, scope: str, data: dict[str, Any]) -> int:
        self._n += 1
        delivery_id = inbox.record_synthetic(
            self.db, self.store_id, scope, data, created_at=1_700_000_000 + self._n, source="webhook"
        )
        assert delivery_id is not None
        return delivery_id

    def run(self, delivery_id: int) -> list[tuple[int, Result]]:
        return realtime.process_delivery(delivery_id, clients=self.clients)

    def process(self, scope: str, data: dict[str, Any]) -> Result:
        delivery_id = self.deliver(scope, data)
        return dict(self.run(delivery_id))[delivery_id]

    def row(self, delivery_id: int) -> WebhookDelivery:
        with self.db.session() as s:
            return s.get(WebhookDelivery, delivery_id)

    def count(self, model: Any, *where: Any) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def world(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FakeClock()
    previous = set_clock(clock)
    try:
        yield World(backend_settings, clock, monkeypatch)
    finally:
        set_clock(previous)
        close_runtime()


CUSTOMER = {"id": 7, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "addresses": []}


def test_registration_sends_contact_with_registration_tags_and_records_calls(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    result = world.process("store/customer/created", {"type": "customer", "id": 7})
    assert result.status.value == "done"
    [payload] = world.sm.named("upsert")
    assert payload["contact"]["email"] == "ann@example.com" and payload["tags"] == ["REG"]
    assert payload["owner"] == "owner@shop.test" and payload["forceOptIn"] is False
    assert world.count(RemoteCall, RemoteCall.service == "bigcommerce") == 1


def test_update_without_changes_sends_nothing_and_email_change_sends_new_email(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.process("store/customer/created", {"type": "customer", "id": 7})
    assert (
        world.process("store/customer/updated", {"type": "customer", "id": 7}).reason == "contact unchanged"
    )
    world.bc.customers[7]["email"] = "ann.new@example.com"
    world.process("store/customer/updated", {"type": "customer", "id": 7})
    last = world.sm.named("upsert")[-1]
    assert last["contact"]["email"] == "ann@example.com" and last["newEmail"] == "ann.new@example.com"
    assert "tags" not in last
    with world.db.session() as s:
        assert [c.email for c in s.scalars(select(SyncedContact))] == ["ann.new@example.com"]


def test_coalesced_customer_deliveries_share_one_read(world: World) -> None:
    for i in range(1, 6):
        world.bc.customers[i] = {**CUSTOMER, "id": i, "email": f"c{i}@example.com"}
    ids = [world.deliver("store/customer/updated", {"type": "customer", "id": i}) for i in range(1, 6)]
    ids.append(
        world.deliver(
            "store/customer/address/created", {"type": "customer", "id": 9, "address": {"customer_id": 3}}
        )
    )
    ids.append(world.deliver("store/customer/created", {"type": "customer", "id": 3}))
    results = dict(world.run(ids[0]))
    assert set(results) == set(ids)
    assert world.bc.paths() == ["v3/customers"]
    assert len(world.sm.named("upsert")) == 5
    created = ids[6]  # the registration wins over the update and the address of customer 3
    assert results[ids[2]].reason == results[ids[5]].reason == f"coalesced with delivery {created}"
    tagged = [p["contact"]["email"] for p in world.sm.named("upsert") if p.get("tags") == ["REG"]]
    assert tagged == ["c3@example.com"]


def test_ignored_domain_sends_nothing_and_says_why(world: World) -> None:
    world.settings = world.settings.model_copy(update={"ignored_domains": ["example.com"]})
    world.bc.customers[7] = dict(CUSTOMER)
    result = world.process("store/customer/created", {"type": "customer", "id": 7})
    assert result.status.value == "skipped" and result.reason == "ignored e-mail domain example.com"
    assert world.sm.calls == []


def test_purchase_once_whatever_the_deliveries(world: World) -> None:
    world.settings = world.settings.model_copy(update={"tags_guest_purchase": ["guest buy"]})
    world.bc.orders[50] = order(50)
    world.process("store/order/statusUpdated", {"type": "order", "id": 50})  # before `created`
    world.process("store/order/created", {"type": "order", "id": 50})
    world.process("store/order/updated", {"type": "order", "id": 50})
    [sent] = world.sm.named("integration")
    assert sent["event"]["contactEvent"]["contactExtEventType"] == "PURCHASE"
    assert sent["contact"]["tags"] == ["GUEST_BUY"] and "externalId" not in sent["contact"]["contact"]
    with world.db.session() as s:
        row = s.scalars(select(SentEvent)).one()
        assert (row.kind, row.key, row.state, row.event_id) == (
            "PURCHASE",
            "50",
            "sent",
            "event-integration-1",
        )


def test_incomplete_order_sends_nothing_until_it_becomes_a_purchase(world: World) -> None:
    world.bc.orders[51] = order(51, status_id=0)
    assert "sends nothing" in world.process("store/order/created", {"type": "order", "id": 51}).reason
    world.bc.orders[51]["status_id"] = 11
    world.process("store/order/statusUpdated", {"type": "order", "id": 51})
    assert len(world.sm.named("integration")) == 1


def test_cancel_after_purchase_and_not_before(world: World) -> None:
    world.bc.orders[52] = order(52, status_id=5)
    assert world.process("store/order/created", {"type": "order", "id": 52}).reason.startswith(
        "cancelled before"
    )
    world.bc.orders[53] = order(53)
    world.process("store/order/created", {"type": "order", "id": 53})
    world.bc.orders[53]["status_id"] = 5
    world.process("store/order/statusUpdated", {"type": "order", "id": 53})
    world.process("store/order/statusUpdated", {"type": "order", "id": 53})
    purchase, cancel = (c["event"] for c in world.sm.named("integration"))
    assert purchase["contactEvent"]["contactExtEventType"] == "PURCHASE"
    assert cancel["contactEvent"]["contactExtEventType"] == "CANCELLATION"
    assert cancel["contactEvent"]["externalId"] == "53"


def test_refund_sends_one_return_per_refund(world: World) -> None:
    world.bc.orders[54] = order(54)
    world.bc.refunds = [
        {"id": 9, "order_id": 54, "total_amount": 5.0, "created": "2026-01-07T10:00:00Z", "items": []},
        {"id": 10, "order_id": 54, "total_amount": 3.0, "created": "2026-01-08T10:00:00Z", "items": []},
    ]
    for refund_id in (9, 9, 10):
        world.process(
            "store/order/refund/created", {"type": "order", "id": 54, "refund": {"refund_id": refund_id}}
        )
    returns = [c["event"] for c in world.sm.named("integration")]
    assert [r["contactEvent"]["value"] for r in returns] == [5.0, 3.0]
    assert {r["contactEvent"]["contactExtEventType"] for r in returns} == {"RETURN"}


def test_concurrent_workers_send_one_purchase(world: World) -> None:
    world.bc.orders[60] = order(60)
    ids = [world.deliver("store/order/updated", {"type": "order", "id": 60}) for _ in range(8)]
    barrier = threading.Barrier(len(ids))

    def work(delivery_id: int) -> None:
        barrier.wait(5)
        world.run(delivery_id)

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(world.sm.named("integration")) == 1
    statuses = {world.row(i).status for i in ids}
    assert statuses <= {"done", "pending"}  # "being sent by another worker" may come back later
    for delivery_id in ids:  # whatever was postponed finds the PURCHASE sent
        world.clock.advance(3600)
        world.run(delivery_id)
    assert len(world.sm.named("integration")) == 1


def test_cart_window_update_then_new_event_after_window(world: World) -> None:
    world.settings = world.settings.model_copy(update={"cart_event_window": "15m"})
    world.bc.carts["c1"] = cart("c1", 1)
    world.process("store/cart/created", {"type": "cart", "id": "c1"})
    world.bc.carts["c1"] = cart("c1", 2)
    world.clock.advance(600)
    world.process("store/cart/updated", {"type": "cart", "id": "c1"})
    assert world.process("store/cart/updated", {"type": "cart", "id": "c1"}).reason.startswith(
        "cart unchanged"
    )
    world.bc.carts["c1"] = cart("c1", 3)
    world.clock.advance(16 * 60)
    world.process("store/cart/updated", {"type": "cart", "id": "c1"})
    assert [n for n, _ in world.sm.calls] == ["integration", "update_event", "integration"]
    first = world.sm.named("integration")[0]
    assert first["contact"]["contact"] == {"email": "shopper@example.com"}  # bare: no data, no consent
    assert first["contact"]["forceOptIn"] is False and first["contact"]["forceOptOut"] is False
    update = world.sm.named("update_event")[0]["contactEvent"]
    assert update["eventId"] == "event-integration-1" and update["value"] == 20.0


def test_purchase_closes_the_cart_window(world: World) -> None:
    world.settings = world.settings.model_copy(update={"cart_event_window": "always_update"})
    world.bc.carts["cart-70"] = cart("cart-70", 1)
    world.process("store/cart/created", {"type": "cart", "id": "cart-70"})
    world.bc.orders[70] = order(70)
    world.process("store/order/created", {"type": "order", "id": 70})
    world.bc.carts["cart-70"] = cart("cart-70", 4)
    world.process("store/cart/updated", {"type": "cart", "id": "cart-70"})
    assert [n for n, _ in world.sm.calls] == ["integration", "integration", "integration"]
    kinds = [c["event"]["contactEvent"]["contactExtEventType"] for c in world.sm.named("integration")]
    assert kinds == ["CART", "PURCHASE", "CART"]


def test_cart_without_contact_is_skipped_with_reason(world: World) -> None:
    world.bc.carts["c2"] = cart("c2", email="")
    result = world.process("store/cart/created", {"type": "cart", "id": "c2"})
    assert (result.status.value, result.reason) == ("skipped", "no known contact for the cart")


def test_concurrent_cart_deliveries_make_one_event(world: World) -> None:
    world.bc.carts["c3"] = cart("c3")
    ids = [world.deliver("store/cart/updated", {"type": "cart", "id": "c3"}) for _ in range(6)]
    threads = [threading.Thread(target=world.run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for delivery_id in ids:
        world.clock.advance(60)
        world.run(delivery_id)
    assert len(world.sm.named("integration")) == 1 and world.sm.named("update_event") == []
    assert world.count(CartWindow) == 1


def test_salesmanago_down_retries_with_backoff_then_recovers(world: World) -> None:
    world.bc.orders[80] = order(80)
    world.sm.fail(Outcome.RETRY, "SALESmanago answered HTTP 503", times=3)
    delivery_id = world.deliver("store/order/created", {"type": "order", "id": 80})
    delays = []
    for _ in range(3):
        world.run(delivery_id)
        row = world.row(delivery_id)
        assert row.status == "pending" and "503" in row.last_error
        delays.append((row.next_attempt_at - world.clock.now()).total_seconds())
        assert realtime.due_delivery_ids(world.db) == []  # not due yet
        world.clock.set(row.next_attempt_at)
        assert realtime.due_delivery_ids(world.db) == [delivery_id]
    assert delays[0] < delays[2]  # exponential
    world.run(delivery_id)
    assert world.row(delivery_id).status == "done" and len(world.sm.named("integration")) == 1
    assert world.count(SentEvent, SentEvent.state == "sent") == 1


def test_retries_stop_after_24_hours(world: World) -> None:
    world.bc.orders[81] = order(81)
    delivery_id = world.deliver("store/order/created", {"type": "order", "id": 81})
    world.sm.fail(Outcome.RETRY, times=1000)
    while world.row(delivery_id).status == "pending":
        world.clock.set(world.row(delivery_id).next_attempt_at or world.clock.now())
        world.run(delivery_id)
    row = world.row(delivery_id)
    assert row.status == "failed" and row.reason == "gave up after 24 h of retries"
    assert world.clock.now() - row.received_at >= timedelta(hours=24)


def test_invalid_fails_at_once_with_salesmanago_message(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.sm.fail(Outcome.INVALID, "Incorrect location field value")
    result = world.process("store/customer/created", {"type": "customer", "id": 7})
    assert result.status.value == "failed" and result.error == "Incorrect location field value"


def test_credentials_pause_the_store_until_resumed(world: World) -> None:
    world.bc.orders[90] = order(90)
    world.bc.orders[91] = order(91)
    world.sm.fail(Outcome.CREDENTIALS, "User not authenticated")
    first = world.deliver("store/order/created", {"type": "order", "id": 90})
    second = world.deliver("store/order/created", {"type": "order", "id": 91})
    world.run(first)
    world.run(second)
    assert world.row(first).status == world.row(second).status == "waiting"
    with world.db.session() as s:
        assert s.get(Store, world.store_id).sync_paused_reason == "credentials"
    assert realtime.due_delivery_ids(world.db) == []
    assert resume_store(world.store_id) == 2
    world.run(first)
    world.run(second)
    assert {world.row(first).status, world.row(second).status} == {"done"}
    assert len(world.sm.named("integration")) == 2


def test_bigcommerce_404_is_skipped_and_5xx_retried(world: World) -> None:
    result = world.process("store/order/created", {"type": "order", "id": 404})
    assert result.status.value == "skipped" and "no longer exists" in result.reason
    world.bc.orders[92] = order(92)
    world.bc.fail_next = [500, 500, 500]
    result = world.process("store/order/created", {"type": "order", "id": 92})
    assert result.status.value == "pending"


def test_dead_worker_row_is_picked_up_again(world: World) -> None:
    world.bc.orders[93] = order(93)
    delivery_id = world.deliver("store/order/created", {"type": "order", "id": 93})
    assert realtime.claim_batch(world.db, delivery_id, world.clock.now())  # claimed, then the worker dies
    world.clock.advance(11 * 60)
    assert realtime.due_delivery_ids(world.db) == [delivery_id]
    world.run(delivery_id)
    assert world.row(delivery_id).status == "done"


def test_deleted_customer_deletes_contact_only_when_asked(world: World) -> None:
    world.bc.customers[7] = dict(CUSTOMER)
    world.process("store/customer/created", {"type": "customer", "id": 7})
    del world.bc.customers[7]
    assert "contact kept" in world.process("store/customer/deleted", {"type": "customer", "id": 7}).reason
    world.settings = world.settings.model_copy(update={"delete_contact_on_customer_delete": True})
    world.process("store/customer/deleted", {"type": "customer", "id": 7})
    assert world.sm.named("delete") == [{"email": "ann@example.com"}]


def test_a_customer_deletion_is_acted_on_only_when_bigcommerce_no_longer_has_the_customer(
    world: World,
) -> None:
    world.settings = world.settings.model_copy(update={"delete_contact_on_customer_delete": True})
    world.bc.customers[7] = dict(CUSTOMER)
    world.process("store/customer/created", {"type": "customer", "id": 7})
    delivery_id = world.deliver("store/customer/deleted", {"type": "customer", "id": 7})
    world.run(delivery_id)
    row = world.row(delivery_id)
    assert row.status == "skipped" and "still exists in BigCommerce" in row.reason
    assert world.sm.named("delete") == []
    assert world.count(SyncedContact, SyncedContact.customer_id == 7, SyncedContact.deleted.is_(True)) == 0
    del world.bc.customers[7]  # now really gone: the next deletion is confirmed by the read
    assert (
        "deleted in SALESmanago"
        in world.process("store/customer/deleted", {"type": "customer", "id": 7}).reason
    )
    assert world.sm.named("delete") == [{"email": "ann@example.com"}]


def test_subscriber_opt_in_then_opt_out(world: World) -> None:
    world.settings = world.settings.model_copy(update={"tags_newsletter": ["news"]})
    world.bc.subscribers[3] = {"id": 3, "email": "sub@example.com", "consents": []}
    assert world.process("store/subscriber/created", {"type": "subscriber", "id": 3}).reason.startswith(
        "newsletter consent unchanged"
    )
    world.bc.subscribers[3] = {**world.bc.subscribers[3], "consents": ["marketing_newsletter"]}
    world.process("store/subscriber/updated", {"type": "subscriber", "id": 3})
    world.bc.subscribers[3] = {**world.bc.subscribers[3], "consents": []}
    world.process("store/subscriber/updated", {"type": "subscriber", "id": 3})
    opt_in, opt_out = world.sm.named("upsert")
    assert opt_in["forceOptIn"] is True and opt_in["tags"] == ["NEWS"]
    assert opt_out["forceOptOut"] is True and opt_out["forceOptIn"] is False


def test_register_webhooks_is_idempotent_and_repairs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from smbc.stores import hooks as webhooks

    http = httpx.Client(transport=httpx.MockTransport(world.bc.handler))
    with world.db.session() as s:
        client = bc_client.for_store(s.get(Store, world.store_id), http=http)
    first = webhooks.register_webhooks(world.db, world.store_id, client=client)
    assert len(first.created) == len(webhooks.NEEDED_SCOPES)
    assert {h["headers"][webhooks.SECRET_HEADER] for h in world.bc.hooks} == {"x"}
    assert {h["destination"] for h in world.bc.hooks} == {"http://127.0.0.1:8000/webhooks/bigcommerce"}
    again = webhooks.register_webhooks(world.db, world.store_id, client=client)
    assert not again.changed
    world.bc.hooks[0]["is_active"] = False
    world.bc.hooks[1]["headers"] = {}
    del world.bc.hooks[2]
    repaired = webhooks.register_webhooks(world.db, world.store_id, client=client)
    assert (len(repaired.reenabled), len(repaired.updated), len(repaired.created)) == (1, 1, 1)
    assert copy.deepcopy(world.bc.hooks) and all(h["is_active"] for h in world.bc.hooks)


def test_refused_bigcommerce_token_waits_until_the_set_up_works_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smbc.stores import setup

    world.bc.orders[95] = order(95)
    world.bc.fail_next = [401]
    first = world.deliver("store/order/created", {"type": "order", "id": 95})
    world.run(first)
    assert world.row(first).status == "waiting"
    with world.db.session() as s:
        assert s.get(Store, world.store_id).sync_paused_reason == "bigcommerce_credentials"
    monkeypatch.setattr(setup, "register_webhooks", lambda session, store, client=None: None)
    http = httpx.Client(transport=httpx.MockTransport(world.bc.handler))
    assert setup.run_store_setup(world.store_id, http=http) is True
    with world.db.session() as s:
        assert s.get(Store, world.store_id).sync_paused_reason is None
    assert world.row(first).status == "pending"
    world.run(first)
    assert world.row(first).status == "done" and len(world.sm.named("integration")) == 1


def test_two_workers_meeting_one_email_keep_one_contact_row(world: World) -> None:
    errors: list[Exception] = []
    barrier = threading.Barrier(6)

    def remember(n: int) -> None:
        barrier.wait(5)
        try:
            with world.db.session() as s:
                remember_contact(s, world.store_id, "Same@Example.com", contact_id=f"c{n}")
        except Exception as exc:  # the race this test is about
            errors.append(exc)

    threads = [threading.Thread(target=remember, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert world.count(SyncedContact, SyncedContact.email == "same@example.com") == 1


def test_a_cart_another_worker_is_sending_comes_back_shortly_without_waiting(world: World) -> None:
    world.bc.carts["busy"] = cart("busy", 1)
    with world.db.session() as s:
        s.add(
            CartWindow(
                store_id=world.store_id,
                cart_id="busy",
                contact_key="shopper@example.com",
                lease_owner="delivery:other",
                lease_until=world.clock.now() + timedelta(minutes=2),
            )
        )
    delivery_id = world.deliver("store/cart/updated", {"type": "cart", "id": "busy"})
    [(_, result)] = world.run(delivery_id)  # pending at once: nobody waits for the other worker
    assert (result.status.value, result.retry_after, result.exact) == ("pending", CART_BUSY_RETRY_S, True)
    assert CART_BUSY_RETRY_S <= 2  # shortly: well inside a steady load's p95 of 2 s
    row = world.row(delivery_id)
    assert row.next_attempt_at == world.clock.now() + timedelta(seconds=CART_BUSY_RETRY_S)
    assert world.sm.calls == []
    with world.db.session() as s:  # the other worker finished
        s.execute(update(CartWindow).values(lease_owner=None, lease_until=None))
    world.clock.advance(CART_BUSY_RETRY_S)
    [(_, result)] = world.run(delivery_id)
    assert result.status.value == "done" and len(world.sm.named("integration")) == 1
