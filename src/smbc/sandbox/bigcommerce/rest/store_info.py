"""`/v2/store` and `/v2/time`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce.render import v2
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("information"))]


@router.get("/stores/{store_hash}/v2/store")
async def get_store(call: Reader) -> JSONResponse:
    with call.lock:
        return JSONResponse(v2.store_json(call.store, call.fake.base_url, call.fake.account_uuid))


@router.get("/stores/{store_hash}/v2/time")
async def get_time(call: Reader) -> JSONResponse:
    return JSONResponse({"time": int(call.fake.now().timestamp())})
