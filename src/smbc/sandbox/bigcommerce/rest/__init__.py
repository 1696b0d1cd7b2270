"""REST routes of the fake: `/stores/{hash}/v2/...` and `/stores/{hash}/v3/...`, one module a resource
family.

Each route gets a `StoreCall` from the `access.authorized` dependency (401 without a valid
`X-Auth-Token`, 403 without the family's scope), parses the query, reads or changes the store under the
fake's lock and renders with `render.v2` / `render.v3`. Writes fire the webhooks BigCommerce fires.
The dependency finds the fake with `api.fake_of` (the app state `api.create_app` sets).
"""

from __future__ import annotations

from fastapi import APIRouter

from smbc.sandbox.bigcommerce.rest import (
    carts,
    categories,
    channels,
    currencies,
    customers,
    hooks,
    orders,
    products,
    refunds,
    scripts,
    store_info,
    subscribers,
)


def build_router() -> APIRouter:
    router = APIRouter()
    families = (store_info, channels, customers, subscribers, orders, refunds, carts, scripts, hooks)
    for family in (*families, products, categories, currencies):
        router.include_router(family.router)
    return router
