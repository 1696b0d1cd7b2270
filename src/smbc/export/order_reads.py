"""What the events export reads of BigCommerce: the count of the range's orders, their pages (`/v2/orders`
in id order, two reads at a time by id windows: `order_windows`, line items included) and the
export's refunds (listed once)."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from smbc.core.clock import utcnow
from smbc.export.job import Job, locked_row
from smbc.export.order_windows import OrderWindows

# The refunds an export listed, kept in this process for its next time slice (an export of 100,000
# orders runs several 50 s slices, and listing its 5,000 refunds again cost 20 reads a slice); another
# process lists them again. At most this many exports' refunds are kept.
REFUNDS_KEPT = 2
_kept: OrderedDict[str, dict[int, list[dict[str, Any]]]] = OrderedDict()
_kept_lock = threading.Lock()

# How long ago a range must have ended for its count to hold every order it will ever have (our clock
# against BigCommerce's).
CLOCK_SKEW = timedelta(minutes=5)


def orders_left(job: Job) -> int | None:
    """The orders of the range past the cursor, when the count can say so (see `V2Pages.expected`):
    the range had ended when the count was read, so no order created since is in it, and the count
    less the orders done is what the list still holds. None: the list is read to its end."""
    counting = not job.cursor.get("counted")
    count = None
    if counting:
        params = {
            "min_date_created": job.from_utc.isoformat(),
            "max_date_created": job.to_utc.isoformat(),
        }
        # `/v2/orders/count` takes the list's filters; the total is also the progress bar's estimate,
        # set to the real count when the export ends.
        count = job.bc.order_count(**params)
    with job.db.session() as session:
        row = locked_row(session, job)
        if counting:
            if count is not None:
                row.total = count
            job.cursor["counted"] = True
            job.cursor["count_closed"] = job.to_utc < utcnow() - CLOCK_SKEW
        total, done = row.total, row.done
    if not job.cursor.get("count_closed") or total is None:
        return None
    return max(total - done, 0)


def order_pages(job: Job, left: int | None) -> Iterator[list[dict[str, Any]]]:
    """The range's orders past the cursor in ascending id order, two reads in flight (`OrderWindows`),
    each order holding only the fields the mapping reads (`Order`'s: as sent it has ten times as many).
    `left`: the orders still to come when the count can say so (`orders_left`)."""
    params = {
        **job.bc.ORDER_INCLUDE,
        "min_date_created": job.from_utc.isoformat(),
        "max_date_created": job.to_utc.isoformat(),
    }
    after = job.cursor.get("after_id")
    yield from OrderWindows(job.bc, "/v2/orders", params, limit=job.page_size, cursor=after, expected=left)


def refunds_of(job: Job, orders: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The refunds of a page's refunded orders, from the export's list of refunds (`_read_refunds`),
    read by this run or kept from an earlier time slice of the export in this process."""
    refunded = [int(o["id"]) for o in orders if _money(o.get("refunded_amount")) > 0]
    if not refunded:
        return {}
    if job.refunds is None:
        job.refunds = _kept_refunds(job)
    if job.refunds is None:
        job.refunds = _read_refunds(job)
        # A key of this list in the saved cursor: a slice finds it only by the cursor of this export.
        key = job.cursor["refunds_kept"] = secrets.token_hex(8)
        with _kept_lock:
            _kept[key] = job.refunds
            while len(_kept) > REFUNDS_KEPT:
                _kept.popitem(last=False)
    # Not taken out: a slice may end after planning a page it did not send, and the next plans it again.
    return {order_id: job.refunds[order_id] for order_id in refunded if order_id in job.refunds}


def _kept_refunds(job: Job) -> dict[int, list[dict[str, Any]]] | None:
    """The refunds an earlier time slice of this export listed in this process, without those of
    the orders exported since."""
    key = job.cursor.get("refunds_kept")
    after = int(job.cursor.get("after_id") or 0)
    with _kept_lock:
        kept = _kept.get(key) if key else None
        if kept is None:
            return None
        _kept.move_to_end(key)
        _kept[key] = kept = {order_id: r for order_id, r in kept.items() if order_id > after}
        return kept


def forget_refunds(job: Job) -> None:
    """The export is over: its refunds are not kept for a next slice."""
    with _kept_lock:
        _kept.pop(job.cursor.get("refunds_kept", ""), None)


def _read_refunds(job: Job) -> dict[int, list[dict[str, Any]]]:
    """Every refund created since the range's start, by order, read once (250 a page) when the
    first refunded order comes: asking for each page's refunded orders cost one more read per page
    of orders. A refund cannot be older than its order, so none of the range's is missed; those of
    orders already exported (before the cursor) are dropped, those of later orders never asked for.
    A refund made after this read is sent by real time (its webhook), as during any export."""
    after = int(job.cursor.get("after_id") or 0)
    refunds: dict[int, list[dict[str, Any]]] = {}
    for refund in job.bc.refunds(created_since=job.from_utc):
        order_id = int(refund.get("order_id") or 0)
        if order_id > after:
            refunds.setdefault(order_id, []).append(refund)
    return refunds


def _money(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0
