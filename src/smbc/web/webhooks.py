"""`POST /webhooks/bigcommerce`: read at most MAX_BODY_BYTES, hand the body to the inbox, answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from smbc.db.session import Database
from smbc.realtime.inbox import DELIVERIES, MAX_BODY_BYTES, accept_and_enqueue
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH

router = APIRouter()


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (no matter what Content-Length claims)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(WEBHOOK_PATH)
async def receive_webhook(request: Request) -> JSONResponse:
    body = await _read_limited(request)
    if body is None:
        DELIVERIES.labels("too_large").inc()
        return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
    db: Database = request.app.state.runtime.db
    outcome = await run_in_threadpool(accept_and_enqueue, db, body, request.headers.get(SECRET_HEADER))
    DELIVERIES.labels(outcome.result).inc()
    if outcome.status >= 400:
        return JSONResponse({"error": outcome.message}, status_code=outcome.status)
    return JSONResponse({"result": outcome.result}, status_code=outcome.status)
