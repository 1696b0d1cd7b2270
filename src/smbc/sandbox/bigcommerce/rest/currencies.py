"""`/v2/currencies` (the store's currencies and their exchange rates) and
`/v3/channels/{id}/currency-assignments` (which of them a channel offers, and its default)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce.render.formats import rfc2822
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer
from smbc.sandbox.bigcommerce.state import Currency, Json, StoreState

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("information"))]
ChannelReader = Annotated[StoreCall, Depends(authorized("channels"))]


def currency_json(currency: Currency, store: StoreState) -> Json:
    stamp = rfc2822(store.created)
    return {
        "id": currency.id,
        "is_default": currency.is_default,
        "date_created": stamp,
        "date_modified": stamp,
        "last_updated": stamp,
        "country_iso2": currency.country_iso2,
        "currency_code": currency.code,
        # BigCommerce writes the rate as a string with ten decimals.
        "currency_exchange_rate": f"{currency.exchange_rate:.10f}",
        "auto_update": False,
        "token_location": "left",
        "token": currency.token,
        "decimal_token": ".",
        "thousands_token": ",",
        "decimal_places": currency.decimal_places,
        "name": currency.name,
        "enabled": currency.enabled,
        "is_transactional": currency.is_default,
    }


@router.get("/stores/{store_hash}/v2/currencies")
async def list_currencies(call: Reader) -> JSONResponse:
    with call.lock:
        rows = sorted(call.store.currencies.values(), key=lambda c: c.id)
        return JSONResponse([currency_json(c, call.store) for c in rows])


@router.get("/stores/{store_hash}/v3/channels/{channel_id}/currency-assignments")
async def channel_currency_assignments(call: ChannelReader, channel_id: int) -> JSONResponse:
    with call.lock:
        found(call.store.channels, channel_id, f"Channel {channel_id} not found")
        own = call.store.channel_currencies.get(channel_id)
        if own is None:  # a channel with no assignment of its own inherits the store's
            enabled = [c.code for c in call.store.currencies.values() if c.enabled]
            default = next((c.code for c in call.store.currencies.values() if c.is_default), "USD")
        else:
            enabled, default = own
        return v3_answer(
            {"channel_id": channel_id, "enabled_currencies": list(enabled), "default_currency": default}
        )
