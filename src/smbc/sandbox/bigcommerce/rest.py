"""REST routes of the fake: `/stores/{hash}/v2/...` and `/stores/{hash}/v3/...`.

Each handler: authenticate (`X-Auth-Token`, 401) and check the scope (403), parse the query, read or
change state under the fake's lock, render with `render`. Writes fire the webhooks BigCommerce fires.
"""

from __future__ import annotations

import bisect
import itertools
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.actions import ActionError
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.listing import QueryError
from smbc.sandbox.bigcommerce.render import v2, v3
from smbc.sandbox.bigcommerce.state import (
    ORDER_STATUSES,
    Customer,
    Hook,
    Order,
    Script,
    StoreState,
    Subscriber,
    Token,
)

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

Json = dict[str, Any]

# Resource family -> (modify scope, read-only scope) (reference §1.8; each spec's securitySchemes).
SCOPES: dict[str, tuple[str, str]] = {
    "information": ("store_v2_information", "store_v2_information_read_only"),
    "channels": ("store_channel_settings", "store_channel_settings_read_only"),
    "sites": ("store_sites", "store_sites_read_only"),
    "customers": ("store_v2_customers", "store_v2_customers_read_only"),
    "orders": ("store_v2_orders", "store_v2_orders_read_only"),
    "transactions": ("store_v2_transactions", "store_v2_transactions_read_only"),
    "carts": ("store_cart", "store_cart_read_only"),
    "content": ("store_v2_content", "store_v2_content_read_only"),
    "checkout_content": ("store_content_checkout", "store_content_checkout_read_only"),
}
SUBSCRIBER_CONSENTS = frozenset({"marketing_newsletter", "abandoned_cart"})
SUBSCRIBER_SOURCES = frozenset({"storefront", "order", "custom"})
CHECKOUT_VISIBILITIES = frozenset({"checkout", "order_confirmation", "all_pages"})
MAX_SCRIPTS_PER_APP = 10
MAX_HOOKS_PER_SCOPE = 10
SCOPE_PATTERN = re.compile(r"^store/[A-Za-z0-9_/*{}]+$")


def _scope_ok(token: Token, families: tuple[str, ...], write: bool) -> bool:
    for family in families:
        modify, read_only = SCOPES[family]
        if modify in token.scopes or (not write and read_only in token.scopes):
            return True
    return False


def _json_body(raw: Any) -> Json:
    if not isinstance(raw, dict):
        raise ApiError(422, "The request body must be a JSON object")
    return raw


def _v3(data: Any, meta: Json | None = None) -> JSONResponse:
    return JSONResponse({"data": data, "meta": meta if meta is not None else {}})


def build_router(fake: FakeBigCommerce) -> APIRouter:
    router = APIRouter()

    def auth(
        request: Request, store_hash: str, *families: str, write: bool = False
    ) -> tuple[StoreState, Token]:
        store = fake.store(store_hash)
        value = request.headers.get("x-auth-token", "")
        token = store.tokens.get(value) if value else None
        if token is None:
            raise ApiError(
                401, "You are not authorized to access this resource (missing or invalid X-Auth-Token)"
            )
        if families and not _scope_ok(token, families, write):
            needed = " or ".join(
                SCOPES[f][0] if write else f"{SCOPES[f][1]}/{SCOPES[f][0]}" for f in families
            )
            raise ApiError(403, f"You don't have a required scope to access the endpoint (needs {needed})")
        return store, token

    async def body_of(request: Request) -> Json:
        try:
            return _json_body(await request.json())
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON") from None

    def params(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    # -- store information ----------------------------------------------------------------------------

    @router.get("/stores/{store_hash}/v2/store")
    async def get_store(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "information")
        with fake.lock:
            return JSONResponse(v2.store_json(store, fake.base_url, fake.account_uuid))

    @router.get("/stores/{store_hash}/v2/time")
    async def get_time(request: Request, store_hash: str) -> JSONResponse:
        auth(request, store_hash, "information")
        return JSONResponse({"time": int(fake.now().timestamp())})

    # -- channels and sites ----------------------------------------------------------------------------

    @router.get("/stores/{store_hash}/v3/channels")
    async def list_channels(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "channels")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        statuses = listing.parse_str_list(q.get("status:in"))
        types = listing.parse_str_list(q.get("type:in"))
        platforms = listing.parse_str_list(q.get("platform:in"))
        with fake.lock:
            rows = [
                c
                for c in store.channels.values()
                if (statuses is None or c.status in statuses)
                and (types is None or c.type in types)
                and (platforms is None or c.platform in platforms)
                and (q.get("available") != "true" or c.status in ("active", "prelaunch", "connected"))
            ]
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.channel_json(c) for c in chunk]
        return _v3(data, {"pagination": listing.pagination_meta(len(rows), page, limit, len(data))})

    @router.get("/stores/{store_hash}/v3/channels/{channel_id}")
    async def get_channel(request: Request, store_hash: str, channel_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "channels")
        with fake.lock:
            channel = store.channels.get(channel_id)
            if channel is None:
                raise ApiError(404, f"Channel {channel_id} not found")
            return _v3(v3.channel_json(channel))

    @router.get("/stores/{store_hash}/v3/channels/{channel_id}/site")
    async def get_channel_site(request: Request, store_hash: str, channel_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "channels", "sites")
        with fake.lock:
            site = store.site_for_channel(channel_id)
            if site is None:
                raise ApiError(404, f"Channel {channel_id} has no site")
            return _v3(v3.site_json(site, fake.storefront_url(store.hash, site.channel_id)))

    @router.get("/stores/{store_hash}/v3/sites")
    async def list_sites(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "sites")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        channel_ids = listing.parse_int_list(q.get("channel_id:in"), "channel_id:in")
        with fake.lock:
            rows = [s for s in store.sites.values() if channel_ids is None or s.channel_id in channel_ids]
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.site_json(s, fake.storefront_url(store.hash, s.channel_id)) for s in chunk]
        meta = {"pagination": {"offset": (page - 1) * limit, "limit": limit, "total_items": len(rows)}}
        return _v3(data, meta)

    @router.get("/stores/{store_hash}/v3/sites/{site_id}")
    async def get_site(request: Request, store_hash: str, site_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "sites")
        with fake.lock:
            site = store.sites.get(site_id)
            if site is None:
                raise ApiError(404, f"Site {site_id} not found")
            return _v3(v3.site_json(site, fake.storefront_url(store.hash, site.channel_id)))

    # -- customers -------------------------------------------------------------------------------------

    customer_sorts: dict[str, Callable[[Customer], list[Any]]] = {
        "id": lambda c: [c.id],
        "date_created": lambda c: [c.date_created.timestamp(), c.id],
        "date_modified": lambda c: [c.date_modified.timestamp(), c.id],
        "last_name": lambda c: [c.last_name.lower(), c.id],
    }

    @router.get("/stores/{store_hash}/v3/customers")
    async def list_customers(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "customers")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        ids = listing.parse_int_list(q.get("id:in"), "id:in")
        id_set = set(ids) if ids is not None else None
        emails = {e.lower() for e in listing.parse_str_list(q.get("email:in")) or []} or None
        companies = listing.parse_str_list(q.get("company:in"))
        names_like = [n.lower() for n in listing.parse_str_list(q.get("name:like")) or []]
        names_in = {n.lower() for n in listing.parse_str_list(q.get("name:in")) or []} or None
        created = listing.date_range(q, "date_created")
        modified = listing.date_range(q, "date_modified")
        include = set(listing.parse_str_list(q.get("include")) or [])
        sort_field, _, direction = (q.get("sort") or "id:asc").partition(":")
        if sort_field not in customer_sorts or direction not in ("asc", "desc", ""):
            raise QueryError(f"sort: {q.get('sort')!r} is not supported")
        key = customer_sorts[sort_field]
        descending = direction == "desc"
        after, before = q.get("after"), q.get("before")

        def wanted(c: Customer) -> bool:
            full = f"{c.first_name} {c.last_name}".lower()
            return (
                (id_set is None or c.id in id_set)
                and (emails is None or c.email.lower() in emails)
                and (companies is None or c.company in companies)
                and (names_in is None or full in names_in)
                and (not names_like or any(n in full for n in names_like))
                and listing.in_range(c.date_created, *created)
                and listing.in_range(c.date_modified, *modified)
            )

        def matching() -> tuple[list[Customer], list[list[Any]]]:
            rows = [c for c in store.customers.values() if wanted(c)]
            if sort_field != "id" or descending:
                rows.sort(key=key, reverse=descending)
            return rows, [key(c) for c in rows]

        filters = tuple(
            sorted((k, v) for k, v in q.items() if k not in ("page", "limit", "after", "before", "include"))
        )
        with fake.lock:
            rows, keys = store.cached(("customers", filters), matching)
            meta: Json = {}
            if after is not None or before is not None:
                chunk = listing.cursor_page(rows, key, descending, after, before, limit, keys)
                more_after = bool(chunk) and chunk[-1] is not rows[-1]
                has_before = bool(chunk) and chunk[0] is not rows[0]
                meta["cursor_pagination"] = listing.cursor_meta(chunk, key, limit, more_after, has_before)
            else:
                chunk = listing.offset_page(rows, page, limit)
                extra = {k: v for k, v in q.items() if k not in ("page", "limit")}
                meta["pagination"] = listing.pagination_meta(len(rows), page, limit, len(chunk), extra)
                if page == 1:
                    meta["cursor_pagination"] = listing.cursor_meta(
                        chunk, key, limit, len(rows) > len(chunk), False
                    )
            data = [v3.customer_json(c, include) for c in chunk]
        return _v3(data, meta)

    # -- subscribers -----------------------------------------------------------------------------------

    def subscriber_filter(q: dict[str, str]) -> Callable[[Subscriber], bool] | None:
        """None when the query has no filter at all (DELETE refuses that)."""
        ids = listing.parse_int_list(q.get("id:in"), "id:in")
        single = listing.parse_int(q.get("id"), "id")
        if single is not None:
            ids = [*(ids or []), single]
        email = q.get("email")
        first, last, source = q.get("first_name"), q.get("last_name"), q.get("source")
        order_id = listing.parse_int(q.get("order_id"), "order_id")
        created = listing.date_range(q, "date_created")
        modified = listing.date_range(q, "date_modified")
        if (
            ids is None
            and not any((email, first, last, source))
            and order_id is None
            and not any(created + modified)
        ):
            return None
        id_set = set(ids) if ids is not None else None

        def wanted(s: Subscriber) -> bool:
            return (
                (id_set is None or s.id in id_set)
                and (email is None or s.email.lower() == email.strip().lower())
                and (first is None or s.first_name == first)
                and (last is None or s.last_name == last)
                and (source is None or s.source == source)
                and (order_id is None or s.order_id == order_id)
                and listing.in_range(s.date_created, *created)
                and listing.in_range(s.date_modified, *modified)
            )

        return wanted

    def validate_subscriber(body: Json, existing: Subscriber | None, store: StoreState) -> Json:
        errors: dict[str, str] = {}
        out: Json = {}
        if "email" in body or existing is None:
            email = body.get("email")
            if not isinstance(email, str) or "@" not in email or len(email) > 255:
                errors["email"] = "email must be a valid email address"
            else:
                out["email"] = email.strip()
        for name in ("first_name", "last_name"):
            if name in body:
                if not isinstance(body[name], str) or len(body[name]) > 255:
                    errors[name] = f"{name} must be a string of at most 255 characters"
                else:
                    out[name] = body[name]
        if "source" in body:
            if body["source"] not in SUBSCRIBER_SOURCES:
                errors["source"] = f"source must be one of {sorted(SUBSCRIBER_SOURCES)}"
            else:
                out["source"] = body["source"]
        if "order_id" in body:
            if body["order_id"] is not None and not isinstance(body["order_id"], int):
                errors["order_id"] = "order_id must be an integer"
            else:
                out["order_id"] = body["order_id"]
        if "channel_id" in body:
            if not isinstance(body["channel_id"], int) or body["channel_id"] not in store.channels:
                errors["channel_id"] = "channel_id must be an existing channel"
            else:
                out["channel_id"] = body["channel_id"]
        if "consents" in body:
            consents = body["consents"]
            if not isinstance(consents, list) or not set(consents) <= SUBSCRIBER_CONSENTS:
                errors["consents"] = f"consents must be a list of {sorted(SUBSCRIBER_CONSENTS)}"
            else:
                out["consents"] = list(dict.fromkeys(consents))
        if errors:
            raise ApiError(422, "The subscriber is not valid", errors)
        if "email" in out:
            other = store.subscriber_by_email(out["email"])
            if other is not None and other is not existing:
                raise ApiError(409, f"A subscriber with email {out['email']} already exists")
        return out

    @router.get("/stores/{store_hash}/v3/customers/subscribers")
    async def list_subscribers(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "customers")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        wanted = subscriber_filter(q)
        with fake.lock:
            rows = [s for s in store.subscribers.values() if wanted is None or wanted(s)]
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.subscriber_json(s) for s in chunk]
        extra = {k: v for k, v in q.items() if k not in ("page", "limit")}
        return _v3(data, {"pagination": listing.pagination_meta(len(rows), page, limit, len(data), extra)})

    @router.post("/stores/{store_hash}/v3/customers/subscribers")
    async def create_subscriber(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "customers", write=True)
        body = await body_of(request)
        with fake.lock:
            fields = validate_subscriber(body, None, store)
            now = fake.now()
            subscriber = Subscriber(
                id=next(store.subscriber_ids),
                email=fields["email"],
                first_name=fields.get("first_name", ""),
                last_name=fields.get("last_name", ""),
                source=fields.get("source", "custom"),
                channel_id=fields.get("channel_id", 1),
                consents=fields.get("consents", []),
                date_created=now,
                date_modified=now,
                order_id=fields.get("order_id"),
            )
            store.subscribers[subscriber.id] = subscriber
            store.touch()
            fake.emit(store, "store/subscriber/created", {"type": "subscriber", "id": subscriber.id})
            return _v3(v3.subscriber_json(subscriber))

    @router.delete("/stores/{store_hash}/v3/customers/subscribers")
    async def delete_subscribers(request: Request, store_hash: str) -> Response:
        store, _ = auth(request, store_hash, "customers", write=True)
        wanted = subscriber_filter(params(request))
        if wanted is None:
            # Without a filter BigCommerce would delete every subscriber; the fake refuses instead.
            raise ApiError(422, "A filter is required to delete subscribers (e.g. email or id:in)")
        with fake.lock:
            doomed = [s.id for s in store.subscribers.values() if wanted(s)]
            for subscriber_id in doomed:
                del store.subscribers[subscriber_id]
                fake.emit(store, "store/subscriber/deleted", {"type": "subscriber", "id": subscriber_id})
            store.touch()
        return Response(status_code=204)

    def find_subscriber(store: StoreState, subscriber_id: int) -> Subscriber:
        subscriber = store.subscribers.get(subscriber_id)
        if subscriber is None:
            raise ApiError(404, f"Subscriber {subscriber_id} not found")
        return subscriber

    @router.get("/stores/{store_hash}/v3/customers/subscribers/{subscriber_id}")
    async def get_subscriber(request: Request, store_hash: str, subscriber_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "customers")
        with fake.lock:
            return _v3(v3.subscriber_json(find_subscriber(store, subscriber_id)))

    @router.put("/stores/{store_hash}/v3/customers/subscribers/{subscriber_id}")
    async def update_subscriber(request: Request, store_hash: str, subscriber_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "customers", write=True)
        body = await body_of(request)
        with fake.lock:
            subscriber = find_subscriber(store, subscriber_id)
            for name, value in validate_subscriber(body, subscriber, store).items():
                setattr(subscriber, name, value)
            subscriber.date_modified = fake.now()
            store.touch()
            fake.emit(store, "store/subscriber/updated", {"type": "subscriber", "id": subscriber.id})
            return _v3(v3.subscriber_json(subscriber))

    @router.delete("/stores/{store_hash}/v3/customers/subscribers/{subscriber_id}")
    async def delete_subscriber(request: Request, store_hash: str, subscriber_id: int) -> Response:
        store, _ = auth(request, store_hash, "customers", write=True)
        with fake.lock:
            find_subscriber(store, subscriber_id)
            del store.subscribers[subscriber_id]
            store.touch()
            fake.emit(store, "store/subscriber/deleted", {"type": "subscriber", "id": subscriber_id})
        return Response(status_code=204)

    # -- orders (v2) -----------------------------------------------------------------------------------

    order_sorts = {
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
    async def list_orders(request: Request, store_hash: str) -> Response:
        store, _ = auth(request, store_hash, "orders")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        wanted = order_filter(q)
        include = set(listing.parse_str_list(q.get("include")) or [])
        sort_field, _, direction = (q.get("sort") or "id:asc").partition(":")
        if sort_field not in order_sorts or direction not in ("asc", "desc", ""):
            raise QueryError(f"sort: {q.get('sort')!r} is not supported")
        with fake.lock:
            if sort_field == "id" and direction != "desc":
                ids = store.cached(("order_ids",), lambda: list(store.orders))
                start = bisect.bisect_left(ids, listing.parse_int(q.get("min_id"), "min_id") or 0)
                candidates = (store.orders[i] for i in itertools.islice(ids, start, None))
                chunk = listing.first_matches(candidates, wanted, (page - 1) * limit, limit)
            else:
                rows = sorted(
                    (o for o in store.orders.values() if wanted(o)),
                    key=order_sorts[sort_field],
                    reverse=direction == "desc",
                )
                chunk = listing.offset_page(rows, page, limit)
            data = [v2.order_json(o, fake.api_base(store.hash), include) for o in chunk]
        if not data:
            return Response(status_code=204)  # BigCommerce answers an empty list with 204 and no body
        return JSONResponse(data)

    @router.get("/stores/{store_hash}/v2/orders/count")
    async def count_orders(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders")
        with fake.lock:
            counts = {status_id: 0 for status_id in ORDER_STATUSES}
            for order in store.orders.values():
                if not order.is_deleted:
                    counts[order.status_id] = counts.get(order.status_id, 0) + 1
        statuses = [
            {**v2.order_status_json(sid), "count": n, "sort_order": i}
            for i, (sid, n) in enumerate(counts.items())
        ]
        return JSONResponse({"count": sum(counts.values()), "statuses": statuses})

    def find_order(store: StoreState, order_id: int) -> Order:
        order = store.orders.get(order_id)
        if order is None:
            raise ApiError(404, "The requested resource was not found.")
        return order

    @router.get("/stores/{store_hash}/v2/orders/{order_id}")
    async def get_order(request: Request, store_hash: str, order_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders")
        include = set(listing.parse_str_list(request.query_params.get("include")) or [])
        with fake.lock:
            return JSONResponse(
                v2.order_json(find_order(store, order_id), fake.api_base(store.hash), include)
            )

    @router.get("/stores/{store_hash}/v2/orders/{order_id}/products")
    async def order_products(request: Request, store_hash: str, order_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders")
        page, limit = listing.page_and_limit(params(request))
        with fake.lock:
            order = find_order(store, order_id)
            lines = listing.offset_page(order.lines, page, limit)
            return JSONResponse([v2.order_product_json(line, order) for line in lines])

    @router.get("/stores/{store_hash}/v2/order_statuses")
    async def order_statuses(request: Request, store_hash: str) -> JSONResponse:
        auth(request, store_hash, "orders")
        return JSONResponse([v2.order_status_json(sid) for sid in ORDER_STATUSES])

    @router.get("/stores/{store_hash}/v2/order_statuses/{status_id}")
    async def order_status(request: Request, store_hash: str, status_id: int) -> JSONResponse:
        auth(request, store_hash, "orders")
        if status_id not in ORDER_STATUSES:
            raise ApiError(404, "The requested resource was not found.")
        return JSONResponse(v2.order_status_json(status_id))

    # -- refunds (v3 payment actions) ------------------------------------------------------------------

    @router.get("/stores/{store_hash}/v3/orders/{order_id}/payment_actions/refunds")
    async def order_refunds(request: Request, store_hash: str, order_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders", "transactions")
        with fake.lock:
            if order_id not in store.orders:
                raise ApiError(404, f"Order {order_id} not found")
            data = [v3.refund_json(r) for r in store.refunds.values() if r.order_id == order_id]
        return _v3(data)

    @router.post("/stores/{store_hash}/v3/orders/{order_id}/payment_actions/refunds")
    async def create_refund(request: Request, store_hash: str, order_id: int) -> JSONResponse:
        """Refund what `payments` add up to (status 4 or 14, order/refund/created), as the merchant would."""
        auth(request, store_hash, "orders", "transactions", write=True)
        body = await body_of(request)
        items, payments = body.get("items"), body.get("payments")
        errors: dict[str, str] = {}
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            errors["items"] = "items must list what is refunded"
        amounts = (
            [p.get("amount") for p in payments or [] if isinstance(p, dict)]
            if isinstance(payments, list)
            else []
        )
        if not amounts or not all(isinstance(a, int | float) and a > 0 for a in amounts):
            errors["payments"] = "payments must list the amounts refunded per provider"
        if errors:
            raise ApiError(422, "The refund request is not valid", errors)
        try:
            refund = fake.admin(store_hash).refund(
                order_id, amount=Decimal(str(sum(amounts))), reason=body.get("reason", "")
            )
        except ActionError as exc:
            raise ApiError(422, str(exc)) from None
        return JSONResponse({"data": refund, "meta": {}}, status_code=201)

    @router.get("/stores/{store_hash}/v3/orders/payment_actions/refunds")
    async def all_refunds(request: Request, store_hash: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders", "transactions")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        order_ids = listing.parse_int_list(q.get("order_id:in"), "order_id:in")
        with fake.lock:
            rows = [r for r in store.refunds.values() if order_ids is None or r.order_id in order_ids]
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.refund_json(r) for r in chunk]
        return _v3(data, {"pagination": listing.pagination_meta(len(rows), page, limit, len(data))})

    @router.get("/stores/{store_hash}/v3/orders/payment_actions/refunds/{refund_id}")
    async def get_refund(request: Request, store_hash: str, refund_id: int) -> JSONResponse:
        store, _ = auth(request, store_hash, "orders", "transactions")
        with fake.lock:
            refund = store.refunds.get(refund_id)
            if refund is None:
                raise ApiError(404, f"Refund {refund_id} not found")
            return _v3(v3.refund_json(refund, single=True))

    # -- carts -----------------------------------------------------------------------------------------

    @router.get("/stores/{store_hash}/v3/carts/{cart_id}")
    async def get_cart(request: Request, store_hash: str, cart_id: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "carts")
        include = set(listing.parse_str_list(request.query_params.get("include")) or [])
        with fake.lock:
            cart = store.carts.get(cart_id)
            if cart is None:
                # Converted carts are deleted on BigCommerce too.
                raise ApiError(404, f"Cart {cart_id} not found")
            return _v3(v3.cart_json(cart, fake.storefront_url(store.hash, cart.channel_id), include))

    @router.get("/stores/{store_hash}/v3/abandoned-carts/{token}")
    async def abandoned_cart(request: Request, store_hash: str, token: str) -> JSONResponse:
        store, _ = auth(request, store_hash, "information")  # abandoned_carts.v3.yml's scope
        with fake.lock:
            cart_id = store.abandoned_carts.get(token)
        if cart_id is None:
            raise ApiError(404, "Abandoned cart not found")
        return _v3({"cart_id": cart_id})

    # -- scripts ---------------------------------------------------------------------------------------

    def validate_script(body: Json, existing: Script | None, store: StoreState, token: Token) -> Json:
        errors: dict[str, str] = {}
        merged: Json = {} if existing is None else v3.script_json(existing)
        merged.update(body)
        name = merged.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            errors["name"] = "name is required (1-255 characters)"
        enums = {
            "kind": ("src", "script_tag"),
            "load_method": ("default", "async", "defer"),
            "location": ("head", "footer"),
            "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
            "consent_category": ("essential", "functional", "analytics", "targeting", "unknown"),
        }
        for field_name, allowed in enums.items():
            if field_name in merged and merged[field_name] not in allowed:
                errors[field_name] = f"{field_name} must be one of {list(allowed)}"
        kind = merged.get("kind", "src")
        if kind == "src":
            src = merged.get("src")
            if not isinstance(src, str) or urlsplit(src).scheme not in ("http", "https"):
                errors["src"] = "src must be an absolute URL when kind is src"
        elif kind == "script_tag":
            html = merged.get("html")
            if not isinstance(html, str) or len(html) > 65536:
                errors["html"] = "html is required when kind is script_tag (at most 65,536 characters)"
            if merged.get("load_method", "default") != "default":
                errors["load_method"] = "load_method must be default for script_tag"
        channel_id = merged.get("channel_id", 1)
        if not isinstance(channel_id, int) or channel_id not in store.channels:
            errors["channel_id"] = f"channel_id {channel_id!r} is not a channel of this store"
        hashes = merged.get("integrity_hashes") or []
        if not isinstance(hashes, list) or len(hashes) > 5:
            errors["integrity_hashes"] = "integrity_hashes takes at most 5 hashes"
        for flag in ("enabled", "auto_uninstall"):
            if flag in merged and not isinstance(merged[flag], bool):
                errors[flag] = f"{flag} must be a boolean"
        if errors:
            raise ApiError(422, "The script is not valid", errors)
        if merged.get("visibility") in CHECKOUT_VISIBILITIES and not _scope_ok(
            token, ("checkout_content",), True
        ):
            raise ApiError(403, "Scripts on checkout pages need the store_content_checkout scope")
        allowed_fields = {
            "name",
            "description",
            "html",
            "src",
            "auto_uninstall",
            "load_method",
            "location",
            "visibility",
            "kind",
            "consent_category",
            "enabled",
            "channel_id",
            "integrity_hashes",
        }
        return {k: v for k, v in body.items() if k in allowed_fields}

    def find_script(store: StoreState, token: Token, script_uuid: str) -> Script:
        script = store.scripts.get(script_uuid)
        # Only the API account that created a script can see it.
        if script is None or script.client_id != token.client_id:
            raise ApiError(404, f"Script {script_uuid} not found")
        return script

    @router.post("/stores/{store_hash}/v3/content/scripts")
    async def create_script(request: Request, store_hash: str) -> JSONResponse:
        store, token = auth(request, store_hash, "content", write=True)
        body = await body_of(request)
        with fake.lock:
            fields = validate_script(body, None, store, token)
            mine = sum(1 for s in store.scripts.values() if s.client_id == token.client_id)
            if mine >= MAX_SCRIPTS_PER_APP:
                # The cap is documented; the exact status/message of the refusal is UNCONFIRMED.
                raise ApiError(422, f"An app can create at most {MAX_SCRIPTS_PER_APP} scripts per store")
            now = fake.now()
            script = Script(
                uuid=str(uuid.uuid4()),
                client_id=token.client_id,
                name=fields.pop("name"),
                date_created=now,
                date_modified=now,
            )
            for name, value in fields.items():
                setattr(script, name, list(value) if name == "integrity_hashes" else value)
            store.scripts[script.uuid] = script
            store.touch()
            return _v3(v3.script_json(script))

    @router.get("/stores/{store_hash}/v3/content/scripts")
    async def list_scripts(request: Request, store_hash: str) -> JSONResponse:
        store, token = auth(request, store_hash, "content")
        q = params(request)
        page, limit = listing.page_and_limit(q)
        channels = listing.parse_int_list(q.get("channel_id:in"), "channel_id:in")
        sort = q.get("sort", "")
        if sort and sort not in ("name", "description", "date_created", "date_modified"):
            raise QueryError(f"sort: {sort!r} is not supported")
        with fake.lock:
            rows = [
                s
                for s in store.scripts.values()
                if s.client_id == token.client_id and (channels is None or s.channel_id in channels)
            ]
            if sort:
                rows.sort(key=lambda s: getattr(s, sort), reverse=q.get("direction") == "desc")
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.script_json(s) for s in chunk]
        return _v3(data, {"pagination": listing.pagination_meta(len(rows), page, limit, len(data))})

    @router.get("/stores/{store_hash}/v3/content/scripts/{script_uuid}")
    async def get_script(request: Request, store_hash: str, script_uuid: str) -> JSONResponse:
        store, token = auth(request, store_hash, "content")
        with fake.lock:
            return _v3(v3.script_json(find_script(store, token, script_uuid)))

    @router.put("/stores/{store_hash}/v3/content/scripts/{script_uuid}")
    async def update_script(request: Request, store_hash: str, script_uuid: str) -> JSONResponse:
        store, token = auth(request, store_hash, "content", write=True)
        body = await body_of(request)
        with fake.lock:
            script = find_script(store, token, script_uuid)
            for name, value in validate_script(body, script, store, token).items():
                setattr(script, name, list(value) if name == "integrity_hashes" else value)
            script.date_modified = fake.now()
            store.touch()
            return _v3(v3.script_json(script))

    @router.delete("/stores/{store_hash}/v3/content/scripts/{script_uuid}")
    async def delete_script(request: Request, store_hash: str, script_uuid: str) -> Response:
        store, token = auth(request, store_hash, "content", write=True)
        with fake.lock:
            find_script(store, token, script_uuid)
            del store.scripts[script_uuid]
            store.touch()
        return Response(status_code=204)

    # -- webhooks --------------------------------------------------------------------------------------

    def validate_hook(body: Json, existing: Hook | None, store: StoreState, token: Token) -> Json:
        errors: dict[str, str] = {}
        out: Json = {}
        if "scope" in body or existing is None:
            scope = body.get("scope")
            if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope):
                errors["scope"] = "scope is required and must look like store/customer/created"
            else:
                out["scope"] = scope
        if "destination" in body or existing is None:
            destination = body.get("destination")
            parts = urlsplit(destination) if isinstance(destination, str) else None
            # BigCommerce accepts only https on port 443; the fake also accepts plain http to localhost and
            # to the app's own URL, so tests and the demo receive deliveries without TLS.
            local = (
                parts is not None
                and parts.hostname in ("127.0.0.1", "localhost")
                and parts.scheme in ("http", "https")
            )
            secure = parts is not None and parts.scheme == "https" and parts.port in (None, 443)
            local = local or (isinstance(destination, str) and destination.startswith(f"{fake.app_url}/"))
            if not (local or secure):
                errors["destination"] = "destination must be an https URL on port 443"
            else:
                out["destination"] = destination
        if "headers" in body:
            headers = body["headers"]
            if headers is not None and not (
                isinstance(headers, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
            ):
                errors["headers"] = "headers must be an object of strings"
            else:
                out["headers"] = dict(headers) if headers is not None else None
        if "is_active" in body:
            if not isinstance(body["is_active"], bool):
                errors["is_active"] = "is_active must be a boolean"
            else:
                out["is_active"] = body["is_active"]
        if errors:
            raise ApiError(422, "The webhook is not valid", errors)
        scope = out.get("scope", existing.scope if existing else "")
        destination = out.get("destination", existing.destination if existing else "")
        same_scope = [
            h
            for h in store.hooks.values()
            if h.client_id == token.client_id and h.scope == scope and h is not existing
        ]
        if any(h.destination == destination for h in same_scope):
            raise ApiError(422, "A webhook with this scope and destination already exists")
        if len(same_scope) >= MAX_HOOKS_PER_SCOPE:
            raise ApiError(422, f"At most {MAX_HOOKS_PER_SCOPE} webhooks per scope")
        return out

    def find_hook(store: StoreState, token: Token, hook_id: int) -> Hook:
        hook = store.hooks.get(hook_id)
        if hook is None or hook.client_id != token.client_id:
            raise ApiError(404, f"Webhook {hook_id} not found")
        return hook

    @router.post("/stores/{store_hash}/v3/hooks")
    async def create_hook(request: Request, store_hash: str) -> JSONResponse:
        store, token = auth(request, store_hash)
        body = await body_of(request)
        with fake.lock:
            fields = validate_hook(body, None, store, token)
            now = int(fake.now().timestamp())
            hook = Hook(
                id=next(store.hook_ids),
                client_id=token.client_id,
                scope=fields["scope"],
                destination=fields["destination"],
                headers=fields.get("headers"),
                is_active=fields.get("is_active", True),
                created_at=now,
                updated_at=now,
            )
            store.hooks[hook.id] = hook
            store.touch()
            return _v3(v3.hook_json(hook, store.hash))

    @router.get("/stores/{store_hash}/v3/hooks")
    async def list_hooks(request: Request, store_hash: str) -> JSONResponse:
        store, token = auth(request, store_hash)
        q = params(request)
        page, limit = listing.page_and_limit(q)
        active = q.get("is_active")
        with fake.lock:
            rows = [
                h
                for h in store.hooks.values()
                if h.client_id == token.client_id
                and (active is None or h.is_active == (active.lower() == "true"))
                and (q.get("scope") is None or h.scope == q["scope"])
                and (q.get("destination") is None or h.destination == q["destination"])
            ]
            chunk = listing.offset_page(rows, page, limit)
            data = [v3.hook_json(h, store.hash) for h in chunk]
        return _v3(data, {"pagination": listing.pagination_meta(len(rows), page, limit, len(data))})

    @router.get("/stores/{store_hash}/v3/hooks/admin")
    async def hooks_admin(request: Request, store_hash: str) -> JSONResponse:
        store, token = auth(request, store_hash)
        active = request.query_params.get("is_active")
        with fake.lock:
            hooks = [
                v3.hook_json(h, store.hash, with_status=True)
                for h in store.hooks.values()
                if h.client_id == token.client_id
                and (active is None or h.is_active == (active.lower() == "true"))
            ]
            data = {
                "emails": list(store.hook_admin_emails),
                "hooks_list": hooks,
                "blocked_domains": fake.webhooks.blocked_domains(token.client_id),
            }
        return _v3(data)

    @router.put("/stores/{store_hash}/v3/hooks/admin")
    async def hooks_admin_emails(request: Request, store_hash: str) -> Response:
        store, _ = auth(request, store_hash)
        body = await body_of(request)
        emails = body.get("emails")
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise ApiError(422, "emails must be a list of email addresses")
        with fake.lock:
            store.hook_admin_emails = list(emails)
        return Response(status_code=204)

    @router.get("/stores/{store_hash}/v3/hooks/{hook_id}")
    async def get_hook(request: Request, store_hash: str, hook_id: int) -> JSONResponse:
        store, token = auth(request, store_hash)
        with fake.lock:
            return _v3(v3.hook_json(find_hook(store, token, hook_id), store.hash))

    @router.put("/stores/{store_hash}/v3/hooks/{hook_id}")
    async def update_hook(request: Request, store_hash: str, hook_id: int) -> JSONResponse:
        store, token = auth(request, store_hash)
        body = await body_of(request)
        with fake.lock:
            hook = find_hook(store, token, hook_id)
            for name, value in validate_hook(body, hook, store, token).items():
                setattr(hook, name, value)
            if hook.is_active:
                hook.deactivated = False
            hook.updated_at = int(fake.now().timestamp())
            store.touch()
            return _v3(v3.hook_json(hook, store.hash))

    @router.delete("/stores/{store_hash}/v3/hooks/{hook_id}")
    async def delete_hook(request: Request, store_hash: str, hook_id: int) -> JSONResponse:
        store, token = auth(request, store_hash)
        with fake.lock:
            hook = find_hook(store, token, hook_id)
            del store.hooks[hook_id]
            store.touch()
            return _v3(v3.hook_json(hook, store.hash))

    return router
