"""`POST /webhooks/bigcommerce`: read at most MAX_BODY_BYTES, check the body, record it through the
process's group commit, answer once it is durable.

A plain Starlette route, not a FastAPI one: it takes nothing FastAPI would parse or document, and
FastAPI's dependency solving and response handling were a fifth of the receiver's CPU per request.
A POST (nearly every request) is taken by `receive_post` as bare ASGI (`web/app.py`'s App):
no Request object, and answers whose bytes are made once, as JSONResponse would make them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from smbc.db.session import Database
from smbc.realtime.group_commit import GroupCommit
from smbc.realtime.inbox import (
    DELIVERIES,
    MAX_BODY_BYTES,
    RETRY_AFTER_SECONDS,
    Accepted,
    Received,
    parse_received,
)
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH

_SECRET_HEADER = SECRET_HEADER.lower().encode("latin-1")
_TOO_LARGE = Accepted(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")


def group_commit(app: FastAPI) -> GroupCommit:
    """The app's group commit for its current database (made on first use, in the serving loop)."""
    db: Database = app.state.runtime.db
    current: GroupCommit | None = getattr(app.state, "inbox_group_commit", None)
    if current is None or current.db is not db:
        current = app.state.inbox_group_commit = GroupCommit(db)
    return current


def _json(content: Any) -> bytes:
    """The bytes JSONResponse makes of `content`."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


_RESULT_BODIES: dict[str, bytes] = {}  # an answer's body by result: a handful of results, made once


def _answer_parts(outcome: Accepted) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The status, body and headers of the answer to `outcome` (counted by result here)."""
    DELIVERIES.labels(outcome.result).inc()
    if outcome.status >= 400:  # 5xx: nothing was recorded, the sender retries
        body = _json({"error": outcome.message})
    else:
        body = _RESULT_BODIES.get(outcome.result) or _RESULT_BODIES.setdefault(
            outcome.result, _json({"result": outcome.result})
        )
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    if outcome.status >= 500:
        headers.append((b"retry-after", b"%d" % RETRY_AFTER_SECONDS))
    return outcome.status, body, headers


async def _outcome(app: FastAPI, body: bytes | None, secret: str | None) -> Accepted:
    if body is None:
        return _TOO_LARGE
    outcome = parse_received(body, secret)
    if isinstance(outcome, Received):
        outcome = await group_commit(app).record(outcome)
    return outcome


async def _read_body(receive: Receive, declared: bytes | None) -> bytes | None:
    """The body, or None as soon as it (or its declared Content-Length) passes MAX_BODY_BYTES."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def receive_post(scope: Scope, receive: Receive, send: Send) -> None:
    """A POST to the webhook path, as bare ASGI: the same answers as `receive_webhook`'s."""
    secret: str | None = None
    declared: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and declared is None:  # the first of a repeated header, as Starlette
            declared = value
        elif name == _SECRET_HEADER and secret is None:
            secret = value.decode("latin-1")
    outcome = await _outcome(scope["app"], await _read_body(receive, declared), secret)
    status, body, headers = _answer_parts(outcome)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def receive_webhook(request: Request) -> Response:
    request.scope["route"] = ROUTE  # FastAPI sets it only for its own routes; the request counter's label
    if request.method != "POST":  # checked here, so that a 405 is counted under this route too
        raise HTTPException(405, headers={"Allow": "POST"})
    declared = request.headers.get("content-length")
    body = await _read_body(request.receive, None if declared is None else declared.encode("latin-1"))
    outcome = await _outcome(request.app, body, request.headers.get(SECRET_HEADER))
    status, content, headers = _answer_parts(outcome)
    response = Response(content, status_code=status)
    response.raw_headers = headers
    return response


ROUTE = Route(WEBHOOK_PATH, receive_webhook, methods=())  # no methods: every one reaches the endpoint
router = APIRouter(routes=[ROUTE])
