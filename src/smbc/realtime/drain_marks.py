"""Which stores have a drain coming: the queue-wide marks of queued drains, and this process's drains
that will look for their store's rows once more after their batch."""

from __future__ import annotations

import logging
import threading

from smbc.core.job_batches import QueuedMarks

log = logging.getLogger(__name__)

# A drain marked queued (`QUEUED_DRAINS`) is not sent again until it takes its last look. A drain lost
# (Redis lost, a worker killed before the task or during its batch) is recovered twice over: its mark
# lapses after DRAIN_MARK_SECONDS, so the next delivery sends one, and the sweep finds rows left due.
DRAIN_MARK_SECONDS = 30.0
QUEUED_DRAINS = QueuedMarks("drain-queued", DRAIN_MARK_SECONDS)


def take_drain_mark(store_id: int) -> bool:
    """Clear the store's mark: True when a delivery (or a reconciliation's row) found it set since the
    drain began, so sent no message and waits for the drain's last look. True too when the queue's
    Redis cannot say: the look is cheaper than a stranded row."""
    try:
        return QUEUED_DRAINS.take(store_id)
    except Exception:
        log.warning("could not clear the drain mark of store %s", store_id, exc_info=True)
        return True


def forget_drain_arrivals(store_id: int) -> None:
    """The drain is about to claim: what arrived so far is in its claim, not for its last look."""
    try:
        QUEUED_DRAINS.forget_arrivals(store_id)
    except Exception:  # a note left costs one look more
        log.debug("could not forget the arrivals of store %s", store_id, exc_info=True)


def clear_drain_mark(store_id: int) -> None:
    try:
        QUEUED_DRAINS.clear([store_id])
    except Exception:  # the mark lapses by itself (DRAIN_MARK_SECONDS); the rows are drained anyway
        log.warning("could not clear the drain mark of store %s", store_id, exc_info=True)


class DrainsBeforeLastLook:
    """Stores with a drain in this process that has yet to take its last look (its claim after its
    batch): a drain of such a store that starts now has nothing to do that the last look will not
    do, since every row its message was sent for is already recorded; the counted drain then looks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[int, bool] = {}  # at most one drain a store is counted in: was one skipped?

    def enter(self, store_id: int) -> bool:
        """Count a drain of the store in; False (not counted) when one already counted will look."""
        with self._lock:
            if store_id in self._stores:
                self._stores[store_id] = True
                return False
            self._stores[store_id] = False
            return True

    def leave(self, store_id: int) -> bool:
        """The drain takes its last look now (or takes none: its store's next drain is queued). True
        when a drain of the store returned at once meanwhile: the last look is that drain's claim."""
        with self._lock:
            return self._stores.pop(store_id, False)


DRAINS_BEFORE_LAST_LOOK = DrainsBeforeLastLook()
