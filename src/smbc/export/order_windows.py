"""The events export's orders read two pages at a time, still in id order ("id windows").

Why. With one `/v2/orders` page in flight, each page cost its round trip (about 87 ms at 50 ms of
latency) and its decoding: slower than the one read per 95 ms the export's share of the store's quota
allows, so latency, not the quota, set the pace. With two in flight the client's limiter sets it.

Why windows, not page numbers. The export's cursor is one id (everything at or below it is done),
so pages must come in ascending id order with no order of the range missed. Page numbers shift
when an order is deleted or archived during the export (a page's orders slide onto the one already
read, and one is never seen), so two pages cannot be asked for at once by number. Keyset reads
(`min_id` = the last id read + 1) need the previous answer before the next request. Reads bounded
by ids on both sides do not: a window `[first, last]` (`min_id`, `max_id`) holds exactly the range's
orders with those ids whatever happens elsewhere in the list, so two windows can be read at once and
handed on in window order. A window of at most a page's width of ids cannot hold more than a page;
a wider one (where ids have gaps: deleted, archived or incomplete orders) is read on by keyset
within its bounds when its page comes back full.

How wide. The range's ids are mostly consecutive, so a window is usually one page's width and one
read per page of orders, as many reads as keyset reading. Where the ids seen lately were sparser,
windows widen to hold about `FILL` of a page at that density.

Where the list ends. The first read, and any read whose end cannot be placed by ids, is a plain
keyset page with no `max_id` (a "probe"): it crosses any gap, and a short one ends the list (as
`V2Pages`). Nothing is asked for past a probe until it answers. With the count of the orders left
(`expected`, see `V2Pages`), the list ends when that many came, no window is started that the orders
still expected cannot need, and the last page's worth is a probe: as many reads as keyset reading.
A window coming back thin (a gap in the ids: deleted, archived or incomplete orders) is followed by a
probe, which crosses the gap in one read. Without a count, or once more orders came than it said, a
window and the probe after it are read together: the probe's short page ends the list, at most one
read more than keyset reading makes (when the list ends inside the window, the probe finds nothing).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from smbc.bigcommerce.answers import list_item_model
from smbc.bigcommerce.paging import V2ListRead
from smbc.core.answers import Declared

READS_AT_ONCE = 2
# A window is sized to hold this share of a page at the density seen: a little under a full page, so
# that few windows overflow into a second read.
FILL = 0.9
# The widest window, in pages: a stale density (a sparse stretch just before a dense one) costs at most
# this many keyset reads within one window, and a window never holds more orders than this many pages.
WIDEST_PAGES = 16
# How many recent reads' orders per id size the next window.
DENSITY_READS = 8
# A window holding less than this share of what its width promised at the density seen is "thin": a
# gap or the list's end, so the next read is a probe.
THIN = 0.5

Page = list[dict[str, Any]]


@dataclass(frozen=True)
class _Read:
    """One request: ids `first`..`last` (`last` None: a keyset page with no upper bound, a probe)."""

    first: int | None
    last: int | None
    # The rest of a window whose first page came back full (read on by keyset within its bounds).
    rest: bool = False
    # In the order reads were started (0: the first read, and a window's rest).
    number: int = 0

    def most(self, limit: int) -> int:
        """How many orders this read can bring: its ids, or a page for a probe."""
        if self.last is None or self.first is None:
            return limit
        return self.last - self.first + 1


@dataclass
class OrderWindows(V2ListRead):
    """`/v2/orders` pages in ascending id order, past `cursor`, read `reads_at_once` at a time.

    `params`: the list's filters (dates, include), the same for every read. `cursor`: the last id
    done. `expected`: how many orders the list holds past `cursor`, when a closed count said so.
    Pages may be shorter than `limit`. Closing the iterator early cancels the reads not started and
    waits for those under way; a read's error is raised at that read's turn."""

    reads_at_once: int = READS_AT_ONCE
    # Orders and ids of the latest reads that brought orders: the density the next window is sized by.
    _seen: deque[tuple[int, int]] = field(init=False, default_factory=lambda: deque(maxlen=DENSITY_READS))

    def __iter__(self) -> Iterator[Page]:
        item = list_item_model(self.path)
        if item is dict[str, Any]:
            raise ValueError(f"OrderWindows needs an item model with an id for {self.path}")
        answer = Declared(list[item])
        pool = ThreadPoolExecutor(self.reads_at_once, thread_name_prefix="order-windows")
        pending: deque[tuple[_Read, Future[Page]]] = deque()

        def submit(read: _Read, front: bool = False) -> None:
            future = pool.submit(self._read, read, answer)
            (pending.appendleft if front else pending.append)((read, future))

        launched = itertools.count(1)
        last_probe = 0  # the number of the latest probe launched

        got = 0
        # The first id no read covers yet (None until the first probe answers).
        frontier: int | None = None
        probe_next = False  # a thin window came: the next read is a probe
        try:
            submit(_Read(None if self.cursor is None else self.cursor + 1, None))
            while pending:
                read, future = pending.popleft()
                page = future.result()  # a failed read raises here, at its turn
                got += len(page)
                last_id = max((int(order["id"]) for order in page), default=None)
                if read.last is None:  # a probe
                    if last_id is None or len(page) < self.limit:
                        if page:
                            yield page
                        return  # a short page ends the list
                    self._seen.append((len(page), last_id - min(int(o["id"]) for o in page) + 1))
                    frontier = last_id + 1
                else:
                    assert read.first is not None
                    promised = read.most(self.limit) * self._density()
                    if last_id is not None and len(page) == self.limit and last_id < read.last:
                        # A full page of a wider window: the window's rest comes before any later one.
                        submit(_Read(last_id + 1, read.last, rest=True), front=True)
                        # The ids got denser: the next windows go by this page, not by the sparser ones.
                        self._seen.clear()
                        self._seen.append((len(page), last_id - read.first + 1))
                    elif not read.rest and len(page) < THIN * promised:
                        # A gap in the ids, or the list's end: a probe crosses it in one read, and the
                        # density past it is the probe's. Unless a probe went out after this window.
                        self._seen.clear()
                        probe_next = probe_next or read.number > last_probe
                    elif page:
                        self._seen.append((len(page), read.last - read.first + 1))
                if self.expected is not None and got == self.expected:
                    if page:
                        yield page
                    return
                if page:
                    yield page
                # The next reads go out once this page is taken: a consumer slower than the reads holds no
                # more pages than it needs (memory), a faster one finds the next two under way.
                while len(pending) < self.reads_at_once and frontier is not None:
                    if any(under_way.last is None for under_way, _ in pending):
                        break  # nothing is asked for past a probe until it answers
                    still_expected = self._still_expected(got, [under_way for under_way, _ in pending])
                    if still_expected is None:
                        # No count to go by: the last read under way is always a probe, which finds
                        # the list's end (or crosses a gap) with no read past it.
                        probe = probe_next or len(pending) + 1 == self.reads_at_once
                    elif still_expected <= 0:
                        break  # the reads under way can bring every order still expected
                    else:
                        probe = probe_next or still_expected <= self.limit
                    if probe:
                        last_probe = next(launched)
                        submit(_Read(frontier, None, number=last_probe))
                        probe_next = False
                        break
                    width = self._width()
                    submit(_Read(frontier, frontier + width - 1, number=next(launched)))
                    frontier += width
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, read: _Read, answer: Declared) -> Page:
        params = {**self.params, "limit": self.limit, "sort": "id:asc"}
        if read.first is not None:
            params["min_id"] = read.first
        if read.last is not None:
            params["max_id"] = read.last
        # Plain dicts as sent: a page is read by its item model without a model per item.
        return self.client.request("GET", self.path, params, answer=answer).data or []

    def _still_expected(self, got: int, under_way: list[_Read]) -> int | None:
        """The orders expected past the reads under way, at the most they can bring; None: no count,
        or more orders came than it said (the list is then read to its end)."""
        if self.expected is None or got > self.expected:
            return None
        return self.expected - got - sum(read.most(self.limit) for read in under_way)

    def _density(self) -> float:
        ids = sum(ids for _, ids in self._seen)
        return sum(orders for orders, _ in self._seen) / ids if ids else 1.0

    def _width(self) -> int:
        density = self._density()
        if density <= 0:
            return WIDEST_PAGES * self.limit
        return max(self.limit, min(int(self.limit * FILL / density), WIDEST_PAGES * self.limit))
