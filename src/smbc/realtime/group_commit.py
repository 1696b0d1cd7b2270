"""Group commit for the webhook receiver: deliveries arriving together share one transaction.

A request waits while the one writer thread flushes the batch before it, then goes out with
everyone who arrived meanwhile: one store read, one duplicate read, one INSERT and one commit for
the lot. Each request is answered only after the commit that holds its row, so a 200 still means
the delivery is durable. There is no timer: an idle receiver flushes a lone delivery at once, and
under load the batches grow by themselves. Queue messages (one drain per store of the batch) are
sent from a thread of their own while the writer flushes the next batch; a request is answered
once its message is sent (or, if the queue is down, left to the sweep)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial

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
                # Answered once the queue messages are sent too, from the other thread: the writer
                # is already flushing the next batch meanwhile.
                sent = loop.run_in_executor(self._enqueuer, enqueue_accepted, outcomes)
                sent.add_done_callback(partial(_answer, batch, outcomes))
        finally:
            if self._flusher is asyncio.current_task():
                self._flusher = None


def _answer(
    batch: list[tuple[Received, asyncio.Future[Accepted]]], outcomes: list[Accepted], _sent: object
) -> None:
    for (_, answered), outcome in zip(batch, outcomes, strict=True):
        if not answered.done():  # a request whose client went away is no longer waiting
            answered.set_result(outcome)
