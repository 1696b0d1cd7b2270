"""Archival export against both fakes (SQLite and PostgreSQL+Redis): date edges in a store time zone
that is not UTC, tags, ignored domains, guests, consent, running twice, cancel, SALESmanago failing
for a while, the in-flight batch after a crash, and the per-store concurrency rule."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from types import ModuleType

import pytest
from export_support import World, export_world, utc
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from smbc.bigcommerce.client import for_store
from smbc.core.clock import FakeClock, set_clock, utcnow
from smbc.core.config import Settings
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCall, RemoteCallError, Service
from smbc.db.models import Store
from smbc.engine import long_jobs
from smbc.engine.ledgers import SentEvent, SyncedContact
from smbc.export import contacts as contacts_export
from smbc.export import events as events_export
from smbc.export import runner, service
from smbc.export.models import Export
from smbc.salesmanago.client import SalesmanagoClient
from smbc.salesmanago.endpoints import EndpointAllowlist

NY = "America/New_York"  # UTC-5 in February
FEB = (date(2026, 2, 1), date(2026, 2, 28))


@pytest.fixture
def w(backend_settings: Settings) -> Iterator[World]:
    with export_world(backend_settings, timezone=NY) as world:
        yield world


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """In-call backoff sleeps move this clock instead of waiting."""
    clock = FakeClock(utcnow())
    previous = set_clock(clock)
    yield clock
    set_clock(previous)


def run_to_end(w: World, export_id: int, limit: int = 20) -> Export:
    for _ in range(limit):
        runner.run_export(export_id, db=w.db, time_slice=None, force=True)
        row = w.export(export_id)
        if not row.active:
            return row
    raise AssertionError(f"export {export_id} did not end: {w.export(export_id).status}")


def seed_edges(w: World) -> dict[str, int]:
    """Customers/orders in January-March, then some moved to the edges of February in New York."""
    w.sb.bc.seed(w.store_hash, customers=12, orders=24, start=date(2026, 1, 1), end=date(2026, 3, 31))
    store = w.bc_store()
    with w.sb.bc.lock:
        customers = list(store.customers.values())
        orders = list(store.orders.values())
        # 1 Feb 00:00 in New York is 05:00 UTC; 28 Feb 23:59:59 there is 1 Mar 04:59:59 UTC.
        edges = {
            "first_in": utc(2026, 2, 1, 5, 0, 0),
            "last_in": utc(2026, 3, 1, 4, 59, 59),
            "just_before": utc(2026, 2, 1, 4, 59, 59),
            "just_after": utc(2026, 3, 1, 5, 0, 0),
        }
        ids: dict[str, int] = {}
        for (name, when), customer, order in zip(edges.items(), customers, orders, strict=False):
            customer.date_created = when
            order.date_created = when
            order.status_id = 10  # Completed: a purchase
            ids[f"customer_{name}"] = customer.id
            ids[f"order_{name}"] = order.id
    return ids


def in_february(when) -> bool:
    return utc(2026, 2, 1, 5) <= when <= utc(2026, 3, 1, 4, 59, 59)


# -- contacts ---------------------------------------------------------------------------------------


def test_contacts_export_whole_days_in_the_store_zone_tags_consent_and_ignored_domains(w: World) -> None:
    ids = seed_edges(w)
    store = w.bc_store()
    with w.sb.bc.lock:
        february = [c for c in store.customers.values() if in_february(c.date_created)]
        ignored = february[-1]
        ignored.email = "someone@temp-mail.test"
        subscribers = {s.email: s for s in store.subscribers.values()}
        expected = {c.email.lower() for c in february if c is not ignored}
        subscribed = {e for e in expected if "marketing_newsletter" in subscribers[e].consents}
    assert ids["customer_first_in"] in {c.id for c in february}
    w.set({"ignored_domains": "temp-mail.test", "tags.newsletter": "NEWS"})
    export_id = service.start_export(
        w.db,
        w.store_id,
        "contacts",
        *FEB,
        tags=["BC EXPORT", "vip"],
        batch_size=3,
        page_size=2,
        enqueue=False,
    )
    row = run_to_end(w, export_id)

    contacts = {c["email"]: c for c in w.contacts()}
    assert set(contacts) == expected  # both edge days in, the seconds either side out, ignored left out
    assert row.status == "done" and row.sent == len(expected) and row.done == row.total == len(expected) + 1
    assert row.skipped == {"ignored e-mail domain": 1} and row.failed == {}
    for email, contact in contacts.items():
        assert {"BC_EXPORT", "VIP"} <= set(contact["tags"])
        assert contact["optedIn"] == (email in subscribed)  # never opted in without a subscription
        assert ("NEWS" in contact["tags"]) == (email in subscribed)
    assert subscribed and subscribed != expected  # the seed has both kinds
    with w.db.session() as s:  # real time now knows these contacts (ids, customers, consent sent)
        synced = {r.email: r for r in s.scalars(select(SyncedContact))}
    assert set(synced) == expected
    assert {r.contact_id for r in synced.values()} == {None}  # batchupsertv2 answers no ids
    assert {e for e, r in synced.items() if r.opted_in} == subscribed
    assert all(r.customer_id for r in synced.values())

    # Exporting again updates the contacts (a name changed in BigCommerce since).
    first = next(c for c in store.customers.values() if c.id == ids["customer_first_in"])
    with w.sb.bc.lock:
        first.first_name = "Renamed"
    again = run_to_end(w, service.start_export(w.db, w.store_id, "contacts", *FEB, enqueue=False))
    assert again.sent == len(expected)
    assert w.sb.sm.contact(w.cid, first.email)["name"] == contacts[first.email.lower()]["name"]
    w.sb.sm.apply_pending_batches()  # SALESmanago applies the asynchronous batch a little later
    assert contacts[first.email.lower()]["name"] != w.sb.sm.contact(w.cid, first.email)["name"]
    assert w.sb.sm.contact(w.cid, first.email)["name"].startswith("Renamed")


# -- events -----------------------------------------------------------------------------------------


def test_events_export_maps_like_real_time_and_the_second_run_sends_nothing(w: World) -> None:
    ids = seed_edges(w)
    w.set({"ignored_domains": "temp-mail.test", "tags.guest_purchase": "GUEST", "tags.purchase": "BUYER"})
    store = w.bc_store()
    with w.sb.bc.lock:
        february = [o for o in store.orders.values() if in_february(o.date_created)]
        for order in february[2:]:
            order.status_id = 11  # Awaiting Fulfillment: a purchase
        guest, ignored, cancelled = february[2], february[3], february[4]
        guest.customer_id = 0
        guest.billing = {**guest.billing, "email": "guest.buyer@shop.test"}
        ignored.billing = {**ignored.billing, "email": "nobody@temp-mail.test"}
        cancelled.status_id = 5
        already = february[5]
    with w.db.session() as s:  # real time sent this one's PURCHASE already
        s.add(
            SentEvent(
                store_id=w.store_id, kind="PURCHASE", key=str(already.id), order_id=already.id, state="sent"
            )
        )
    purchases = {o.id for o in february} - {ignored.id, cancelled.id, already.id}

    export_id = service.start_export(
        w.db, w.store_id, "events", *FEB, batch_size=3, page_size=4, enqueue=False
    )
    row = run_to_end(w, export_id)

    events = w.events("PURCHASE")
    assert sorted(int(e["externalId"]) for e in events) == sorted(purchases)  # each exactly once
    assert ids["order_first_in"] in purchases and ids["order_last_in"] in purchases
    assert not {ids["order_just_before"], ids["order_just_after"]} & {int(e["externalId"]) for e in events}
    assert row.sent == len(purchases) and row.done == len(february) and row.failed == {}
    assert row.skipped == {
        "ignored e-mail domain": 1,
        "cancelled before any PURCHASE was sent": 1,
        "already sent": 1,
    }
    guest_contact = w.sb.sm.contact(w.cid, "guest.buyer@shop.test")
    assert guest_contact is not None and "GUEST" in guest_contact["tags"]  # buyers upserted first
    assert w.sb.sm.contact(w.cid, "nobody@temp-mail.test") is None
    with w.db.session() as s:
        states = Counter(s.scalars(select(SentEvent.state).where(SentEvent.store_id == w.store_id)))
    assert states == {"sent": len(purchases) + 1}

    calls_before = len(w.sb.sm.calls)
    second = run_to_end(w, service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False))
    assert second.status == "done" and second.sent == 0
    assert second.skipped["already sent"] == len(purchases) + 1
    assert len(w.sb.sm.calls) == calls_before  # not even the buyers were sent again
    assert len(w.events("PURCHASE")) == len(purchases)


def test_refunded_order_sends_one_return_per_refund_and_a_cancellation_follows_a_purchase(w: World) -> None:
    w.sb.bc.seed(w.store_hash, customers=3, orders=3, start=date(2026, 2, 10), end=date(2026, 2, 11))
    store = w.bc_store()
    with w.sb.bc.lock:
        first, second, third = store.orders.values()
        first.status_id = second.status_id = third.status_id = 10
        first.refunded_amount = second.refunded_amount = third.refunded_amount = Decimal("0")
        store.refunds.clear()  # the seed's own (a seeded order may be refunded): only the two below
    admin = w.sb.bc.admin(w.store_hash)
    admin.refund(first.id, amount="5.00")
    admin.refund(first.id, amount="1.00")
    with w.db.session() as s:  # real time sent the PURCHASE of the third, then it was cancelled
        s.add(
            SentEvent(
                store_id=w.store_id, kind="PURCHASE", key=str(third.id), order_id=third.id, state="sent"
            )
        )
    with w.sb.bc.lock:
        third.status_id = 5
    row = run_to_end(w, service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False))
    assert sorted(int(e["externalId"]) for e in w.events("RETURN")) == [first.id, first.id]
    assert [int(e["externalId"]) for e in w.events("CANCELLATION")] == [third.id]
    # The refunds left the first in Partially Refunded (14), not a purchase status: as in real time,
    # its state now sends no PURCHASE, only its RETURNs.
    assert [int(e["externalId"]) for e in w.events("PURCHASE")] == [second.id]
    assert row.sent == len(w.events()) == 2 + 1 + 1


def test_events_export_reads_one_bigcommerce_page_per_250_orders(w: World) -> None:
    """Orders come with their line items, and the refunds of the whole run in one list: besides the
    order pages, one count and one page of refunds (not a products or refunds read per page)."""
    w.sb.bc.seed(w.store_hash, customers=100, orders=1100, start=date(2026, 2, 2), end=date(2026, 2, 20))
    store = w.bc_store()
    with w.sb.bc.lock:
        refunded = {r.order_id for r in store.refunds.values()}
        refunds = len(store.refunds)
    assert 0 < refunds < 250  # about 5 % of the orders: they all fit one page
    before = w.sb.bc.requests_by_store[w.store_hash]
    row = run_to_end(w, service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False))
    assert row.status == "done" and row.done == 1100
    assert w.sb.bc.requests_by_store[w.store_hash] - before == 5 + 1 + 1  # 4 pages of 250 and one of 100
    with w.db.session() as s:
        endpoints = Counter(
            s.scalars(
                select(RemoteCall.endpoint).where(
                    RemoteCall.context == f"export:{row.id}", RemoteCall.service == "bigcommerce"
                )
            )
        )
    assert endpoints == {"/v2/orders": 5, "/v2/orders/count": 1, "/v3/orders/payment_actions/refunds": 1}
    assert {int(e["externalId"]) for e in w.events("RETURN")} == refunded  # each refund found its order
    assert len(w.events("RETURN")) == refunds


def order_reads(w: World, export_id: int) -> int:
    with w.db.session() as s:
        return s.scalar(
            select(func.count()).where(
                RemoteCall.context == f"export:{export_id}", RemoteCall.endpoint == "/v2/orders"
            )
        )


def test_a_full_last_page_of_a_counted_range_needs_no_empty_page_after_it(w: World) -> None:
    """The range ended before the count, so no order can join it: 1,000 counted orders are 4 pages."""
    w.seed_completed_orders(1000)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False)
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.done == 1000 and len(w.events("PURCHASE")) == 1000
    assert order_reads(w, export_id) == 4


def test_a_range_reaching_past_the_count_reads_to_the_empty_page(w: World) -> None:
    """An order created while it runs may still be in the range: the list is read to its end."""
    w.seed_completed_orders(1000)
    today = utcnow().date()
    with w.sb.bc.lock:
        for order in w.bc_store().orders.values():
            order.date_created = utc(today.year, today.month, today.day) - timedelta(days=1)
    export_id = service.start_export(
        w.db, w.store_id, "events", today - timedelta(days=3), today + timedelta(days=1), enqueue=False
    )
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.done == 1000
    assert order_reads(w, export_id) == 5


def test_a_resumed_export_stops_at_the_counted_orders_too(
    w: World, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a time slice the orders left are the count less the orders done (100 of 1,000 here)."""
    w.seed_completed_orders(1000)
    monkeypatch.setattr(runner, "enqueue_export", lambda *args, **kwargs: None)
    export_id = service.start_export(
        w.db, w.store_id, "events", *FEB, batch_size=100, page_size=225, enqueue=False
    )
    runner.run_export(
        export_id, db=w.db, time_slice=10, force=True, on_batch=lambda row: fake_clock.advance(11)
    )
    assert w.export(export_id).done == 100
    first_run = order_reads(w, export_id)
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.done == 1000 and len(w.events("PURCHASE")) == 1000
    assert order_reads(w, export_id) - first_run == 4  # 900 orders left: 4 pages of 225, no empty one


def test_the_next_time_slice_of_an_export_lists_no_refund_again(
    w: World, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refunds listed by the first slice serve the next one in the same process; each still sends
    its RETURN, those of the orders the first slice planned but did not send too."""
    w.sb.bc.seed(w.store_hash, customers=100, orders=1100, start=date(2026, 2, 2), end=date(2026, 2, 20))
    with w.sb.bc.lock:
        refunds = len(w.bc_store().refunds)
    assert refunds > 0
    monkeypatch.setattr(runner, "enqueue_export", lambda *args, **kwargs: None)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=100, enqueue=False)
    for _ in range(3):  # a batch a slice
        runner.run_export(
            export_id, db=w.db, time_slice=10, force=True, on_batch=lambda row: fake_clock.advance(11)
        )
    assert w.export(export_id).active
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.done == 1100
    with w.db.session() as s:
        listed = s.scalar(
            select(func.count()).where(
                RemoteCall.context == f"export:{export_id}",
                RemoteCall.endpoint == "/v3/orders/payment_actions/refunds",
            )
        )
    assert listed == 1
    assert len(w.events("RETURN")) == refunds


# -- running, cancelling, failing -------------------------------------------------------------------


def test_one_running_export_per_store_and_kind(w: World) -> None:
    first = service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False)
    with pytest.raises(service.ExportAlreadyRunning) as info:
        service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False)
    assert f"#{first}" in str(info.value) and "still queued" in str(info.value)
    other_kind = service.start_export(w.db, w.store_id, "contacts", *FEB, enqueue=False)
    assert service.cancel_export(w.db, w.store_id, first)  # nobody runs it: cancelled at once
    assert w.export(first).status == "cancelled" and w.export(other_kind).status == "queued"
    service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False)  # the slot is free again


def test_cancel_stops_after_the_batch_in_hand(w: World) -> None:
    w.seed_completed_orders(20)
    export_id = service.start_export(
        w.db, w.store_id, "events", *FEB, batch_size=3, page_size=5, enqueue=False
    )

    def cancel_after_two(row: Export) -> None:
        if row.batches == 2:
            assert service.cancel_export(w.db, w.store_id, export_id)

    assert runner.run_export(export_id, db=w.db, time_slice=None, on_batch=cancel_after_two) == "cancelled"
    row = w.export(export_id)
    assert row.status == "cancelled" and row.sent == len(w.events()) == 6 and row.active_slot is None
    with w.db.session() as s:
        assert set(s.scalars(select(SentEvent.state))) == {"sent"}
    assert not service.cancel_export(w.db, w.store_id, export_id)  # over already


def test_salesmanago_failing_for_a_while_is_retried_later_and_nothing_is_skipped(
    w: World, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    w.seed_completed_orders(12)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=4, enqueue=False)
    # Two runs' worth: a batch's 4 new buyers are upserted at once, each tried 3 times before the job waits.
    assert events_export.UPSERTS_AT_ONCE == 4
    w.sb.sm.fail_next(2 * 4 * 3, 503)
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "running"
    row = w.export(export_id)
    assert row.next_attempt_at is not None and row.next_attempt_at > utcnow() and row.attempts == 1
    assert row.lease_owner is None and w.events() == [] and row.last_error
    assert runner.run_export(export_id, db=w.db, time_slice=None) is None  # not due yet: no tight loop
    assert export_id not in runner.EXPORTS_JOBS.due_ids(w.db)
    assert export_id in runner.EXPORTS_JOBS.due_ids(w.db, now=row.next_attempt_at + timedelta(seconds=1))
    assert runner.run_export(export_id, db=w.db, time_slice=None, force=True) == "running"
    assert w.export(export_id).attempts == 2 and w.events() == []

    # The events call itself fails once with an answer: its claims are released, it is planned again.
    real_send = SalesmanagoClient.add_batch_events

    def refuse_once(self, events):
        monkeypatch.setattr(SalesmanagoClient, "add_batch_events", real_send)
        raise RemoteCallError(Outcome.RETRY, "SALESmanago answered HTTP 502", status=502)

    monkeypatch.setattr(SalesmanagoClient, "add_batch_events", refuse_once)
    assert runner.run_export(export_id, db=w.db, time_slice=None, force=True) == "running"
    with w.db.session() as s:
        assert s.scalars(select(SentEvent)).all() == []  # nothing reached SALESmanago: nothing claimed
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.sent == 12 and row.failed == {} and row.skipped == {}
    assert row.attempts == 0 and row.unconfirmed == 0
    assert sorted(Counter(e["externalId"] for e in w.events("PURCHASE")).values()) == [1] * 12


def test_an_events_batch_that_never_left_is_sent_again_and_one_without_an_answer_is_not(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SALESmanago client tells a refused connection (the request never left: release the claims,
    send the batch again later) from a request that got no answer (it may have arrived: unconfirmed)."""
    w.seed_completed_orders(6)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=3, enqueue=False)
    real_send = SalesmanagoClient.add_batch_events

    def connection_refused(self, events):
        monkeypatch.setattr(SalesmanagoClient, "add_batch_events", no_answer)
        nowhere = replace(self.credentials, endpoint="http://127.0.0.1:9")  # nothing listens there
        allowed = EndpointAllowlist.parse(nowhere.endpoint)  # allowed, so the connection is tried
        client = SalesmanagoClient(nowhere, policy=BackoffPolicy(attempts=1), allowlist=allowed)
        return real_send(client, events)

    def no_answer(self, events):
        monkeypatch.setattr(SalesmanagoClient, "add_batch_events", real_send)
        real_send(self, events)  # SALESmanago has them; the answer is lost on the way back
        raise RemoteCallError(Outcome.RETRY, "app.test did not answer in time", service=Service.SALESMANAGO)

    monkeypatch.setattr(SalesmanagoClient, "add_batch_events", connection_refused)
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "running"
    row = w.export(export_id)
    assert row.unconfirmed == 0 and row.next_attempt_at is not None and "cannot reach" in row.last_error
    with w.db.session() as s:
        assert s.scalars(select(SentEvent)).all() == []  # nothing left: nothing claimed
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.sent == 6 and row.unconfirmed == 3
    assert any("no answer from SALESmanago" in m for m in row.messages)
    assert sorted(Counter(e["externalId"] for e in w.events("PURCHASE")).values()) == [1] * 6


def test_a_store_without_a_bigcommerce_token_fails_the_export_naming_bigcommerce(w: World) -> None:
    export_id = service.start_export(w.db, w.store_id, "contacts", *FEB, enqueue=False)
    with w.db.session() as s:
        s.get(Store, w.store_id).access_token = None
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "failed"
    assert w.export(export_id).last_error.startswith("BigCommerce refused the app's access")


def killed_events_export(w: World, monkeypatch: pytest.MonkeyPatch, *, answered: bool) -> int:
    """An events export of 9 purchases in batches of 3 whose worker died in the second send: after
    SALESmanago answered (`answered`: it has the events, the commit never happened) or before the
    request left."""
    w.seed_completed_orders(9)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=3, enqueue=False)
    real_send = SalesmanagoClient.add_batch_events
    sends = 0

    def send_then_die(self, events):
        nonlocal sends
        sends += 1
        if sends == 2 and not answered:
            raise SystemExit("killed")
        answer = real_send(self, events)
        if sends == 2:
            raise SystemExit("killed")
        return answer

    monkeypatch.setattr(SalesmanagoClient, "add_batch_events", send_then_die)
    with pytest.raises(SystemExit):
        runner.run_export(export_id, db=w.db, time_slice=None)
    monkeypatch.setattr(SalesmanagoClient, "add_batch_events", real_send)
    return export_id


def test_a_batch_in_flight_when_the_worker_died_is_not_sent_again(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_id = killed_events_export(w, monkeypatch, answered=True)
    row = w.export(export_id)
    assert row.cursor["inflight"]["batch"] == 2 and row.lease_owner is not None
    assert runner.run_export(export_id, db=w.db) is None  # its lease has not gone stale yet

    with service_clock_past_the_lease():
        assert export_id in runner.EXPORTS_JOBS.due_ids(w.db)
        row = run_to_end(w, export_id)
    assert row.status == "done" and row.sent == 9 and row.unconfirmed == 3
    assert any("not sent again" in m for m in row.messages)
    assert sorted(Counter(e["externalId"] for e in w.events("PURCHASE")).values()) == [1] * 9


def test_unconfirmed_events_that_never_arrived_are_sent_again_when_the_merchant_asks(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_id = killed_events_export(w, monkeypatch, answered=False)
    with service_clock_past_the_lease():
        row = run_to_end(w, export_id)
    assert row.status == "done" and row.unconfirmed == 3
    assert len(w.events("PURCHASE")) == 6  # the batch in flight never arrived, and was not re-sent

    again = service.resend_unconfirmed(w.db, w.store_id, export_id, actor="merchant", enqueue=False)
    row = run_to_end(w, again)
    assert row.status == "done" and row.sent == 3 and row.skipped == {"already sent": 6}
    assert sorted(Counter(e["externalId"] for e in w.events("PURCHASE")).values()) == [1] * 9
    first = w.export(export_id)
    assert first.unconfirmed == 0 and f"sent again by export #{again}" in first.messages[-1]
    with pytest.raises(service.ExportInvalid, match="no unconfirmed events"):
        service.resend_unconfirmed(w.db, w.store_id, export_id, enqueue=False)
    with w.db.session() as s:
        assert {e.state for e in s.scalars(select(SentEvent))} == {"sent"}


def test_only_a_finished_events_export_with_unconfirmed_events_can_be_sent_again(w: World) -> None:
    w.sb.bc.seed(w.store_hash, customers=3, orders=3, start=date(2026, 2, 2), end=date(2026, 2, 20))
    contacts = service.start_export(w.db, w.store_id, "contacts", *FEB, enqueue=False)
    with pytest.raises(service.ExportInvalid, match="not an events export"):
        service.resend_unconfirmed(w.db, w.store_id, contacts, enqueue=False)
    events = service.start_export(w.db, w.store_id, "events", *FEB, enqueue=False)
    with pytest.raises(service.ExportInvalid, match="still running"):
        service.resend_unconfirmed(w.db, w.store_id, events, enqueue=False)
    run_to_end(w, events)
    with pytest.raises(service.ExportInvalid, match="no unconfirmed events"):
        service.resend_unconfirmed(w.db, w.store_id, events, enqueue=False)
    with w.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Export)) == 2  # nothing was recorded


@contextmanager
def service_clock_past_the_lease() -> Iterator[None]:
    """A dead worker's lease goes stale after LEASE_STALE: move the clock past it."""
    previous = set_clock(FakeClock(utcnow() + long_jobs.LEASE_STALE + timedelta(seconds=1)))
    try:
        yield
    finally:
        set_clock(previous)


def fail_once(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, on_call: int) -> None:
    """<module>.<name> raises as PostgreSQL does when it ends a transaction (deadlock, failover)."""
    real = getattr(module, name)
    calls = 0

    def flaky(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == on_call:
            raise OperationalError(name, {}, Exception("server closed the connection unexpectedly"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def test_a_database_error_recording_a_sent_batch_leaves_no_event_unaccounted(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.seed_completed_orders(9)
    export_id = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=3, enqueue=False)
    # Batch 2 reached SALESmanago; its commit fails.
    fail_once(monkeypatch, events_export, "remember_contacts", on_call=2)
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "running"  # retried later
    assert "OperationalError" in w.export(export_id).last_error
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.sent == 9 and row.unconfirmed == 3  # its answer was never recorded
    assert sorted(Counter(e["externalId"] for e in w.events("PURCHASE")).values()) == [1] * 9
    with w.db.session() as s:  # no claim left behind, which would block real time for those orders
        assert sorted(e.state for e in s.scalars(select(SentEvent))) == ["sent"] * 6 + ["unconfirmed"] * 3


def test_a_database_error_recording_a_contacts_batch_sends_it_again(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.sb.bc.seed(w.store_hash, customers=9, orders=0, start=date(2026, 2, 2), end=date(2026, 2, 20))
    export_id = service.start_export(
        w.db, w.store_id, "contacts", *FEB, batch_size=3, page_size=3, enqueue=False
    )
    fail_once(monkeypatch, contacts_export, "remember_contacts", on_call=2)
    assert runner.run_export(export_id, db=w.db, time_slice=None) == "running"
    row = run_to_end(w, export_id)
    assert row.status == "done" and row.sent == 9 and row.done == 9
    assert len(w.contacts()) == 9
    with w.db.session() as s:  # the ledger real time relies on has every contact
        assert s.scalar(select(func.count()).select_from(SyncedContact)) == 9
        recorded = s.scalar(  # every attempt is a row, the one whose batch was rolled back too
            select(func.count())
            .select_from(RemoteCall)
            .where(RemoteCall.context == f"export:{export_id}", RemoteCall.endpoint.like("%batchupsertv2"))
        )
    assert recorded == len(w.sm_calls("/api/contact/batchupsertv2")) == 4  # 3 batches, the 2nd twice


def test_exports_and_real_time_stay_within_three_requests_in_flight(w: World) -> None:
    w.sb.bc.seed(w.store_hash, customers=30, orders=30, start=date(2026, 2, 2), end=date(2026, 2, 20))
    w.sb.bc.faults.latency_ms = 15
    contacts = service.start_export(
        w.db, w.store_id, "contacts", *FEB, batch_size=5, page_size=5, enqueue=False
    )
    events = service.start_export(w.db, w.store_id, "events", *FEB, batch_size=5, page_size=5, enqueue=False)
    with w.db.session() as s:
        store = s.scalar(select(Store).where(Store.id == w.store_id))
        s.expunge(store)
    stop = threading.Event()
    errors: list[Exception] = []

    def real_time_reads() -> None:
        client = for_store(store, priority="realtime", base_url=w.settings.bc_api_url)
        while not stop.wait(0.002):
            try:
                client.store_info()
            except RemoteCallError as exc:
                errors.append(exc)

    readers = [threading.Thread(target=real_time_reads) for _ in range(3)]
    runners = [
        threading.Thread(target=runner.run_export, args=(i,), kwargs={"db": w.db, "time_slice": None})
        for i in (contacts, events)
    ]
    for thread in readers + runners:
        thread.start()
    for thread in runners:
        thread.join(timeout=120)
    stop.set()
    for thread in readers:
        thread.join(timeout=30)
    assert w.export(contacts).status == w.export(events).status == "done" and errors == []
    assert w.sb.bc.max_in_flight[w.store_hash] <= 3
    assert w.sb.bc.max_in_flight[w.store_hash] == 3  # the limit was reached, so it was what held
