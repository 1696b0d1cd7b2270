"""SALESmanago's opt-in / opt-out callbacks: `GET` (or `POST`)
`/callbacks/salesmanago/opt-in|opt-out?email=$email$&store=<hash>&token=<store's callback secret>`.

Public, so a request costs nothing before its token is checked: no body is read until then, never
more than the webhook receiver's limit, and multipart (which would spool to disk) is refused."""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from smbc.consent import service as consent
from smbc.consent.callbacks import (
    CALLBACK_BUDGET,
    CALLBACK_PATH,
    FORBIDDEN_MESSAGE,
    MAX_FIELD,
    accept_callback,
    callback_store_id,
)
from smbc.core.json_bodies import InvalidJSON, parse_json
from smbc.db.session import Database
from smbc.engine.rate_limit import RateLimiter, shared_counters
from smbc.realtime.inbox import MAX_BODY_BYTES
from smbc.web.request_bodies import read_limited

router = APIRouter()

MAX_FORM_FIELDS = 16


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "message": message}, status_code=status)


def _body_email(content_type: str, body: bytes) -> str | None:
    """The `email` field of a JSON or form body (InvalidJSON / ValueError when it cannot be read)."""
    if content_type.startswith("application/json"):
        parsed = parse_json(body or b"null")
        value = parsed.get("email") if isinstance(parsed, dict) else None
    elif content_type.startswith("application/x-www-form-urlencoded"):
        text = body.decode("utf-8", "replace")
        value = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)).get("email")
    else:
        value = None
    return value if isinstance(value, str) else None


async def _answer(request: Request, action: str) -> JSONResponse:
    """The store and token come from the query string and are checked before any body is read; a
    POST's body (JSON or form, at most MAX_BODY_BYTES) may then supply the e-mail."""
    content_type = request.headers.get("content-type", "").lower()
    if request.method == "POST" and content_type.startswith("multipart/"):
        return _refuse(415, "multipart bodies are not accepted: put the fields in the address")
    fields = {k: v[:MAX_FIELD] for k, v in request.query_params.items() if k in ("email", "store", "token")}
    db: Database = request.app.state.runtime.db
    if request.method == "POST" and "email" not in fields:
        store_id = await run_in_threadpool(
            callback_store_id, db, fields.get("store", ""), fields.get("token", "")
        )
        if store_id is None:
            return _refuse(403, FORBIDDEN_MESSAGE)
        body = await read_limited(request, MAX_BODY_BYTES)
        if body is None:
            return _refuse(413, f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            email = _body_email(content_type, body)
        except InvalidJSON as exc:
            return _refuse(400, f"the body is {exc}: nothing was changed")
        except ValueError:
            return _refuse(400, "the body is not a form this callback reads: nothing was changed")
        if email is not None:
            fields["email"] = email[:MAX_FIELD]
    answer = await run_in_threadpool(
        partial(accept_callback, limiter=_limiter(request), enqueue=True),
        db,
        action,
        fields.get("store", ""),
        fields.get("token", ""),
        fields.get("email", ""),
    )
    headers = {"Retry-After": str(int(answer.retry_after) + 1)} if answer.status == 429 else None
    return JSONResponse(
        {"success": answer.status < 400, "message": answer.message},
        status_code=answer.status,
        headers=headers,
    )


def _limiter(request: Request) -> RateLimiter:
    """The per-store callback budget on the counters every process shares."""
    state = request.app.state
    if getattr(state, "callback_limiter", None) is None:
        state.callback_limiter = RateLimiter(
            CALLBACK_BUDGET, shared_counters(state.settings, state.runtime.db)
        )
    return state.callback_limiter


@router.api_route(CALLBACK_PATH + "/opt-in", methods=["GET", "POST"])
async def opt_in_callback(request: Request) -> JSONResponse:
    return await _answer(request, consent.OPT_IN)


@router.api_route(CALLBACK_PATH + "/opt-out", methods=["GET", "POST"])
async def opt_out_callback(request: Request) -> JSONResponse:
    return await _answer(request, consent.OPT_OUT)
