"""`GET /v3/carts/{id}` and `GET /v3/abandoned-carts/{token}` (carts change only through shoppers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer

router = APIRouter()
CartReader = Annotated[StoreCall, Depends(authorized("carts"))]
# BigCommerce guards abandoned carts with the store-information scope, not the carts one.
AbandonedCartReader = Annotated[StoreCall, Depends(authorized("information"))]


@router.get("/stores/{store_hash}/v3/carts/{cart_id}")
async def get_cart(call: CartReader, cart_id: str) -> JSONResponse:
    include = listing.included(call.query)
    with call.lock:
        # A converted cart is gone, on BigCommerce too.
        cart = found(call.store.carts, cart_id, f"Cart {cart_id} not found")
        storefront_url = call.fake.storefront_url(call.store.hash, cart.channel_id)
        return v3_answer(v3.cart_json(cart, storefront_url, include))


@router.get("/stores/{store_hash}/v3/abandoned-carts/{token}")
async def abandoned_cart(call: AbandonedCartReader, token: str) -> JSONResponse:
    with call.lock:
        cart_id = found(call.store.abandoned_carts, token, "Abandoned cart not found")
    return v3_answer({"cart_id": cart_id})
