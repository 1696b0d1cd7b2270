"""Group commit for the webhook receiver: deliveries arriving together share one transaction.

A request waits while the one writer thread flushes the batch before it, then goes out with
everyone who arrived meanwhile: one store read and one INSERT (skipping what is already there) for
the lot, on one connection kept while batches follow each other. The writer takes the next batch
itself as soon as a commit is done, so a busy event loop never leaves it idle, and when nobody
waits it stays a moment (`LINGER_SECONDS`) before giving its connection back: at the rates of real
traffic the next delivery comes before that, and finds the writer awake and its connection open
(no thread start, pool checkout, liveness ping and reset per batch). Each request is answered as
soon as the commit that holds its row is done, so a 200 still means the delivery is durable. There
is no timer: an idle receiver flushes a lone delivery at once, and under load the batches grow by
themselves. Queue messages (one drain per store of the batch) are sent by the writer after the
answers, before it takes the next batch: a committed row is due, so a message lost with the process
(or to a queue that is down) leaves it to the sweep, and an answer does not wait for the queue. A
queue that fails is left alone for `QUEUE_DOWN_SECONDS`, so that a hung one delays the batches once
in that time at most."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from redis import Redis

from smbc.core.job_batches import held_queue_connection
from smbc.db.session import Database
from smbc.realtime.inbox import (
    FAILED,
    UNAVAILABLE,
    Accepted,
    DatabaseUnavailable,
    InboxWriter,
    Received,
    StoreFound,
    enqueue_accepted,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500  # deliveries per transaction: bounds the statement size and one flush's time
LINGER_SECONDS = 0.5  # an idle writer waits this long for the next delivery, its connection open
QUEUE_DOWN_SECONDS = 10.0  # no queue message for this long after one failed (the sweep has the rows)


class GroupCommit:
    """One per process and database; `record` is called from an event loop (any: each request is
    answered on its own loop)."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[tuple[Received, asyncio.Future[Accepted]]] = []
        # Guards _waiting, _flushing and _lingering (the loop's thread, the writer); wakes a lingering writer
        self._lock = threading.Condition(threading.Lock())
        self._flushing = False  # a writer is flushing or lingering: it takes whatever is appended
        self._lingering = False  # that writer waits for deliveries (record() wakes it)
        # One writer: SQLite takes one writer at a time anyway, and PostgreSQL gets one commit per batch.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="inbox-writer")
        self._known_stores: dict[str, StoreFound] = {}  # the writer's: what it last read of each store
        self._queue_down_until = 0.0  # monotonic time until which no queue message is sent
        self._messages = threading.Condition(threading.Lock())  # guards the two counts of batches below
        self._answered = 0  # batches answered
        self._sent = 0  # batches whose queue messages are sent (or given up)

    async def record(self, received: Received) -> Accepted:
        """Verify and record one delivery with whoever else is waiting; answers once it is durable."""
        answered: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append((received, answered))
            start, self._flushing = not self._flushing, True
            if self._lingering:
                self._lock.notify()
        if start:
            self._writer.submit(self._flush_while_waiting)
        return await answered

    def wait_for_messages(self, timeout: float | None = None) -> None:
        """Block until the queue messages of every batch answered so far are sent (or given up)."""
        with self._messages:
            answered = self._answered
            if not self._messages.wait_for(lambda: self._sent >= answered, timeout):
                raise TimeoutError(f"queue messages of {answered - self._sent} batches not sent")

    def _flush_while_waiting(self) -> None:
        """On the writer thread, batch after batch until nobody has come for `LINGER_SECONDS`: the next
        flush starts as soon as the last one is committed, without waiting for the busy event loop to
        ask for it. The batches share one database connection, given back when the writer stops."""
        writer = InboxWriter(self.db, self._known_stores)
        held: list[Redis | None] = []  # the queue's connection, held from the first send to the end
        try:
            while batch := self._next_batch():
                outcomes = self._flush(writer, batch)
                with self._messages:
                    self._answered += 1
                _answer(batch, outcomes)
                try:
                    self._send_messages(outcomes, held)
                finally:
                    with self._messages:
                        self._sent += 1
                        self._messages.notify_all()
        except BaseException:  # a bug here: the next delivery starts a flush again instead of waiting
            with self._lock:
                self._flushing = self._lingering = False
            raise
        finally:
            writer.release()
            for queue in held:
                if queue is not None:
                    queue.close()

    def _next_batch(self) -> list[tuple[Received, asyncio.Future[Accepted]]]:
        with self._lock:
            if not self._waiting:
                self._lingering = True
                self._lock.wait(LINGER_SECONDS)  # record() wakes it as soon as a delivery comes
                self._lingering = False
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            self._flushing = bool(batch)
            return batch

    def _flush(
        self, writer: InboxWriter, batch: list[tuple[Received, asyncio.Future[Accepted]]]
    ) -> list[Accepted]:
        try:
            return writer.record([item for item, _ in batch])
        except DatabaseUnavailable:
            return [UNAVAILABLE] * len(batch)
        except Exception:  # a bug: a clean 500 for this batch (the sender retries), the next goes on
            log.exception("webhook deliveries not recorded")
            return [FAILED] * len(batch)

    def _send_messages(self, outcomes: list[Accepted], held: list[Redis | None]) -> None:
        """The batch's drains, after its answers, on the queue connection in `held` (taken at the first
        send); none while the queue is taken for down."""
        if time.monotonic() < self._queue_down_until:
            return
        if not held and any(o.store_id is not None for o in outcomes):
            held.append(held_queue_connection())
        if not enqueue_accepted(outcomes, held[0] if held else None):
            self._queue_down_until = time.monotonic() + QUEUE_DOWN_SECONDS


def _answer(batch: list[tuple[Received, asyncio.Future[Accepted]]], outcomes: list[Accepted]) -> None:
    """From the writer thread: one call into each waiting loop (usually one) for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Accepted], Accepted]]] = {}
    for (_, answered), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(answered.get_loop(), []).append((answered, outcome))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_results, answers)
        except RuntimeError:  # that loop is closed: nobody waits for these answers any more
            log.debug("%d webhook answers for a closed event loop dropped", len(answers))


def _set_results(answers: list[tuple[asyncio.Future[Accepted], Accepted]]) -> None:
    for answered, outcome in answers:
        if not answered.done():  # a request whose client went away is no longer waiting
            answered.set_result(outcome)
