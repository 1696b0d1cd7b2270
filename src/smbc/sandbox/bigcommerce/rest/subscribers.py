"""`/v3/customers/subscribers`: list, create, delete by filter, and one subscriber by id.

Writes fire `store/subscriber/created|updated|deleted`, as BigCommerce does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page
from smbc.sandbox.bigcommerce.rest.keyed_rows import KeyedRows
from smbc.sandbox.bigcommerce.state import NEWSLETTER_CONSENT, Json, StoreState, Subscriber

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("customers"))]
Writer = Annotated[StoreCall, Depends(authorized("customers", write=True))]

CONSENTS = frozenset({NEWSLETTER_CONSENT, "abandoned_cart"})
SOURCES = frozenset({"storefront", "order", "custom"})


def subscriber_filter(q: dict[str, str]) -> Callable[[Subscriber], bool] | None:
    """None when the query has no filter at all (DELETE refuses that)."""
    ids = listing.int_set(q, "id")
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

    def wanted(s: Subscriber) -> bool:
        return (
            (ids is None or s.id in ids)
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
    """The fields to set (all of them for a new subscriber); 422 with every error, 409 on a taken email."""
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
        if body["source"] not in SOURCES:
            errors["source"] = f"source must be one of {sorted(SOURCES)}"
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
        if not isinstance(consents, list) or not set(consents) <= CONSENTS:
            errors["consents"] = f"consents must be a list of {sorted(CONSENTS)}"
        else:
            out["consents"] = list(dict.fromkeys(consents))
    if errors:
        raise ApiError(422, "The subscriber is not valid", errors)
    if "email" in out:
        other = store.subscriber_by_email(out["email"])
        if other is not None and other is not existing:
            raise ApiError(409, f"A subscriber with email {out['email']} already exists")
    return out


def _emit(call: StoreCall, change: str, subscriber_id: int) -> None:
    call.fake.emit(call.store, f"store/subscriber/{change}", {"type": "subscriber", "id": subscriber_id})


@router.get("/stores/{store_hash}/v3/customers/subscribers")
async def list_subscribers(call: Reader) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    wanted = subscriber_filter(call.query)
    with call.lock:
        rows = [s for s in call.store.subscribers.values() if wanted is None or wanted(s)]
        return v3_page(rows, page, limit, v3.subscriber_json, call.query)


@router.post("/stores/{store_hash}/v3/customers/subscribers")
async def create_subscriber(call: Writer) -> JSONResponse:
    body = await call.json_object()
    store = call.store
    with call.lock:
        fields = validate_subscriber(body, None, store)
        subscriber = store.add_subscriber(now=call.fake.now(), **fields)
        _emit(call, "created", subscriber.id)
        return v3_answer(v3.subscriber_json(subscriber))


@router.delete("/stores/{store_hash}/v3/customers/subscribers")
async def delete_subscribers(call: Writer) -> Response:
    wanted = subscriber_filter(call.query)
    if wanted is None:
        # Without a filter BigCommerce would delete every subscriber; the fake refuses instead.
        raise ApiError(422, "A filter is required to delete subscribers (e.g. email or id:in)")
    with call.lock:
        doomed = [s.id for s in call.store.subscribers.values() if wanted(s)]
        for subscriber_id in doomed:
            del call.store.subscribers[subscriber_id]
            _emit(call, "deleted", subscriber_id)
        call.store.touch()
    return Response(status_code=204)


def _subscriber(call: StoreCall, subscriber_id: int) -> Subscriber:
    return found(call.store.subscribers, subscriber_id, f"Subscriber {subscriber_id} not found")


SUBSCRIBERS = KeyedRows(
    rows=lambda store: store.subscribers,
    find=_subscriber,
    render=v3.subscriber_json,
    changes=lambda call, body, subscriber: validate_subscriber(body, subscriber, call.store),
    announce=_emit,
)
SUBSCRIBERS.add_routes(router, "/stores/{store_hash}/v3/customers/subscribers/{key}", int, Reader, Writer)
