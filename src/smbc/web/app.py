"""The FastAPI application: one factory, routers from each feature area."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smbc.core import jobs
from smbc.core.config import Settings, get_settings
from smbc.core.metrics import HTTP_REQUESTS
from smbc.core.runtime import close_runtime, init_runtime
from smbc.stores.hooks import WEBHOOK_PATH
from smbc.web.dashboard import placeholder_router
from smbc.web.templating import STATIC_DIR, error_page
from smbc.web.webhooks import ROUTE as WEBHOOK_ROUTE
from smbc.web.webhooks import receive_post

# Each feature area exposes `router` (a fastapi.APIRouter) in one of these modules.
# Routes are matched in this order: the webhook receiver first, as nearly every request is one.
ROUTER_MODULES = [
    "smbc.web.webhooks",
    "smbc.web.home",
    "smbc.web.health",
    "smbc.web.bigcommerce_app",
    "smbc.web.callbacks",
    "smbc.web.storefront",
    "smbc.web.monitoring_tab",
    "smbc.web.export_tab",
    "smbc.web.catalog_tab",
    "smbc.web.activity_tab",
    "smbc.web.activity_search",
    "smbc.web.dashboard",
    "smbc.web.settings_tabs",
]

# Paths that machines call (BigCommerce, SALESmanago, the storefront script, monitoring): their
# errors stay JSON. Anywhere else, a path that matches no route is a person's: a styled page.
JSON_PATHS = ("/webhooks/", "/callbacks/", "/storefront/", "/healthz", "/readyz", "/metrics", "/static/")


def create_app(settings: Settings | None = None, *, start_workers: bool | None = None) -> FastAPI:
    """Build the app. Inline workers start with it when SMBC_WORKERS=inline (unless told otherwise)."""
    settings = settings or get_settings()
    run_workers = settings.workers == "inline" if start_workers is None else start_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = init_runtime(settings, migrate=settings.is_sqlite)
        app.state.runtime = runtime
        consumer = jobs.start_consumer(settings.inline_worker_threads) if run_workers else None
        app.state.consumer = consumer
        try:
            yield
        finally:
            if consumer is not None:
                jobs.stop_consumer(consumer)
            close_runtime()

    # No interactive docs and no schema: nothing but the routes BigCommerce, SALESmanago, the
    # storefront script and the dashboard call is served, and the route list is nobody's business.
    app = App(
        title="SALESmanago for BigCommerce",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    # Last, so a feature's own /app/tabs/<slug> route wins over the "coming soon" placeholder.
    app.include_router(placeholder_router)

    app.add_exception_handler(StarletteHTTPException, not_found_page)
    app.add_middleware(RequestCounter)
    return app


class App(FastAPI):
    """The FastAPI app with webhook deliveries taken ahead of it: a POST to the webhook path (nearly
    every request) goes straight to its endpoint, counted as RequestCounter counts and a failure
    answered as ServerErrorMiddleware answers it. FastAPI's and Starlette's entry, their middleware
    and the route matching were a sixth of the event loop's CPU per delivery. Any other request
    (another method on that path too: its 405) goes through the whole stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            scope["app"] = self  # as Starlette sets it: the endpoint finds the runtime through it
            await _webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


async def _webhook_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = WEBHOOK_ROUTE  # the request counter's label, even if the endpoint fails
    await receive_post(scope, receive, send)


async def not_found_page(request: Request, exc: Exception) -> Response:
    """The styled HTML 404 for a path no route matches; every other HTTP error as FastAPI answers it."""
    unmatched = "route" not in request.scope  # the router sets it on the scope when a route matches
    status = getattr(exc, "status_code", None)
    if status == 404 and unmatched and not request.url.path.startswith(JSON_PATHS):
        return error_page(request, 404, "Page not found", "There is no page at this address.")
    assert isinstance(exc, StarletteHTTPException)  # the only exception this handler is registered for
    return await http_exception_handler(request, exc)


class RequestCounter:
    """Counts requests by method, route template (not the raw path: a small label set) and status.
    A plain ASGI middleware: with Starlette's BaseHTTPMiddleware one process could not keep up with
    200 webhooks a second on PostgreSQL (benchmarks/webhook_ingest.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # set by the router on this scope
            HTTP_REQUESTS.labels(method=scope["method"], route=route, status=str(status)).inc()


# A webhook delivery's own stack (App.__call__): the same counting and 500 as any other request's.
_webhook = ServerErrorMiddleware(RequestCounter(_webhook_endpoint))
