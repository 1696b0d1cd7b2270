"""The Activity tab's search: "what happened to order 1234 / customer 42 / x@y / cart …?", answered
by the same `entity_timeline` as `smbc activity --order N`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from smbc.activity.timeline import entity_timeline
from smbc.stores.access import DashboardSession
from smbc.web.session import current_session
from smbc.web.templating import render

router = APIRouter()

SEARCH_KINDS = {"order": "Order id", "customer": "Customer id", "email": "E-mail", "cart": "Cart id"}


def _search(request: Request, store_hash: str, kind: str, value: str) -> dict[str, Any]:
    context: dict[str, Any] = {"search_kinds": SEARCH_KINDS, "search_kind": kind, "search_value": value}
    if not value.strip():
        return {**context, "search_error": "Enter what to look for."}
    try:
        timeline = entity_timeline(request.app.state.runtime.db, store_hash, kind, value)
    except ValueError as exc:
        return {**context, "search_error": str(exc)}
    except LookupError:
        raise HTTPException(status_code=404, detail="No such store.") from None
    return {**context, "timeline": timeline}


@router.get("/app/activity/search", response_class=HTMLResponse)
async def activity_search(
    request: Request, kind: str = "order", value: str = "", dash: DashboardSession = Depends(current_session)
) -> HTMLResponse:
    context = await run_in_threadpool(_search, request, dash.store_hash, kind[:16], value[:320])
    response = render(request, "activity_search.html", context)
    if "search_error" in context:
        response.status_code = 422
    return response
