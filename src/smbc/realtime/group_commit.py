"""Group commit for the webhook receiver: deliveries arriving together share one transaction.

A request waits while the one writer thread flushes the batch before it, then goes out with
everyone who arrived meanwhile: one store read, one duplicate read, one INSERT and one commit for
the lot. Each request is answered as soon as the commit that holds its row is done, so a 200 still
means the delivery is durable. There is no timer: an idle receiver flushes a lone delivery at once,
and under load the batches grow by themselves. Queue messages (one drain per store of the batch)
are sent after the answers, from a thread of their own, while the writer flushes the next batch:
a committed row is due, so a message lost with the process (or to a queue that is down) leaves it
to the sweep, and an answer does not wait for the queue's write."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from smbc.db.session import Database
from smbc.realtime.inbox import (
    FAILED,
    UNAVAILABLE,
    Accepted,
    DatabaseUnavailable,
    Received,
    enqueue_accepted,
    record_received,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500  # deliveries per transaction: bounds the statement size and one flush's time


class GroupCommit:
    """One per process and database; `record` is called from the event loop."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[tuple[Received, asyncio.Future[Accepted]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # One writer: SQLite takes one writer at a time anyway, and PostgreSQL gets one commit per batch.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="inbox-writer")
        self._enqueuer = ThreadPoolExecutor(1, thread_name_prefix="inbox-enqueue")

    async def record(self, received: Received) -> Accepted:
        """Verify and record one delivery with whoever else is waiting; answers once it is durable."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Accepted] = loop.create_future()
        self._waiting.append((received, answered))
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:  # none running in this loop
            self._flusher = loop.create_task(self._flush_while_waiting())
        return await answered

    def wait_for_messages(self, timeout: float | None = None) -> None:
        """Block until the queue messages of every batch answered so far are sent (or given up)."""
        self._enqueuer.submit(lambda: None).result(timeout)  # one thread: it runs after them

    async def _flush_while_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                try:
                    outcomes = await loop.run_in_executor(
                        self._writer, record_received, self.db, [item for item, _ in batch]
                    )
                except DatabaseUnavailable:
                    outcomes = [UNAVAILABLE] * len(batch)
                except Exception:  # a bug: a clean 500 for this batch (the sender retries), the next goes on
                    log.exception("webhook deliveries not recorded")
                    outcomes = [FAILED] * len(batch)
                _answer(batch, outcomes)
                # In order, on one thread; enqueue_accepted never raises (the sweep covers a failure)
                self._enqueuer.submit(enqueue_accepted, outcomes)
        finally:
            if self._flusher is asyncio.current_task():
                self._flusher = None


def _answer(batch: list[tuple[Received, asyncio.Future[Accepted]]], outcomes: list[Accepted]) -> None:
    for (_, answered), outcome in zip(batch, outcomes, strict=True):
        if not answered.done():  # a request whose client went away is no longer waiting
            answered.set_result(outcome)
