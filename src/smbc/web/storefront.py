"""`POST /storefront/cart-link`: the storefront script links a cart to the visitor's `smclient`.

Public (called from shoppers' browsers), so it trusts nothing: a per-client rate limit first, then
the JSON (at most MAX_BODY_BYTES, nested at most a few levels), the store (installed only), the
`Origin` (one of that store's storefronts; CORS answers only those) and the ids. A cart keeps its
first link (another `smclient` is a 409). A refused request gets a 4xx with a JSON message and
stores nothing.

The rate limit's counters are shared by every web process (database, or Redis when the queue is
Redis); behind a proxy run uvicorn with --forwarded-allow-ips so the client address is the shopper's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from smbc.core.json_bodies import InvalidJSON, parse_json
from smbc.db.session import Database
from smbc.engine.rate_limit import Budget, RateLimiter, shared_counters
from smbc.realtime.cart_links import (
    STORE_HASH,
    CartLinkError,
    CartLinkRequest,
    any_installed_store_serves,
    check_channel,
    find_installed_store,
    link_cart,
    parse_cart_link,
    storefront_origins,
)
from smbc.realtime.inbox import recheck_cart
from smbc.web.request_bodies import read_limited

router = APIRouter()

CART_LINK_LIMIT = 20  # requests per client (address + store) per window; a shopper needs a few
CART_LINK_WINDOW = 60  # seconds
CART_LINK_BUDGET = Budget("cart-link", CART_LINK_LIMIT, CART_LINK_WINDOW)
MAX_BODY_BYTES = 2048
_CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if getattr(state, "cart_link_limiter", None) is None:
        counters = shared_counters(state.settings, state.runtime.db)
        state.cart_link_limiter = RateLimiter(CART_LINK_BUDGET, counters)
    return state.cart_link_limiter


def _refuse(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _allowed_origin(request: Request, store_hash: str | None) -> str | None:
    """The request's Origin when it is a storefront origin of that installed store (of any installed
    store when the address does not name one: the body, which names it, is checked on the POST).
    Reads the stores' sites and info columns only (no secret is decrypted for a preflight)."""
    origin = request.headers.get("origin", "").strip().lower()
    if not origin or (store_hash is not None and not STORE_HASH.fullmatch(store_hash)):
        return None
    with request.app.state.runtime.db.session() as session:
        if store_hash is None:
            return origin if any_installed_store_serves(session, origin) else None
        store = find_installed_store(session, store_hash)
        if store is None or origin not in storefront_origins(store):
            return None
    return origin


@router.options("/storefront/cart-link")
def cart_link_preflight(request: Request) -> Response:
    # The script names the store in the query string, so a preflight (which has no body) can be checked.
    client = request.client.host if request.client else "unknown"
    claimed_store = request.query_params.get("store")
    if not _limiter(request).allow((client, (claimed_store or "")[:64]))[0]:
        return Response(status_code=429)
    origin = _allowed_origin(request, claimed_store)
    if origin is None:
        return Response(status_code=403)
    return Response(
        status_code=204, headers={"Access-Control-Allow-Origin": origin, "Vary": "Origin", **_CORS_HEADERS}
    )


@router.post("/storefront/cart-link")
async def cart_link(request: Request) -> Response:
    client = request.client.host if request.client else "unknown"
    claimed_store = request.query_params.get("store", "")[:64]
    allowed, retry_after = await run_in_threadpool(_limiter(request).allow, (client, claimed_store))
    if not allowed:
        return _refuse(429, "Too many requests: try again later.", {"Retry-After": str(int(retry_after) + 1)})
    body = await read_limited(request, MAX_BODY_BYTES)
    if body is None:
        return _refuse(413, "The body is too large.")
    try:
        link = parse_cart_link(parse_json(body or b"null"))
    except InvalidJSON as exc:
        return _refuse(400, f"The body is {exc}.")
    except CartLinkError as exc:
        return _refuse(exc.status, exc.message)
    if claimed_store and claimed_store != link.store:
        return _refuse(400, "store: the body and the address name different stores.")
    origin = request.headers.get("origin", "").strip().lower()
    return await run_in_threadpool(_store_link, request.app.state.runtime.db, link, origin)


def _store_link(db: Database, link: CartLinkRequest, origin: str) -> Response:
    with db.session() as session:
        store = find_installed_store(session, link.store)
        if store is None:
            return _refuse(404, "store: no store with this hash has the app installed.")
        if not origin or origin not in storefront_origins(store):
            return _refuse(403, "Origin: requests are accepted only from the store's storefronts.")
        try:
            check_channel(store, link.channel_id)
            changed = link_cart(session, store, link)
        except CartLinkError as exc:
            return _refuse(exc.status, exc.message)
        store_id = store.id
    if changed:
        recheck_cart(db, store_id, link.cart_id, link.smclient)
    return JSONResponse({"linked": True}, headers={"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
