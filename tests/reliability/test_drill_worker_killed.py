"""Drill 1: `kill -9` of a worker in the middle of a real-time burst, with another worker still running,
and then of the last worker, with none left until a new one starts. Two web and two worker processes
on PostgreSQL + Redis; every PURCHASE arrives at the fake SALESmanago once, within two minutes of
the kill, no BigCommerce quota is exceeded, and the app is healthy afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cluster import Cluster

from support import wait_for

# One drill at a time (one xdist worker): each runs five processes on a small machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(420),
]

ORDERS = 80  # per burst: about 560 webhook deliveries each (carts, orders, subscribers, stock)
WITHIN = 120.0  # seconds from the kill to the last PURCHASE


def test_every_purchase_arrives_once_when_workers_are_killed(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        first, second = c.start_worker(), c.start_worker()
        c.install()

        # 1. One of two workers is killed in the middle of a burst: the other takes its rows over.
        orders = c.burst(ORDERS)
        wait_for(lambda: len(c.purchases()) >= ORDERS // 3, "a third of the PURCHASEs", timeout=120)
        c.kill(first)
        killed_at = time.monotonic()
        c.wait_for_purchases(orders, timeout=WITHIN)
        assert time.monotonic() - killed_at < WITHIN

        # 2. The last worker is killed; nothing runs until a new worker starts, which takes over.
        more = c.burst(ORDERS)
        wait_for(
            lambda: len(set(c.purchases()) & set(more)) >= ORDERS // 3,
            "a third of the second burst's PURCHASEs",
            timeout=120,
        )
        c.kill(second)
        killed_at = time.monotonic()
        c.start_worker()
        c.wait_for_purchases(orders + more, timeout=WITHIN)
        assert time.monotonic() - killed_at < WITHIN

        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=WITHIN)
        sent = c.purchases()
        assert set(sent) == set(orders + more)
        # Known gap (#16): a worker killed after SALESmanago took a PURCHASE but before the ledger
        # recorded it leaves a claim the next worker resends; at most one such order per kill.
        twice = [order for order, times in sent.items() if times > 1]
        assert len(twice) <= 2 and all(sent[order] == 2 for order in twice), sent
        assert c.bigcommerce_answers(429) == 0  # the store stayed within its quota
        assert c.ready()
