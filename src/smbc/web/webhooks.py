"""`POST /webhooks/bigcommerce`: read at most MAX_BODY_BYTES, check the body, record it through the
process's group commit, answer once it is durable.

A plain Starlette route, not a FastAPI one: it takes nothing FastAPI would parse or document, and
FastAPI's dependency solving and response handling were a fifth of the receiver's CPU per request."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smbc.db.session import Database
from smbc.realtime.group_commit import GroupCommit
from smbc.realtime.inbox import DELIVERIES, MAX_BODY_BYTES, RETRY_AFTER_SECONDS, Received, parse_received
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH
from smbc.web.request_bodies import read_limited


def group_commit(app: FastAPI) -> GroupCommit:
    """The app's group commit for its current database (made on first use, in the serving loop)."""
    db: Database = app.state.runtime.db
    current: GroupCommit | None = getattr(app.state, "inbox_group_commit", None)
    if current is None or current.db is not db:
        current = app.state.inbox_group_commit = GroupCommit(db)
    return current


async def receive_webhook(request: Request) -> JSONResponse:
    request.scope["route"] = ROUTE  # FastAPI sets it only for its own routes; the request counter's label
    if request.method != "POST":  # checked here, so that a 405 is counted under this route too
        raise HTTPException(405, headers={"Allow": "POST"})
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


ROUTE = Route(WEBHOOK_PATH, receive_webhook, methods=())  # no methods: every one reaches the endpoint
router = APIRouter(routes=[ROUTE])
