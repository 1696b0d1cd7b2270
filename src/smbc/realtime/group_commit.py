"""Group commit for the webhook receiver: deliveries arriving together share one transaction.

A request waits while the one writer thread flushes the batch before it, then goes out with
everyone who arrived meanwhile: one store read and one INSERT (skipping what is already there) for
the lot, on one connection kept while batches follow each other. The writer takes the next batch
itself as soon as a commit is done, so a busy event loop never leaves it idle. Each request is
answered as soon as the commit that holds its row is done, so a 200 still means the delivery is
durable. There is no timer: an idle receiver flushes a lone
delivery at once, and under load the batches grow by themselves. Queue messages (one drain per
store of the batch) are sent after the answers, from a thread of their own, while the writer
flushes the next batch: a committed row is due, so a message lost with the process (or to a queue
that is down) leaves it to the sweep, and an answer does not wait for the queue's write."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from smbc.db.session import Database
from smbc.realtime.inbox import (
    FAILED,
    UNAVAILABLE,
    Accepted,
    DatabaseUnavailable,
    InboxWriter,
    Received,
    enqueue_accepted,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500  # deliveries per transaction: bounds the statement size and one flush's time


class GroupCommit:
    """One per process and database; `record` is called from an event loop (any: each request is
    answered on its own loop)."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[tuple[Received, asyncio.Future[Accepted]]] = []
        self._lock = threading.Lock()  # guards _waiting and _flushing (the loop's thread and the writer)
        self._flushing = False
        # One writer: SQLite takes one writer at a time anyway, and PostgreSQL gets one commit per batch.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="inbox-writer")
        self._enqueuer = ThreadPoolExecutor(1, thread_name_prefix="inbox-enqueue")

    async def record(self, received: Received) -> Accepted:
        """Verify and record one delivery with whoever else is waiting; answers once it is durable."""
        answered: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append((received, answered))
            start, self._flushing = not self._flushing, True
        if start:
            self._writer.submit(self._flush_while_waiting)
        return await answered

    def wait_for_messages(self, timeout: float | None = None) -> None:
        """Block until the queue messages of every batch answered so far are sent (or given up)."""
        self._enqueuer.submit(lambda: None).result(timeout)  # one thread: it runs after them

    def _flush_while_waiting(self) -> None:
        """On the writer thread, batch after batch until nobody waits: the next flush starts as soon as
        the last one is committed, without waiting for the busy event loop to ask for it. The batches
        share one database connection, given back when nobody waits."""
        writer = InboxWriter(self.db)
        try:
            while batch := self._next_batch():
                outcomes = self._flush(writer, batch)
                # Handed over before the answers (so wait_for_messages covers every batch answered), sent
                # in order on one thread; enqueue_accepted never raises (the sweep covers a failure)
                self._enqueuer.submit(enqueue_accepted, outcomes)
                _answer(batch, outcomes)
        except BaseException:  # a bug here: the next delivery starts a flush again instead of waiting
            with self._lock:
                self._flushing = False
            raise
        finally:
            writer.release()

    def _next_batch(self) -> list[tuple[Received, asyncio.Future[Accepted]]]:
        with self._lock:
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
