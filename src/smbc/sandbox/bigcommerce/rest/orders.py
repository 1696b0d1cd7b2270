"""v2 orders: `/v2/orders` (filters, sorts, 204 when a page is empty), `/v2/orders/count`, one order and
its products, and `/v2/order_statuses`."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.listing import QueryError
from smbc.sandbox.bigcommerce.render import v2
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import FastJSON
from smbc.sandbox.bigcommerce.state import ORDER_STATUSES, Order

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("orders"))]

NOT_FOUND = "The requested resource was not found."
SORTS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "customer_id": lambda o: (o.customer_id, o.id),
    "date_created": lambda o: (o.date_created, o.id),
    "date_modified": lambda o: (o.date_modified, o.id),
    "status_id": lambda o: (o.status_id, o.id),
    "channel_id": lambda o: (o.channel_id, o.id),
    "external_id": lambda o: o.id,
}


def order_filter(q: dict[str, str]) -> Callable[[Order], bool]:
    def when(name: str) -> datetime | None:
        return listing.parse_datetime(q[name], name) if q.get(name) else None

    def number(name: str) -> Decimal | None:
        if not q.get(name):
            return None
        try:
            return Decimal(q[name])
        except InvalidOperation:
            raise QueryError(f"{name}: {q[name]!r} is not a number") from None

    min_id, max_id = (
        listing.parse_int(q.get("min_id"), "min_id"),
        listing.parse_int(q.get("max_id"), "max_id"),
    )
    customer_id = listing.parse_int(q.get("customer_id"), "customer_id")
    status_id = listing.parse_int(q.get("status_id"), "status_id")
    channel_id = listing.parse_int(q.get("channel_id"), "channel_id")
    min_total, max_total = number("min_total"), number("max_total")
    email = (q.get("email") or "").strip().lower() or None
    cart_id = q.get("cart_id")
    c_min, c_max = when("min_date_created"), when("max_date_created")
    m_min, m_max = when("min_date_modified"), when("max_date_modified")
    deleted = q.get("is_deleted", "false").lower() == "true"

    def wanted(o: Order) -> bool:
        return (
            o.is_deleted == deleted
            and (min_id is None or o.id >= min_id)
            and (max_id is None or o.id <= max_id)
            and (customer_id is None or o.customer_id == customer_id)
            and (status_id is None or o.status_id == status_id)
            and (channel_id is None or o.channel_id == channel_id)
            and (min_total is None or o.total >= min_total)
            and (max_total is None or o.total <= max_total)
            and (email is None or o.billing.get("email", "").lower() == email)
            and (cart_id is None or o.cart_id == cart_id)
            and listing.in_range(o.date_created, None, c_min, c_max)
            and listing.in_range(o.date_modified, None, m_min, m_max)
        )

    return wanted


@router.get("/stores/{store_hash}/v2/orders")
async def list_orders(call: Reader) -> Response:
    q, store = call.query, call.store
    page, limit = listing.page_and_limit(q)
    wanted = order_filter(q)
    include = listing.included(q)
    sort_field, descending = listing.sort_order(q, SORTS)
    with call.lock:
        if sort_field == "id" and not descending:
            # Orders are kept in id order: start at min_id and stop once the page is full.
            ids = store.cached(("order_ids",), lambda: list(store.orders))
            start = bisect.bisect_left(ids, listing.parse_int(q.get("min_id"), "min_id") or 0)
            candidates = (store.orders[i] for i in itertools.islice(ids, start, None))
            chunk = listing.first_matches(candidates, wanted, (page - 1) * limit, limit)
        else:
            rows = sorted(
                (o for o in store.orders.values() if wanted(o)),
                key=SORTS[sort_field],
                reverse=descending,
            )
            chunk = listing.offset_page(rows, page, limit)
        data = [v2.order_json(o, call.fake.api_base(store.hash), include) for o in chunk]
    if not data:
        return Response(status_code=204)  # BigCommerce answers an empty list with 204 and no body
    return FastJSON(data)


@router.get("/stores/{store_hash}/v2/orders/count")
async def count_orders(call: Reader) -> JSONResponse:
    with call.lock:
        counts = dict.fromkeys(ORDER_STATUSES, 0)
        for order in call.store.orders.values():
            if not order.is_deleted:
                counts[order.status_id] = counts.get(order.status_id, 0) + 1
    statuses = [
        {**v2.order_status_json(sid), "count": n, "sort_order": i}
        for i, (sid, n) in enumerate(counts.items())
    ]
    return JSONResponse({"count": sum(counts.values()), "statuses": statuses})


@router.get("/stores/{store_hash}/v2/orders/{order_id}")
async def get_order(call: Reader, order_id: int) -> JSONResponse:
    include = listing.included(call.query)
    with call.lock:
        order = found(call.store.orders, order_id, NOT_FOUND)
        return JSONResponse(v2.order_json(order, call.fake.api_base(call.store.hash), include))


@router.get("/stores/{store_hash}/v2/orders/{order_id}/products")
async def order_products(call: Reader, order_id: int) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    with call.lock:
        order = found(call.store.orders, order_id, NOT_FOUND)
        lines = listing.offset_page(order.lines, page, limit)
        return JSONResponse([v2.order_product_json(line, order) for line in lines])


@router.get("/stores/{store_hash}/v2/order_statuses")
async def order_statuses(call: Reader) -> JSONResponse:
    return JSONResponse([v2.order_status_json(sid) for sid in ORDER_STATUSES])


@router.get("/stores/{store_hash}/v2/order_statuses/{status_id}")
async def order_status(call: Reader, status_id: int) -> JSONResponse:
    found(ORDER_STATUSES, status_id, NOT_FOUND)
    return JSONResponse(v2.order_status_json(status_id))
