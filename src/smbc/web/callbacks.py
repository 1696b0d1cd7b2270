"""SALESmanago's opt-in / opt-out callbacks: `GET` (or `POST`)
`/callbacks/salesmanago/opt-in|opt-out?email=$email$&store=<hash>&token=<store's callback secret>`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from smbc.consent import service as consent
from smbc.consent.callbacks import CALLBACK_BUDGET, CALLBACK_PATH, MAX_FIELD, accept_and_enqueue
from smbc.db.session import Database
from smbc.engine.rate_limit import RateLimiter, shared_counters

router = APIRouter()


async def _fields(request: Request) -> dict[str, str]:
    """Query parameters; for a POST, form or JSON fields fill in what the query lacks."""
    fields = {k: v for k, v in request.query_params.items() if k in ("email", "store", "token")}
    if request.method == "POST" and len(fields) < 3:
        content_type = request.headers.get("content-type", "")
        body: dict[str, object] = {}
        try:
            if content_type.startswith("application/json"):
                parsed = await request.json()
                body = parsed if isinstance(parsed, dict) else {}
            elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                body = dict(await request.form())
        except ValueError:
            body = {}
        for key in ("email", "store", "token"):
            if key not in fields and isinstance(body.get(key), str):
                fields[key] = str(body[key])
    return {k: v[:MAX_FIELD] for k, v in fields.items()}


async def _answer(request: Request, action: str) -> JSONResponse:
    fields = await _fields(request)
    db: Database = request.app.state.runtime.db
    answer = await run_in_threadpool(
        partial(accept_and_enqueue, limiter=_limiter(request)),
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
