"""The FastAPI application: one factory, routers from each feature area."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from smbc.config import Settings, get_settings
from smbc.metrics import HTTP_REQUESTS
from smbc.runtime import close_runtime, init_runtime
from smbc.web.dashboard import placeholder_router
from smbc.web.templating import STATIC_DIR

# Each feature area exposes `router` (a fastapi.APIRouter) in one of these modules.
ROUTER_MODULES = [
    "smbc.web.health",
    "smbc.bigcommerce.oauth",
    "smbc.bigcommerce.webhooks",
    "smbc.salesmanago.callbacks",
    "smbc.web.storefront",
    "smbc.web.monitoring_tab",
    "smbc.web.export_tab",
    "smbc.web.activity_tab",
    "smbc.web.dashboard",
    "smbc.web.settings_tabs",
]


def create_app(settings: Settings | None = None, *, start_workers: bool | None = None) -> FastAPI:
    """Build the app. Inline workers start with it when SMBC_WORKERS=inline (unless told otherwise)."""
    settings = settings or get_settings()
    run_workers = settings.workers == "inline" if start_workers is None else start_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from smbc import jobs

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

    app = FastAPI(title="SALESmanago for BigCommerce", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    # Last, so a feature's own /app/tabs/<slug> route wins over the "coming soon" placeholder.
    app.include_router(placeholder_router)

    @app.middleware("http")
    async def count_requests(request: Request, call_next) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template (not the raw path) keeps the label set small.
        HTTP_REQUESTS.labels(
            method=request.method, route=getattr(route, "path", "unmatched"), status=str(response.status_code)
        ).inc()
        return response

    return app
