"""Drill 4: SALESmanago answers 500s, then hangs past the client's timeout, in the middle of a burst, and
then recovers. Two web and two worker processes on PostgreSQL + Redis. Every PURCHASE arrives once,
each contact's calls keep their order (the contact before its events), the deliveries back off while
SALESmanago is down (a few attempts each, not a storm) and their retries spread out after recovery
instead of arriving at once. A PURCHASE whose send timed out is recorded unconfirmed, not sent again
by the app (SALESmanago may have had it); the drill, knowing the fake never took it, sends those again
on purpose as a merchant would (`smbc deliveries resend`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster
from sqlalchemy import select

from smbc.actions.deliveries import resend_unconfirmed
from smbc.core.clock import utcnow
from smbc.realtime.models import WebhookDelivery
from support import wait_for

# One drill at a time (one xdist worker): each runs five processes on a small machine.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.xdist_group("reliability-drills"),
    pytest.mark.timeout(420),
]

ORDERS = 30
CLIENT_TIMEOUT_S = 20.0  # the SALESmanago client's read timeout
HANG_MS = int((CLIENT_TIMEOUT_S + 2) * 1000)  # a call that outlasts it: the client times out
IN_CALL_ATTEMPTS = 3  # the client's quick attempts within one job attempt
FIRST_RETRY_S = 15.0  # the engine's shortest first wait (half of 30 s); each later one doubles
HERD_WINDOW = timedelta(seconds=5)
HERD_SPREAD = timedelta(seconds=10)


def most_attempts(outage_s: float) -> int:
    """The most calls one send can make in an outage this long under the engine's backoff."""
    job_attempts, waited, wait = 1, 0.0, FIRST_RETRY_S
    while waited + wait <= outage_s:
        job_attempts, waited, wait = job_attempts + 1, waited + wait, wait * 2
    return job_attempts * IN_CALL_ATTEMPTS


def retry_times(c: Cluster) -> list[datetime]:
    """When each delivery waiting for a retry is due."""
    assert c.db is not None
    with c.db.session() as s:
        return list(
            s.scalars(
                select(WebhookDelivery.next_attempt_at).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at.is_not(None)
                )
            )
        )


def contact_of(body: Any) -> str | None:
    """The e-mail a SALESmanago call is about (the contact's or the event's)."""
    if isinstance(body, dict):
        for key in ("email", "contactEmail"):
            if isinstance(body.get(key), str):
                return str(body[key]).lower()
        for value in body.values():
            found = contact_of(value)
            if found:
                return found
    if isinstance(body, list) and len(body) == 1:
        return contact_of(body[0])
    return None


def calls_between(c: Cluster, start: datetime, end: datetime | None = None) -> list[dict[str, Any]]:
    return [
        call
        for call in c.sb.sm.calls
        if call["time"] >= start
        and (end is None or call["time"] < end)
        and "drill.example.com" in str(call["body"])
    ]


def test_everything_arrives_once_in_order_after_a_salesmanago_outage(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker()
        c.start_worker()
        c.install()
        faults = c.sb.sm.faults

        # 1. SALESmanago answers 500 to everything while the shoppers check out.
        outage_start = utcnow()
        faults.error_rate = 1.0
        orders = c.burst(ORDERS)
        assert c.sb.bc.webhooks.flush(timeout=120)  # every webhook accepted: the outage is not the app's
        wait_for(
            lambda: len({contact_of(call["body"]) for call in calls_between(c, outage_start)}) >= ORDERS,
            "every shopper's first attempt to fail",
            timeout=120,
        )

        # 2. Then it hangs past the client's timeout (and still fails) while the first retries come.
        faults.latency_ms = HANG_MS
        hang_start = utcnow()
        wait_for(
            lambda: len(calls_between(c, hang_start)) >= 4,
            "retries to reach the hanging SALESmanago",
            timeout=120,
        )
        # The calls already hanging end with a 500 too, so SALESmanago never holds a request the app
        # saw time out (what it does with one it did hold is not this drill's question).
        faults.latency_ms = 0
        hang_over = utcnow() + timedelta(milliseconds=HANG_MS + 1000)
        wait_for(lambda: utcnow() >= hang_over, "the hanging calls to end", timeout=60, interval=0.5)
        # 3. Recovery, once deliveries wait for their retry (a drain may hold them all for a moment).
        wait_for(lambda: len(retry_times(c)) >= 2, "deliveries waiting for their retry", timeout=60)
        waits = retry_times(c)
        faults.reset()
        recovered_at = utcnow()

        wait_for(
            lambda: set(orders) <= set(c.purchases()) | set(c.unconfirmed_purchases()),
            "every PURCHASE to arrive or be recorded unconfirmed",
            timeout=180,
        )
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=180)
        # The unconfirmed ones are the sends that timed out on the hanging SALESmanago, which answered
        # them 500 in the end: it does not have them, so they are sent again on purpose.
        in_doubt = c.unconfirmed_purchases()
        assert c.db is not None
        assert not set(in_doubt) & set(c.purchases()), in_doubt
        for owner in in_doubt.values():
            assert resend_unconfirmed(c.db, c.store_hash, int(owner.removeprefix("delivery:"))) == 1
        c.wait_for_purchases(orders, timeout=180)
        wait_for(lambda: c.unfinished() == 0, "every delivery to be finished", timeout=180)
        print(f"unconfirmed after the hang, sent again on purpose: {len(in_doubt)}")

        sent = c.purchases()
        assert set(sent) == set(orders)
        assert [order for order, times in sent.items() if times > 1] == []  # nothing sent twice

        # Backoff: during the outage each contact was tried a few times, not in a loop.
        attempts = Counter(
            (contact_of(call["body"]), call["path"]) for call in calls_between(c, outage_start, recovered_at)
        )
        outage_s = (recovered_at - outage_start).total_seconds()
        assert max(attempts.values()) <= most_attempts(outage_s), (outage_s, attempts.most_common(3))

        # In order per contact: the contact is upserted before any of its events is accepted.
        successes: dict[str, list[str]] = defaultdict(list)
        for call in c.sb.sm.calls:
            email = contact_of(call["body"])
            if email and call["status"] == 200 and "drill.example.com" in email:
                successes[email].append(call["path"])
        for email, paths in successes.items():
            first_event = next((i for i, p in enumerate(paths) if "Event" in p), None)
            first_upsert = next((i for i, p in enumerate(paths) if "upsert" in p), None)
            if first_event is not None:
                assert first_upsert is not None and first_upsert < first_event, (email, paths)

        # No thundering herd: the deliveries waiting at recovery were due at spread-out times (the
        # backoff's jitter), and the calls after recovery did not all come in its first seconds.
        assert waits and max(waits) - min(waits) >= HERD_SPREAD, (min(waits), max(waits))
        after = calls_between(c, recovered_at)
        first_seconds = [call for call in after if call["time"] < recovered_at + HERD_WINDOW]
        assert len(first_seconds) < len(after), (len(first_seconds), len(after))
        assert c.bigcommerce_answers(429) == 0
        assert c.ready()
