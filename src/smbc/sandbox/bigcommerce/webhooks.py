"""Webhook deliveries of the fake BigCommerce: a background thread, BigCommerce's retry ladder,
deactivation at its end, optional duplicates and deliberately lost deliveries."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

# Seconds between attempts after a failure (reference §2.6); the hook is deactivated after the last one.
RETRY_LADDER_S: tuple[int, ...] = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)


@dataclass(frozen=True)
class Event:
    store_hash: str
    scope: str
    payload: dict[str, Any]


@dataclass
class Delivery:
    hook_id: int
    store_hash: str
    destination: str
    headers: dict[str, str]
    payload: dict[str, Any]
    attempt: int = 1


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST to a destination (or one that could not connect: `status` None, `error` set)."""

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
class _Queue:
    heap: list[tuple[float, int, Delivery]] = field(default_factory=list)
    in_flight: int = 0


def payload_hash(scope: str, data: dict[str, Any], sequence: int) -> str:
    # BigCommerce's hash is a SHA-1 of the event; whether two distinct events with equal data share it is
    # UNCONFIRMED, so the fake gives distinct events distinct hashes (a duplicate keeps the same one).
    body = json.dumps({"scope": scope, "data": data, "event": sequence}, sort_keys=True)
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


class WebhookDispatcher:
    """Queues events per matching hook and delivers them from a background thread.

    `resolve_hooks(event)` returns the (hook id, destination, headers) to deliver an event to, and
    `is_active(store_hash, hook_id)` / `deactivate(store_hash, hook_id)` reach back into the store's state.
    """

    def __init__(
        self,
        resolve_hooks: Callable[[Event], list[tuple[int, str, dict[str, str]]]],
        is_active: Callable[[str, int], bool],
        deactivate: Callable[[str, int], None],
        workers: int = 4,
    ) -> None:
        self._resolve_hooks = resolve_hooks
        self._is_active = is_active
        self._deactivate = deactivate
        self.duplicates = False
        self.retry_time_scale = 1.0
        self.timeout_s = 5.0
        self.log: list[DeliveryAttempt] = []
        self.dropped: list[Delivery] = []
        self._drop_remaining = 0
        self._queue = _Queue()
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._events = itertools.count(1)
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fakebc-webhook")
        self._client = httpx.Client(timeout=self.timeout_s)
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
            while self._queue.heap or self._queue.in_flight:
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

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue.heap) + self._queue.in_flight

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
        targets = self._resolve_hooks(event)
        with self._cond:
            for hook_id, destination, headers in targets:
                delivery = Delivery(hook_id, event.store_hash, destination, headers, event.payload)
                if self._drop_remaining > 0:
                    self._drop_remaining -= 1
                    self.dropped.append(delivery)
                    continue
                copies = 2 if self.duplicates else 1
                for _ in range(copies):
                    self._push(time.monotonic(), Delivery(**delivery.__dict__))
            self._cond.notify_all()

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._queue.heap, (due, next(self._seq), delivery))

    # -- consumer side ---------------------------------------------------------------------------------

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                if self._queue.heap and self._queue.heap[0][0] <= now:
                    _, _, delivery = heapq.heappop(self._queue.heap)
                    self._queue.in_flight += 1
                    self._pool.submit(self._deliver, delivery)
                    continue
                wait = self._queue.heap[0][0] - now if self._queue.heap else 0.5
                self._cond.wait(min(wait, 0.5))

    def _deliver(self, delivery: Delivery) -> None:
        try:
            if self._is_active(delivery.store_hash, delivery.hook_id):
                self._attempt(delivery)
        finally:
            with self._cond:
                self._queue.in_flight -= 1
                self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "fake-bigcommerce-webhooks"}
        headers.update(delivery.headers)
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(
                delivery.destination, content=json.dumps(delivery.payload), headers=headers
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
        with self._cond:
            self.log.append(attempt)
        if attempt.ok:
            return
        if delivery.attempt > len(RETRY_LADDER_S):
            self._deactivate(delivery.store_hash, delivery.hook_id)
            return
        delay = RETRY_LADDER_S[delivery.attempt - 1] * self.retry_time_scale
        retry = Delivery(**{**delivery.__dict__, "attempt": delivery.attempt + 1})
        with self._cond:
            self._push(time.monotonic() + delay, retry)
            self._cond.notify_all()
