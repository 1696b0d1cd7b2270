"""Liveness, readiness and Prometheus metrics (behind SMBC_METRICS_TOKEN when it is set)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from smbc.core import jobs

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    checks = {"database": False, "queue": jobs.queue_reachable()}
    try:
        with request.app.state.runtime.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    ready = all(checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


def metrics_allowed(authorization: str | None, token: str) -> bool:
    """No token configured: open. Otherwise `Bearer <token>`, compared in constant time."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


@router.get("/metrics")
def metrics(request: Request) -> Response:
    if not metrics_allowed(request.headers.get("authorization"), request.app.state.settings.metrics_token):
        return Response(
            "metrics need Authorization: Bearer <SMBC_METRICS_TOKEN>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
