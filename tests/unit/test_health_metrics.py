"""/healthz, /readyz (503 when the database or the queue is unreachable) and /metrics counters."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from smbc.core.config import Settings
from smbc.core.http_server import free_port
from smbc.db.session import Database
from smbc.web.app import create_app


def metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sample of `name` with these labels; `default` when there is none (else the test fails)."""
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    if default is not None:
        return default
    raise AssertionError(f"{name}{{{selector}}} not found")


def test_ready_when_database_and_queue_answer(settings: Settings) -> None:
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"ready": True, "database": True, "queue": True}


def test_not_ready_when_the_queue_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(update={"queue_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(broken, start_workers=False)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"ready": False, "database": True, "queue": False}
        assert client.get("/healthz").status_code == 200


def test_not_ready_when_the_database_is_unreachable(settings: Settings) -> None:
    with TestClient(create_app(settings, start_workers=False)) as client:
        runtime = client.app.state.runtime
        working = runtime.db
        runtime.db = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
        try:
            response = client.get("/readyz")
        finally:
            runtime.db.dispose()
            runtime.db = working
        assert response.status_code == 503
        assert response.json() == {"ready": False, "database": False, "queue": True}


def test_metrics_count_requests_and_refused_installs(settings: Settings) -> None:
    with TestClient(create_app(settings, start_workers=False)) as client:
        before = client.get("/metrics").text
        # Another test in this process may have counted installs of another outcome, or none yet.
        refused_before = metric(before, "smbc_installs_total", default=0.0, outcome="refused")
        client.get("/bigcommerce/auth")
        client.get("/healthz")
        after = client.get("/metrics")
        assert after.headers["content-type"].startswith("text/plain")
        assert metric(after.text, "smbc_installs_total", outcome="refused") == refused_before + 1
        assert metric(after.text, "smbc_http_requests_total", route="/bigcommerce/auth", status="400") >= 1
        assert metric(after.text, "smbc_http_requests_total", route="/healthz", status="200") >= 1
