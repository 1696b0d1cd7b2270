"""Drill 6: a flood of deliveries for one store does not starve the others.

A fast sender posts `FLOOD` unique `store/customer/updated` deliveries (a merchant's bulk import:
one per customer, each a contact to send) for one store straight at the two web processes, as fast
as they take them, while quiet stores' shoppers check out. Each quiet order's `store/order/created`
delivery is timed from receipt to done; the figure is the ratio of that latency during the flood to
the same stores' latency with no flood (printed, as `flood_latency_ratio`). Nothing is lost, every
PURCHASE arrives once, no store goes over its BigCommerce quota. A second run spreads the same flood
over many stores: every one is drained.

Issue #16 asks for 10,000 deliveries in 10 s, for one store and over 50 stores. Two web and two
worker processes on this shared 2-core machine take 30 to 120 deliveries a second depending on the
load beside them, so the issue's size takes six to ten minutes; CI runs 3,000 over the issue's 50
stores, three to four minutes for both (`SMBC_DRILL_FLOOD=10000` runs the issue's size,
`SMBC_DRILL_FLOOD_STORES` sets the spread)."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cluster import Cluster
from sqlalchemy import func, select

from smbc.db.models import Store
from smbc.realtime.models import WebhookDelivery
from smbc.sandbox.bigcommerce.seeder import seed_store
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH
from support import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(600),
]

FLOOD = int(os.environ.get("SMBC_DRILL_FLOOD", "3000"))
FLOOD_STORES = int(os.environ.get("SMBC_DRILL_FLOOD_STORES", "50"))  # the spread run's stores
QUIET_STORES = 2
QUIET_ORDERS = 4  # per quiet store, with no flood and again during it
SENDERS = 64  # requests in flight from the flood's sender
# During a flood a quiet store's order waits for a batch of the flood a worker has already taken
# (about a second here, against 20 ms with no flood) and for the CPU the flood takes from everyone.
# Without turns it would wait for the flood's whole backlog: over 1,000 times its calm latency here.
MAX_LATENCY_RATIO = 200.0
# The flooded store's BigCommerce quota binds: 8 requests per 2 s window drain at most about 40 of its
# deliveries a second (one customers read per batch of 10), less than the workers could. A drain
# sleeping for the quota held its worker thread and the quiet stores waited (a median of 21.7 s,
# 2,141 times their calm latency, before drains gave their rows back until the window's reset).
FLOODED_QUOTA, FLOODED_QUOTA_WINDOW_S = 8, 2.0


def checkout(c: Cluster, store_hash: str, email: str) -> int:
    storefront = c.sb.bc.storefront(store_hash, channel_id=1)
    cart = storefront.add_to_cart(product_id=77, quantity=1)
    return int(storefront.checkout(cart["id"], guest_email=email)["id"])


class Flood:
    """Unique deliveries for stores' customers, posted round robin at the web processes by `SENDERS`
    concurrent requests; a 503 is sent again, as BigCommerce would."""

    def __init__(self, c: Cluster, stores: dict[str, list[int]], total: int) -> None:
        assert c.db is not None
        with c.db.session() as s:
            rows = s.execute(
                select(Store.hash, Store.store_id, Store.webhook_secret).where(Store.hash.in_(stores))
            )
            self.stores = {hash_: (store_id, secret) for hash_, store_id, secret in rows}
        self.customers = stores
        self.urls = [f"{url}{WEBHOOK_PATH}" for url in c.balancer.backends]
        self.total = total
        self.accepted = 0
        self.resent = 0
        self.seconds = 0.0  # how long the web processes took to take the whole flood
        self.run_id = uuid.uuid4().hex[:8]

    def body(self, n: int) -> tuple[str, bytes, dict[str, str]]:
        hashes = list(self.customers)
        store_hash = hashes[n % len(hashes)]
        store_id, secret = self.stores[store_hash]
        customers = self.customers[store_hash]
        body = (
            f'{{"scope":"store/customer/updated","store_id":"{store_id}",'
            f'"data":{{"type":"customer","id":{customers[n % len(customers)]}}},'
            f'"hash":"{self.run_id}{n:012d}","created_at":{1_767_225_600 + n},'
            f'"producer":"stores/{store_hash}"}}'
        )
        return (
            self.urls[n % len(self.urls)],
            body.encode(),
            {SECRET_HEADER: secret, "Content-Type": "application/json"},
        )

    async def _send(self) -> None:
        numbers = iter(range(self.total))
        async with httpx.AsyncClient(timeout=60) as client:
            started = time.monotonic()

            async def accepted(url: str, body: bytes, headers: dict[str, str]) -> bool:
                try:
                    return (await client.post(url, content=body, headers=headers)).status_code == 200
                except httpx.TransportError:  # a connection dropped under load: BigCommerce sends again too
                    return False

            async def sender() -> None:
                for n in numbers:
                    url, body, headers = self.body(n)
                    while not await accepted(url, body, headers):
                        self.resent += 1
                    self.accepted += 1

            await asyncio.gather(*(sender() for _ in range(SENDERS)))
            self.seconds = time.monotonic() - started

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=lambda: asyncio.run(self._send()), name="flood-sender", daemon=True)
        thread.start()
        return thread


def order_latencies(c: Cluster, store_ids: list[int], since_id: int, orders: int) -> list[float]:
    """Seconds from receipt to done of the stores' `orders` `store/order/created` deliveries after
    `since_id` (waiting for the last to be recorded as done: its PURCHASE may just have been sent)."""
    assert c.db is not None

    def finished() -> list[float] | None:
        with c.db.session() as s:  # type: ignore[union-attr]
            rows = s.execute(
                select(WebhookDelivery.received_at, WebhookDelivery.processed_at).where(
                    WebhookDelivery.store_id.in_(store_ids),
                    WebhookDelivery.scope == "store/order/created",
                    WebhookDelivery.id > since_id,
                )
            ).all()
        if len(rows) < orders or any(processed is None for _, processed in rows):
            return None
        return [(processed - received).total_seconds() for received, processed in rows]

    return wait_for(finished, "the quiet orders' deliveries to be done", timeout=300, interval=0.2)


def last_delivery_id(c: Cluster) -> int:
    assert c.db is not None
    with c.db.session() as s:
        return int(s.scalar(select(WebhookDelivery.id).order_by(WebhookDelivery.id.desc()).limit(1)) or 0)


def statuses(c: Cluster) -> Counter[str]:
    assert c.db is not None
    with c.db.session() as s:
        return Counter(s.scalars(select(WebhookDelivery.status)).all())


def purchases_by_email(c: Cluster) -> Counter[str]:
    return Counter(e["email"] for e in c.sb.sm.events(c.sb.sm.NORMAL.client_id, "PURCHASE"))


def seed_customers(c: Cluster, store_hash: str, count: int) -> list[int]:
    """Customers the store has (made without webhooks): the flood's deliveries are about them."""
    store = c.sb.bc.store(store_hash)
    with c.sb.bc.lock:
        known = set(store.customers)
        seed_store(store, customers=count, orders=0, start=None, end=None, seed=6, subscribers=0)
        return sorted(set(store.customers) - known)


def test_one_stores_flood_does_not_starve_the_other_stores(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        flooded = c.store_hash
        c.install(flooded, timeout=120)
        c.sb.bc.set_quota(flooded, requests=FLOODED_QUOTA, window_s=FLOODED_QUOTA_WINDOW_S)
        quiet_hashes = [c.sb.bc.add_store() for _ in range(QUIET_STORES)]
        quiet_ids = [c.install(store_hash, timeout=120) for store_hash in quiet_hashes]
        customers = seed_customers(c, flooded, FLOOD)  # one per delivery: each is a contact to send
        emails = itertools.count(1)
        placed: list[str] = []

        def quiet_orders(rounds: int) -> None:
            for store_hash in quiet_hashes * rounds:
                email = f"quiet{next(emails)}@drill.example.com"
                checkout(c, store_hash, email)
                placed.append(email)

        def every_purchase_sent() -> bool:
            return set(placed) <= set(purchases_by_email(c))

        # No flood: the quiet stores' own latency, once each has sent a first order (warm).
        quiet_orders(1)
        wait_for(every_purchase_sent, "the quiet stores' first PURCHASEs", timeout=120)
        wait_for(lambda: c.unfinished() == 0, "the set-up's deliveries to be finished", timeout=120)
        before = last_delivery_id(c)
        measured_from = len(placed)
        quiet_orders(QUIET_ORDERS)
        wait_for(every_purchase_sent, "the quiet stores' PURCHASEs with no flood", timeout=120)
        calm = order_latencies(c, quiet_ids, before, len(placed) - measured_from)

        # The flood, and the same quiet orders once its backlog is there.
        flood = Flood(c, {flooded: customers}, FLOOD)
        sender = flood.start()
        wait_for(lambda: flood.accepted >= FLOOD // 2, "half the flood to be received", timeout=300)
        before = last_delivery_id(c)
        backlog = c.unfinished()
        measured_from = len(placed)
        quiet_orders(QUIET_ORDERS)
        wait_for(every_purchase_sent, "the quiet stores' PURCHASEs during the flood", timeout=300)
        flooded_latencies = order_latencies(c, quiet_ids, before, len(placed) - measured_from)
        backlog_after = c.unfinished()
        sender.join(timeout=300)
        assert flood.accepted == FLOOD
        wait_for(lambda: c.unfinished() == 0, "the flood to be drained", timeout=300, interval=0.2)

        ratio = statistics.median(flooded_latencies) / max(statistics.median(calm), 0.001)
        print(
            f"flood_latency_ratio={ratio:.2f} (median quiet-store order latency "
            f"{statistics.median(flooded_latencies):.3f} s in a flood of {FLOOD} "
            f"received in {flood.seconds:.1f} s, "
            f"{statistics.median(calm):.3f} s without; the flood's backlog {backlog} deliveries when the "
            f"quiet orders came, {backlog_after} when they were done; 503s resent: {flood.resent})"
        )
        # The backlog figures are printed, not asserted: how much of the flood waits depends on the
        # machine's speed (a CI run saw 30); the latency ratio is the drill's measure of fairness.
        assert ratio <= MAX_LATENCY_RATIO
        final = statuses(c)
        assert final["pending"] == final["processing"] == final["failed"] == 0, final
        with c.db.session() as s:  # type: ignore[union-attr]
            flood_rows = s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.hash.startswith(flood.run_id))
            )
        assert flood_rows == FLOOD  # every delivery recorded once, and (above) finished
        sent = purchases_by_email(c)
        assert [email for email in placed if sent[email] != 1] == []  # every PURCHASE once
        assert all(count == 0 for count in c.sb.bc.over_quota.values())
        assert c.ready()


def test_a_flood_spread_over_many_stores_is_drained(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        hashes = [c.store_hash] + [c.sb.bc.add_store() for _ in range(FLOOD_STORES - 1)]
        for store_hash in hashes:
            c.install(store_hash, timeout=120)
        customers = {store_hash: seed_customers(c, store_hash, FLOOD // len(hashes)) for store_hash in hashes}
        flood = Flood(c, customers, FLOOD)
        flood.start().join(timeout=300)
        assert flood.accepted == FLOOD
        backlog = c.unfinished()
        wait_for(lambda: c.unfinished() == 0, "the flood to be drained", timeout=300, interval=0.2)
        print(
            f"spread flood: {FLOOD} deliveries over {len(hashes)} stores received in {flood.seconds:.1f} s, "
            f"{backlog} left to drain then"
        )
        final = statuses(c)
        assert final["pending"] == final["processing"] == final["failed"] == 0, final
        with c.db.session() as s:  # type: ignore[union-attr]
            recorded = s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.hash.startswith(flood.run_id))
            )
        assert recorded == FLOOD  # every delivery recorded once, and (above) finished
        assert all(count == 0 for count in c.sb.bc.over_quota.values())
        assert c.ready()
