"""Reading the next page while this one is mapped and sent: a long job's BigCommerce reads (an
export's, a catalog sync's) then overlap its SALESmanago sends and database commits, so the store's
quota sets its pace, not the sum of the round trips. One reader thread per run, one page ahead
(memory stays flat)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()
POLL_S = 0.1  # how often a reader blocked on a full queue looks whether it should stop


class Idle:
    """What `ReadAhead.idling` yields when no item came in that time (the reader is waiting
    for its source): the consumer may do other work meanwhile, then iterate on."""


IDLE = Idle()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate `source` on a thread, at most `depth` items ahead of the consumer.

    The source's exception is raised in the consumer, at the item it would have produced. Leaving
    the loop early (a batch failed, the export was cancelled or its time slice ended) stops the
    reader after the item it is reading; that item is dropped (a read, never a send)."""

    def __init__(self, source: Iterable[T], depth: int = 1) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(source,), name="read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[T]:
        try:
            while (item := self._take(None)) is not _END:
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def idling(self, idle_s: float) -> Iterator[T | Idle]:
        """The items, and `IDLE` each time none came in `idle_s` seconds."""
        try:
            while (item := self._take(idle_s)) is not _END:
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def _take(self, timeout: float | None) -> object:
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:  # only with a timeout
            return IDLE
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
