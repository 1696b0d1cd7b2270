"""Drill 7: two web and two worker processes, and every webhook delivery arriving at both web processes
at the same moment (BigCommerce sending one twice, each copy to another process): one PURCHASE per
order, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster import Cluster
from sqlalchemy import func, select

from smbc.realtime.models import WebhookDelivery
from support import wait_for

# One drill at a time (one xdist worker): each runs five processes on a small machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(300),
]

ORDERS = 50


def test_one_purchase_when_both_web_processes_get_the_same_deliveries(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        c.install()
        c.balancer.mirror = True
        orders = c.burst(ORDERS)
        assert c.sb.bc.webhooks.flush(timeout=120)
        c.wait_for_purchases(orders, timeout=120)
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=120)

        sent = c.purchases()
        assert set(sent) == set(orders)
        assert [order for order, times in sent.items() if times > 1] == []
        answered = [a for a in c.sb.bc.webhooks.log if a.scope == "store/order/created"]
        assert len(answered) == ORDERS and all(a.ok for a in answered)  # each copy was accepted
        assert c.db is not None
        with c.db.session() as s:
            created = s.scalar(
                select(func.count(func.distinct(WebhookDelivery.resource_id))).where(
                    WebhookDelivery.scope == "store/order/created"
                )
            )
        assert created == ORDERS
        assert c.bigcommerce_answers(429) == 0
        assert c.ready()
