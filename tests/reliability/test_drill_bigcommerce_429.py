"""Drill 5: BigCommerce 429 storms in the middle of a burst. The store's quota is small, so two worker
processes share it through Redis, and for a while BigCommerce also answers 429 without any rate-limit
header (overloaded). The fake counts what it refused for the quota: nothing; work resumes once the
storm ends, and every PURCHASE arrives once."""

from __future__ import annotations

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

ORDERS = 30
QUOTA = 30  # requests per window: the burst (about 80 requests) needs several windows
WINDOW_S = 5.0
OVERLOADED_SHARE = 0.5  # of requests answered 429 without rate-limit headers during the storm
STORM_429S = 10  # header-less 429s the app receives before the storm ends (each holds the store 5 s)


def test_the_app_stays_within_quota_through_429_storms_and_resumes(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        c.install()
        bc = c.sb.bc
        bc.set_quota(c.store_hash, requests=QUOTA, window_s=WINDOW_S)
        before = bc.requests_by_store[c.store_hash]

        bc.faults.rate_limit_without_headers = OVERLOADED_SHARE
        orders = c.burst(ORDERS)
        wait_for(
            lambda: c.bigcommerce_answers(429) >= STORM_429S,
            lambda: f"{STORM_429S} header-less 429s (seen {c.bigcommerce_answers(429)})",
            timeout=180,
        )
        bc.faults.rate_limit_without_headers = 0.0  # the storm ends; the quota still binds

        c.wait_for_purchases(orders, timeout=180)
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=180)
        sent = c.purchases()
        assert set(sent) == set(orders)
        assert [order for order, times in sent.items() if times > 1] == []  # nothing sent twice
        assert bc.requests_by_store[c.store_hash] - before > 2 * QUOTA  # the quota bound: several windows
        assert bc.over_quota[c.store_hash] == 0  # never over the store's quota
        assert c.ready()
