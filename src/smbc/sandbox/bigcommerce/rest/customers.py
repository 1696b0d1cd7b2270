"""`GET /v3/customers`: filters, sorts, and both offset (`page`) and cursor (`after`/`before`) paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized
from smbc.sandbox.bigcommerce.rest.envelopes import pagination, v3_answer
from smbc.sandbox.bigcommerce.state import Customer, Json

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("customers"))]

# Sort field -> key; every key ends with the id, so cursors are unique.
SORTS: dict[str, Callable[[Customer], list[Any]]] = {
    "id": lambda c: [c.id],
    "date_created": lambda c: [c.date_created.timestamp(), c.id],
    "date_modified": lambda c: [c.date_modified.timestamp(), c.id],
    "last_name": lambda c: [c.last_name.lower(), c.id],
}
PAGING_PARAMETERS = ("page", "limit", "after", "before", "include")


def customer_filter(q: dict[str, str]) -> Callable[[Customer], bool]:
    ids = listing.id_set(q, "id:in")
    emails = {e.lower() for e in listing.parse_str_list(q.get("email:in")) or []} or None
    companies = listing.parse_str_list(q.get("company:in"))
    names_like = [n.lower() for n in listing.parse_str_list(q.get("name:like")) or []]
    names_in = {n.lower() for n in listing.parse_str_list(q.get("name:in")) or []} or None
    created = listing.date_range(q, "date_created")
    modified = listing.date_range(q, "date_modified")

    def wanted(c: Customer) -> bool:
        full = f"{c.first_name} {c.last_name}".lower()
        return (
            (ids is None or c.id in ids)
            and (emails is None or c.email.lower() in emails)
            and (companies is None or c.company in companies)
            and (names_in is None or full in names_in)
            and (not names_like or any(n in full for n in names_like))
            and listing.in_range(c.date_created, *created)
            and listing.in_range(c.date_modified, *modified)
        )

    return wanted


@router.get("/stores/{store_hash}/v3/customers")
async def list_customers(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    wanted = customer_filter(q)
    include = listing.included(q)
    sort_field, descending = listing.sort_order(q, SORTS)
    key = SORTS[sort_field]
    after, before = q.get("after"), q.get("before")

    def matching() -> tuple[list[Customer], list[list[Any]]]:
        rows = [c for c in call.store.customers.values() if wanted(c)]
        if sort_field != "id" or descending:
            rows.sort(key=key, reverse=descending)
        return rows, [key(c) for c in rows]

    with call.lock:
        rows, keys = call.store.cached(("customers", listing.filter_key(q, PAGING_PARAMETERS)), matching)
        meta: Json = {}
        if after is not None or before is not None:
            chunk = listing.cursor_page(rows, key, descending, after, before, limit, keys)
            more_after = bool(chunk) and chunk[-1] is not rows[-1]
            has_before = bool(chunk) and chunk[0] is not rows[0]
            meta["cursor_pagination"] = listing.cursor_meta(chunk, key, limit, more_after, has_before)
        else:
            chunk = listing.offset_page(rows, page, limit)
            meta["pagination"] = pagination(len(rows), page, limit, len(chunk), q)
            if page == 1:
                meta["cursor_pagination"] = listing.cursor_meta(
                    chunk, key, limit, len(rows) > len(chunk), False
                )
        data = [v3.customer_json(c, include) for c in chunk]
    return v3_answer(data, meta)
