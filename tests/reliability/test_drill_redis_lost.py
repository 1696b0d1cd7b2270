"""Drill 3: Redis restarted with its data lost in the middle of a burst (a private redis-server, killed
and started again empty). Deliveries whose queue message (their store's drain) vanished stay pending
in the database; the sweep finds every one of them, and everything is delivered once."""

from __future__ import annotations

import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cluster import Cluster
from sqlalchemy import func, select

from smbc.core.clock import utcnow
from smbc.core.http_server import free_port
from smbc.core.jobs import huey
from smbc.engine import queue
from smbc.realtime.models import WebhookDelivery
from smbc.realtime.processing import DELIVERIES
from support import require, wait_for

# One drill at a time (one xdist worker): each runs five processes on a small machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(300),
]

ORDERS = 80
REDIS_SERVER = "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server of this test alone, without persistence: a restart loses everything."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, "the private redis-server to listen", timeout=30)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require(Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def pending_count(c: Cluster) -> int:
    assert c.db is not None
    with c.db.session() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
            )
            or 0
        )


def processing_count(c: Cluster) -> int:
    return c.unfinished() - pending_count(c)


def test_the_sweep_finds_every_delivery_whose_queue_message_vanished(
    postgres_url: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, private_redis.url) as c:
        worker = c.start_worker()
        c.install()
        c.kill(worker)  # no worker while the burst piles up in Redis: every message is there
        orders = c.burst(ORDERS)
        flushed = c.sb.bc.webhooks.flush(timeout=120)
        refused = Counter(str(a.status or a.error)[:80] for a in c.sb.bc.webhooks.log if not a.ok)
        assert flushed, f"deliveries refused: {refused}"
        backlog = pending_count(c)
        assert backlog >= 100
        assert huey.pending_count() >= 1  # the store's drain
        private_redis.kill()  # with the drain's message in it
        private_redis.start()  # empty
        c.start_worker()
        c.start_worker()
        # Nothing arrives after the loss (a new delivery's drain would take the store's rows too), so
        # every delivery waits for the sweep: no message, no mark of a queued drain, nothing worked on.
        assert huey.pending_count() == 0
        lost = pending_count(c)
        assert lost == backlog and processing_count(c) == 0
        assert set(orders) - set(c.purchases())  # PURCHASEs wait on the lost messages

        # The sweep runs as the minute's scheduled sweep would once a lost message's grace has passed
        # (the clock moved on instead of the test waiting for it); no row is held by a worker now.
        later = utcnow() + queue.NEVER_TRIED_GRACE + timedelta(seconds=1)
        assert queue.sweep(DELIVERIES, c.db, later) == lost

        c.wait_for_purchases(orders, timeout=120)
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=120)
        sent = c.purchases()
        assert [order for order, times in sent.items() if times > 1] == []
        assert c.bigcommerce_answers(429) == 0
        assert c.ready()
