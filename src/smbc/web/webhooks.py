"""`POST /webhooks/bigcommerce`: read at most MAX_BODY_BYTES, check the body, record it through the
process's group commit, answer once it is durable."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from smbc.db.session import Database
from smbc.realtime.group_commit import GroupCommit
from smbc.realtime.inbox import DELIVERIES, MAX_BODY_BYTES, RETRY_AFTER_SECONDS, Received, parse_received
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH
from smbc.web.request_bodies import read_limited

router = APIRouter()


def group_commit(app: FastAPI) -> GroupCommit:
    """The app's group commit for its current database (made on first use, in the serving loop)."""
    db: Database = app.state.runtime.db
    current: GroupCommit | None = getattr(app.state, "inbox_group_commit", None)
    if current is None or current.db is not db:
        current = app.state.inbox_group_commit = GroupCommit(db)
    return current


@router.post(WEBHOOK_PATH)
async def receive_webhook(request: Request) -> JSONResponse:
    body = await read_limited(request, MAX_BODY_BYTES)
    if body is None:
        DELIVERIES.labels("too_large").inc()
        return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
    outcome = parse_received(body, request.headers.get(SECRET_HEADER))
    if isinstance(outcome, Received):
        outcome = await group_commit(request.app).record(outcome)
    DELIVERIES.labels(outcome.result).inc()
    if outcome.status >= 500:  # nothing was recorded: the sender retries
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return JSONResponse({"error": outcome.message}, status_code=outcome.status, headers=headers)
    if outcome.status >= 400:
        return JSONResponse({"error": outcome.message}, status_code=outcome.status)
    return JSONResponse({"result": outcome.result}, status_code=outcome.status)
