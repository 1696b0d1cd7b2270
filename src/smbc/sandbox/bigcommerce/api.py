"""The fake's ASGI app: OAuth token exchange, the rate-limit/fault gate in front of the REST API,
and the error formats (v2: a list of `{status, message}`; v3: `{status, title, type, errors}`)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce.fake import OAuthError
from smbc.sandbox.bigcommerce.listing import QueryError

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

STORE_PATH = re.compile(r"^/stores/([^/]+)/(v2|v3)/")
ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or {}


def error_response(
    request: Request, status: int, message: str, errors: dict[str, str] | None = None
) -> JSONResponse:
    if "/v2/" in request.url.path:
        return JSONResponse([{"status": status, "message": message}], status_code=status)
    body = {"status": status, "title": message, "type": ERROR_TYPE, "errors": errors or {}}
    return JSONResponse(body, status_code=status)


def fake_of(request: Request) -> FakeBigCommerce:
    """The fake a request reached (`create_app` puts it on the app's state)."""
    fake: FakeBigCommerce = request.app.state.fake
    return fake


def create_app(fake: FakeBigCommerce) -> FastAPI:
    from smbc.sandbox.bigcommerce import pages, rest  # both import fake_of and ApiError from here

    app = FastAPI(title="Fake BigCommerce", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = fake  # what the route handlers work on: see fake_of
    chance = random.Random()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, str(exc), exc.errors)

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        status = 400 if "/v2/" in request.url.path else 422
        return error_response(request, status, str(exc))

    @app.middleware("http")
    async def store_gate(request: Request, call_next: Any) -> Response:
        match = STORE_PATH.match(request.url.path)
        if not match:
            return await call_next(request)
        store_hash = match.group(1)
        if store_hash not in fake.stores:
            return error_response(request, 404, f"Store {store_hash} not found")
        fake.requests_by_store[store_hash] += 1
        fake.record_arrival(store_hash)
        fake.in_flight[store_hash] += 1
        fake.max_in_flight[store_hash] = max(fake.max_in_flight[store_hash], fake.in_flight[store_hash])
        try:
            return await _gated(request, call_next, store_hash)
        finally:
            fake.in_flight[store_hash] -= 1

    async def _gated(request: Request, call_next: Any, store_hash: str) -> Response:
        faults = fake.faults
        if faults.hold:
            fake.held.append(str(request.url))
            try:
                while faults.hold and not fake.closing:
                    await asyncio.sleep(0.005)
            finally:
                fake.held.remove(str(request.url))
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.timeout_rate > 0 and chance.random() < faults.timeout_rate:
            deadline = time.monotonic() + faults.timeout_s
            while time.monotonic() < deadline and not fake.closing:
                await asyncio.sleep(0.05)
            return error_response(request, 504, "Gateway Timeout")
        if faults.rate_limit_without_headers > 0 and chance.random() < faults.rate_limit_without_headers:
            # An overloaded BigCommerce answers 429 without any X-Rate-Limit-* header.
            return error_response(request, 429, "Too many requests")
        headers, allowed = _take_quota(store_hash)
        if not allowed:
            fake.over_quota[store_hash] += 1
            response: Response = error_response(request, 429, "You have exceeded your rate limit")
            headers["X-Retry-After"] = str(max(1, -(-int(headers["X-Rate-Limit-Time-Reset-Ms"]) // 1000)))
        elif faults.error_rate > 0 and chance.random() < faults.error_rate:
            response = error_response(request, 500, "Internal Server Error")
        else:
            response = await call_next(request)
        response.headers.update(headers)
        return response

    def _take_quota(store_hash: str) -> tuple[dict[str, str], bool]:
        with fake.lock:
            quota = fake.stores[store_hash].quota
            now = fake.monotonic()
            if quota.window_started is None or now >= quota.window_started + quota.window_s:
                quota.window_started, quota.used, quota.received = now, 0, 0
            quota.received += 1
            fake.busiest_quota_window[store_hash] = max(fake.busiest_quota_window[store_hash], quota.received)
            allowed = quota.used < quota.requests
            if allowed:
                quota.used += 1
            reset_ms = max(0, int((quota.window_started + quota.window_s - now) * 1000))
            return {
                "X-Rate-Limit-Requests-Left": str(quota.requests - quota.used),
                "X-Rate-Limit-Requests-Quota": str(quota.requests),
                "X-Rate-Limit-Time-Window-Ms": str(int(quota.window_s * 1000)),
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
            }, allowed

    @app.post("/oauth2/token")
    async def token_exchange(request: Request) -> JSONResponse:
        # BigCommerce's docs send JSON; its Python client sends a form: accept both.
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                body = None
            form: dict[str, Any] = body if isinstance(body, dict) else {}
        else:
            form = dict(await request.form())
        try:
            return JSONResponse(fake.exchange_code(form))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)

    app.include_router(rest.build_router())
    app.include_router(pages.router)
    return app
