"""Liveness, readiness (with the health detail on request) and Prometheus metrics; the detail and
the metrics need `Authorization: Bearer $SMBC_METRICS_TOKEN` when that token is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from smbc.activity.health import health_gauges, system_health
from smbc.core import jobs
from smbc.core.metrics import exposition

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, detail: bool = False, store: str | None = None) -> Response:
    """Ready when the database and the queue answer. `?detail=1` adds the health detail (queues and
    every installed store, or `&store=HASH` alone): an operator's view, never a probe's (it reads
    more than a probe should)."""
    if detail and not _token_accepted(request):
        return _needs_token("the health detail")
    checks = {"database": False, "queue": jobs.queue_reachable()}
    db = request.app.state.runtime.db
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    ready = all(checks.values())
    body: dict[str, object] = {"ready": ready, **checks}
    if detail and checks["database"]:
        try:
            body["health"] = system_health(db, store_hash=store).as_json()
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse(body, status_code=200 if ready else 503)


def metrics_allowed(authorization: str | None, token: str) -> bool:
    """No token configured: open. Otherwise `Bearer <token>`, compared in constant time."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def _token_accepted(request: Request) -> bool:
    return metrics_allowed(request.headers.get("authorization"), request.app.state.settings.metrics_token)


def _needs_token(what: str) -> Response:
    return Response(
        f"{what} needs Authorization: Bearer <SMBC_METRICS_TOKEN>\n",
        status_code=401,
        media_type="text/plain",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    if not _token_accepted(request):
        return _needs_token("metrics")
    return Response(exposition(health_gauges(request.app.state.runtime.db)), media_type=CONTENT_TYPE_LATEST)
