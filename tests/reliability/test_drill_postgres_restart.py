"""Drill 2: PostgreSQL restarted in the middle of a burst (a private server of this test: `pg_ctl stop
-m fast`, down for OUTAGE_S, started again). Two web and two worker processes on it and Redis.

While the database is down the receiver answers 503 with Retry-After (never a 500, never a dropped
connection) and BigCommerce's sender retries; in-flight work fails cleanly and is retried once the
database is back, without waiting for a stale lock. Every PURCHASE arrives once within WITHIN of the
database's return, no store goes over its quota, and the app is healthy again by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cluster import Cluster
from private_postgres import PrivatePostgres
from sqlalchemy import func, select

from smbc.core.clock import utcnow
from smbc.engine.ledgers import SentEvent
from smbc.realtime.models import WebhookDelivery
from support import wait_for

# One drill at a time (one xdist worker): each runs five processes on a small machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(420),
]

ORDERS_BEFORE = 30  # checked out before the restart; more keep coming until after it
OUTAGE_S = 6.0
BACKLOG = 40  # deliveries the fake BigCommerce may hold (retries included) before shoppers wait
WITHIN = 180.0  # seconds from the database's return to the last PURCHASE
# After the server accepts connections again, answers already on their way may still be 503s: a
# batch that failed just before, or a pool's connection found dead by its ping.
SETTLE_S = 3.0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with PrivatePostgres.create() as pg:
        yield pg


class Shoppers:
    """Guests checking out a few carts at a time from a thread, until told to stop; paced by the
    webhook sender, so the deliveries keep arriving instead of piling up in the fake BigCommerce."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.orders: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-shoppers", daemon=True)

    def __enter__(self) -> Shoppers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the shoppers did not stop"

    def _run(self) -> None:
        webhooks = self.c.sb.bc.webhooks
        while not self._stop.is_set():
            wait_for(lambda: webhooks.pending < BACKLOG or self._stop.is_set(), "the sender", timeout=300)
            if not self._stop.is_set():
                self.orders.extend(self.c.burst(3))

    def placed(self) -> int:
        return len(self.orders)


def what_the_sender_saw(c: Cluster, since: float) -> str:
    """The webhook answers by second from `since` and status, and the sender's failed attempts."""
    answers = Counter((int(at - since), status) for at, status, _ in c.balancer.webhook_answers)
    failed = Counter(str(a.status or a.error)[:60] for a in c.sb.bc.webhooks.log if not a.ok)
    return f"answers by (second, status): {sorted(answers.items())}; failed attempts: {dict(failed)}; " + (
        f"still to deliver: {c.sb.bc.webhooks.pending}"
    )


def missing_purchases(c: Cluster, orders: list[int]) -> str:
    """The orders whose PURCHASE has not arrived, with their deliveries and ledger rows."""
    missing = sorted(set(orders) - set(c.purchases()))
    assert c.db is not None
    with c.db.session() as s:
        deliveries = s.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.scope,
                WebhookDelivery.resource_id,
                WebhookDelivery.status,
                WebhookDelivery.attempts,
                WebhookDelivery.next_attempt_at,
                WebhookDelivery.locked_at,
                WebhookDelivery.reason,
                WebhookDelivery.last_error,
            ).where(WebhookDelivery.resource_id.in_([str(order) for order in missing]))
        ).all()
        claims = s.execute(
            select(SentEvent.key, SentEvent.state, SentEvent.claimed_by, SentEvent.claimed_at).where(
                SentEvent.key.in_([str(order) for order in missing])
            )
        ).all()
    return (
        f"PURCHASEs of {len(missing)} of {len(orders)} orders {missing[:5]} at {utcnow()}; "
        f"deliveries: {[tuple(str(v)[:100] for v in row) for row in deliveries]}; ledger: {claims}"
    )


def test_a_postgres_restart_mid_burst_loses_nothing_and_heals_by_itself(
    private_postgres: PrivatePostgres, redis_url: str, tmp_path: Path
) -> None:
    database_url = private_postgres.database("smbc")
    with Cluster(tmp_path, database_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        c.install()

        with Shoppers(c) as shoppers:
            wait_for(lambda: shoppers.placed() >= ORDERS_BEFORE, "the first orders", timeout=120)
            wait_for(lambda: len(c.purchases()) >= ORDERS_BEFORE // 3, "PURCHASEs being sent", timeout=120)
            placed_before = shoppers.placed()
            down_at = time.monotonic()
            private_postgres.stop("fast")
            back_at = utcnow() + timedelta(seconds=OUTAGE_S)
            wait_for(lambda: utcnow() >= back_at, "the outage to last", timeout=OUTAGE_S + 30, interval=0.2)
            private_postgres.start()
            up_at = time.monotonic()
            wait_for(
                lambda: shoppers.placed() >= placed_before + 10,
                "orders placed during and after the outage",
                timeout=120,
            )
        orders = shoppers.orders

        # Every delivery accepted in the end.
        assert c.sb.bc.webhooks.flush(timeout=WITHIN), what_the_sender_saw(c, down_at)
        wanted = set(orders)
        wait_for(lambda: wanted <= set(c.purchases()), lambda: missing_purchases(c, orders), timeout=WITHIN)
        healed_in = time.monotonic() - up_at
        print(f"every PURCHASE {healed_in:.1f}s after PostgreSQL returned; {len(orders)} orders")
        assert healed_in < WITHIN
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=WITHIN)

        assert c.db is not None
        with c.db.session() as s:
            retried = s.scalar(select(func.count()).where(WebhookDelivery.attempts > 1))
        print(f"deliveries tried more than once: {retried}")
        sent = c.purchases()
        assert set(sent) == set(orders)
        assert [order for order, times in sent.items() if times > 1] == []  # nothing sent twice

        # What the sender got: 200, or while the database was down a 503 with Retry-After; no 500,
        # and no connection the web process dropped (the balancer answers those 502).
        answers = c.balancer.webhook_answers
        statuses = Counter(status for _, status, _ in answers)
        print(f"webhook answers: {dict(statuses)}")
        assert set(statuses) <= {200, 503}, statuses
        refused = [(at, retry_after) for at, status, retry_after in answers if status == 503]
        assert refused, "no delivery arrived while the database was down: the drill tested nothing"
        assert all(retry_after for _, retry_after in refused)
        assert all(down_at <= at <= up_at + SETTLE_S for at, _ in refused), (
            f"503s outside the outage [{0:.1f}, {up_at - down_at:.1f}]s: "
            f"{sorted(round(at - down_at, 1) for at, _ in refused if at > up_at + SETTLE_S)[:10]}"
        )

        assert c.bigcommerce_answers(429) == 0  # the store stayed within its quota
        assert all(worker.poll() is None for worker in c.workers), "a worker died"
        assert all(web.poll() is None for web in c.webs), "a web process died"
        wait_for(c.ready, "/readyz to answer 200 again", timeout=30)
