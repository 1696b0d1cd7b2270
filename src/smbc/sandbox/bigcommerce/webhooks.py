"""Webhook deliveries of the fake BigCommerce: a background thread, BigCommerce's retry ladder,
deactivation at its end, domain blocklisting on a poor success ratio, optional duplicates and
deliberately lost deliveries."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

# Seconds between attempts after a failure; the hook is deactivated after the last one.
RETRY_LADDER_S: tuple[int, ...] = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
# A destination domain is blocked for BLOCK_S when, over the last WINDOW_S with at least MIN_REQUESTS
# deliveries, fewer than MIN_SUCCESS of them succeeded (per client id; all URLs of a domain share fate).
WINDOW_S = 120.0
MIN_REQUESTS = 100
MIN_SUCCESS = 0.9
BLOCK_S = 180.0


@dataclass(frozen=True)
class Event:
    store_hash: str
    scope: str
    payload: dict[str, Any]
    client_id: str | None = None  # only that client's hooks (delivery exceptions); None = every matching hook


@dataclass(frozen=True)
class Target:
    """Where one event goes: a hook's id, owner, destination and custom headers."""

    hook_id: int
    client_id: str
    destination: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    target: Target
    store_hash: str
    payload: dict[str, Any]
    attempt: int = 1

    @property
    def hook_id(self) -> int:
        return self.target.hook_id

    @property
    def destination(self) -> str:
        return self.target.destination

    @property
    def headers(self) -> dict[str, str]:
        """The hook's custom headers (what a test replaying a dropped delivery must send along)."""
        return self.target.headers


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST to a destination (or one that got no answer: `status` None, `error` set)."""

    store_hash: str
    hook_id: int
    scope: str
    destination: str
    status: int | None
    time: float
    attempt: int
    payload: dict[str, Any]
    headers: dict[str, str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Block:
    until: float
    reasons: Counter[str] = field(default_factory=Counter)
    last_failure: float = 0.0


def payload_hash(scope: str, data: dict[str, Any], sequence: int) -> str:
    # BigCommerce's hash is a SHA-1 of the event; whether two distinct events with equal data share it is
    # UNCONFIRMED, so the fake gives distinct events distinct hashes (a duplicate keeps the same one).
    body = json.dumps({"scope": scope, "data": data, "event": sequence}, sort_keys=True)
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


def domain_of(destination: str) -> str:
    return urlsplit(destination).netloc.lower()


# Callbacks into the fake: (store hash, hook id) -> is it active; deactivate it; and a failure report
# (delivery, attempt, error code 90001 failed / 90002 retries exhausted / 90003 domain blocked).
IsActive = Callable[[str, int], bool]
Deactivate = Callable[[str, int], None]
OnFailure = Callable[[Delivery, str, int], None]


class WebhookDispatcher:
    """Queues events per matching hook and delivers them from a background thread."""

    def __init__(
        self,
        resolve_targets: Callable[[Event], list[Target]],
        is_active: IsActive,
        deactivate: Deactivate,
        on_failure: OnFailure | None = None,
        workers: int = 4,
    ) -> None:
        self._resolve_targets = resolve_targets
        self._is_active = is_active
        self._deactivate = deactivate
        self._on_failure = on_failure
        self.duplicates = False
        self.retry_time_scale = 1.0  # multiplies the retry ladder and the block time
        self.blocking = True  # blocklist domains with a poor success ratio, as BigCommerce does
        self.timeout_s = 5.0
        self.log: list[DeliveryAttempt] = []
        self.dropped: list[Delivery] = []
        self._drop_remaining = 0
        self._heap: list[tuple[float, int, Delivery]] = []
        self._in_flight = 0
        self._outcomes: dict[tuple[str, str], deque[tuple[float, bool]]] = {}
        self._blocks: dict[tuple[str, str], Block] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._events = itertools.count(1)
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fakebc-webhook")
        self._client = httpx.Client()
        self._thread = threading.Thread(target=self._run, name="fakebc-webhooks", daemon=True)
        self._thread.start()

    # -- API for tests --------------------------------------------------------------------------------

    def drop_next(self, n: int = 1) -> None:
        """Lose the next `n` deliveries (each event x hook pair is one) without attempting them."""
        with self._cond:
            self._drop_remaining += n

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery and scheduled retry has been attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def attempts(self, scope: str | None = None, store_hash: str | None = None) -> list[DeliveryAttempt]:
        with self._cond:
            return [
                a
                for a in self.log
                if (scope is None or a.scope == scope) and (store_hash is None or a.store_hash == store_hash)
            ]

    def set_senders(self, senders: int) -> None:
        """How many deliveries are posted at once from now on (4 unless told; BigCommerce's own number
        is not documented). Deliveries already handed to a sender finish where they are."""
        with self._cond:
            old, self._pool = (
                self._pool,
                ThreadPoolExecutor(max_workers=senders, thread_name_prefix="fakebc-webhook"),
            )
        old.shutdown(wait=False)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._in_flight

    def blocked_domains(self, client_id: str) -> list[dict[str, Any]]:
        """`blocked_domains` of /v3/hooks/admin for one client."""
        now = time.monotonic()
        with self._cond:
            return [
                {
                    "destination": domain,
                    "time_left": max(0, int(block.until - now)),
                    "reasons": [
                        {"failure_description": reason, "count": count, "timestamp": int(block.last_failure)}
                        for reason, count in block.reasons.items()
                    ],
                }
                for (owner, domain), block in self._blocks.items()
                if owner == client_id and block.until > now
            ]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- producer side ---------------------------------------------------------------------------------

    def next_event_number(self) -> int:
        return next(self._events)

    def publish(self, event: Event) -> None:
        targets = self._resolve_targets(event)
        with self._cond:
            for target in targets:
                delivery = Delivery(target, event.store_hash, event.payload)
                if self._drop_remaining > 0:
                    self._drop_remaining -= 1
                    self.dropped.append(delivery)
                    continue
                for _ in range(2 if self.duplicates else 1):
                    self._push(time.monotonic(), delivery)
            self._cond.notify_all()

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), delivery))

    # -- consumer side ---------------------------------------------------------------------------------

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, _, delivery = heapq.heappop(self._heap)
                    block = self._blocks.get((delivery.target.client_id, domain_of(delivery.destination)))
                    if block is not None and block.until > now:
                        # Events for a blocked domain wait in the retry queue until the block ends.
                        self._push(block.until, delivery)
                        continue
                    self._in_flight += 1
                    self._pool.submit(self._deliver, delivery)
                    continue
                wait = self._heap[0][0] - now if self._heap else 0.5
                self._cond.wait(min(wait, 0.5))

    def _deliver(self, delivery: Delivery) -> None:
        try:
            if self._is_active(delivery.store_hash, delivery.hook_id):
                self._attempt(delivery)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "fake-bigcommerce-webhooks"}
        headers.update(delivery.target.headers)
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(
                delivery.destination,
                content=json.dumps(delivery.payload),
                headers=headers,
                timeout=self.timeout_s,
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempt = DeliveryAttempt(
            store_hash=delivery.store_hash,
            hook_id=delivery.hook_id,
            scope=delivery.payload["scope"],
            destination=delivery.destination,
            status=status,
            time=time.time(),
            attempt=delivery.attempt,
            payload=delivery.payload,
            headers=headers,
            error=error,
        )
        reason = error or f"HTTP {status}"
        with self._cond:
            self.log.append(attempt)
            newly_blocked = self._record_outcome(delivery, attempt.ok, reason)
        if newly_blocked and self._on_failure:
            self._on_failure(delivery, f"{domain_of(delivery.destination)} is blocked for a while", 90003)
        if attempt.ok:
            return
        if delivery.attempt > len(RETRY_LADDER_S):
            self._deactivate(delivery.store_hash, delivery.hook_id)
            if self._on_failure:
                self._on_failure(delivery, f"retries exhausted ({reason}); the webhook is deactivated", 90002)
            return
        if self._on_failure:
            self._on_failure(delivery, f"delivery failed ({reason}); it will be retried", 90001)
        delay = RETRY_LADDER_S[delivery.attempt - 1] * self.retry_time_scale
        with self._cond:
            self._push(time.monotonic() + delay, replace(delivery, attempt=delivery.attempt + 1))
            self._cond.notify_all()

    def _record_outcome(self, delivery: Delivery, ok: bool, reason: str) -> bool:
        """Track the success ratio per (client, domain); True when this outcome starts a block."""
        key = (delivery.target.client_id, domain_of(delivery.destination))
        now = time.monotonic()
        window = self._outcomes.setdefault(key, deque())
        window.append((now, ok))
        while window and window[0][0] < now - WINDOW_S:
            window.popleft()
        block = self._blocks.get(key)
        if not ok:
            if block is None or 0.0 < block.until <= now:  # none yet, or the last block is over
                block = self._blocks[key] = Block(until=0.0)
            block.reasons[reason] += 1
            block.last_failure = time.time()
        if not self.blocking or len(window) < MIN_REQUESTS:
            return False
        if sum(1 for _, good in window if good) / len(window) >= MIN_SUCCESS:
            return False
        assert block is not None
        if block.until > now:
            return False
        block.until = now + BLOCK_S * self.retry_time_scale
        window.clear()  # the ratio is measured afresh after the block
        return True
