"""v3 refunds (payment actions): an order's refunds, creating one, and every refund of the store."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.actions import ActionError
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page

router = APIRouter()
# Either the orders or the transactions scope will do.
Reader = Annotated[StoreCall, Depends(authorized("orders", "transactions"))]
Writer = Annotated[StoreCall, Depends(authorized("orders", "transactions", write=True))]


@router.get("/stores/{store_hash}/v3/orders/{order_id}/payment_actions/refunds")
async def order_refunds(call: Reader, order_id: int) -> JSONResponse:
    with call.lock:
        found(call.store.orders, order_id, f"Order {order_id} not found")
        data = [v3.refund_json(r) for r in call.store.refunds.values() if r.order_id == order_id]
    return v3_answer(data)


@router.post("/stores/{store_hash}/v3/orders/{order_id}/payment_actions/refunds")
async def create_refund(call: Writer, order_id: int) -> JSONResponse:
    """Refund what `payments` add up to (status 4 or 14, order/refund/created), as the merchant would."""
    body = await call.json_object()
    items, payments = body.get("items"), body.get("payments")
    errors: dict[str, str] = {}
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        errors["items"] = "items must list what is refunded"
    amounts = (
        [p.get("amount") for p in payments or [] if isinstance(p, dict)] if isinstance(payments, list) else []
    )
    if not amounts or not all(isinstance(a, int | float) and a > 0 for a in amounts):
        errors["payments"] = "payments must list the amounts refunded per provider"
    if errors:
        raise ApiError(422, "The refund request is not valid", errors)
    try:
        refund = call.fake.admin(call.store.hash).refund(
            order_id, amount=Decimal(str(sum(amounts))), reason=body.get("reason", "")
        )
    except ActionError as exc:
        raise ApiError(422, str(exc)) from None
    return JSONResponse({"data": refund, "meta": {}}, status_code=201)


@router.get("/stores/{store_hash}/v3/orders/payment_actions/refunds")
async def all_refunds(call: Reader) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    _, low, high = listing.date_range(call.query, "created")  # created:min, created:max
    with call.lock:
        rows = listing.kept_in(call.query, "order_id", call.store.refunds.values())
        rows = listing.kept_in(call.query, "id", rows)
        rows = [r for r in rows if listing.in_range(r.created, None, low, high)]
        return v3_page(rows, page, limit, v3.refund_json)


@router.get("/stores/{store_hash}/v3/orders/payment_actions/refunds/{refund_id}")
async def get_refund(call: Reader, refund_id: int) -> JSONResponse:
    with call.lock:
        refund = found(call.store.refunds, refund_id, f"Refund {refund_id} not found")
        return v3_answer(v3.refund_json(refund, single=True))
