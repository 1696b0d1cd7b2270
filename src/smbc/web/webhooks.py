"""`POST /webhooks/bigcommerce`: read at most MAX_BODY_BYTES, hand the body to the inbox, answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from smbc.db.session import Database
from smbc.realtime.inbox import DELIVERIES, MAX_BODY_BYTES, accept_and_enqueue
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH
from smbc.web.request_bodies import read_limited

router = APIRouter()


@router.post(WEBHOOK_PATH)
async def receive_webhook(request: Request) -> JSONResponse:
    body = await read_limited(request, MAX_BODY_BYTES)
    if body is None:
        DELIVERIES.labels("too_large").inc()
        return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
    db: Database = request.app.state.runtime.db
    outcome = await run_in_threadpool(accept_and_enqueue, db, body, request.headers.get(SECRET_HEADER))
    DELIVERIES.labels(outcome.result).inc()
    if outcome.status >= 400:
        return JSONResponse({"error": outcome.message}, status_code=outcome.status)
    return JSONResponse({"result": outcome.result}, status_code=outcome.status)
