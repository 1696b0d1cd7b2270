"""What a hardened app exposes: /metrics only with SMBC_METRICS_TOKEN (when set), no /openapi.json,
and pages that only a BigCommerce control panel (or the configured local one) may frame."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smbc.web.app import create_app
from smbc.web.templating import frame_ancestors
from support import make_settings

TOKEN = "metrics-token-0123456789"


def test_metrics_need_the_bearer_token_when_one_is_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, metrics_token=TOKEN)
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert "smbc_http_requests_total" in answer.text


def test_metrics_stay_open_without_a_token(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_no_schema_or_interactive_docs(tmp_path: Path, path: str) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        assert client.get(path).status_code == 404


def _page_csp(tmp_path: Path, **overrides: object) -> str:
    settings = make_settings(tmp_path, **overrides)
    with TestClient(create_app(settings, start_workers=False)) as client:
        page = client.get("/bigcommerce/load", params={"signed_payload_jwt": "not-a-jwt"})
    assert page.status_code >= 400 and "text/html" in page.headers["content-type"]
    return page.headers["content-security-policy"]


def _ancestors(csp: str) -> list[str]:
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "frame-ancestors" in directives, csp
    return directives["frame-ancestors"].split()[1:]


def test_pages_may_be_framed_only_by_the_bigcommerce_control_panel(tmp_path: Path) -> None:
    ancestors = _ancestors(_page_csp(tmp_path))
    assert ancestors == ["https://*.bigcommerce.com", "https://*.mybigcommerce.com"]


def test_a_local_control_panel_named_by_the_login_url_may_frame_them(tmp_path: Path) -> None:
    ancestors = _ancestors(_page_csp(tmp_path, bc_login_url="http://127.0.0.1:8100"))
    # The sandbox's control panel is the other loopback name on the same port (another site).
    assert ancestors == [
        "https://*.bigcommerce.com",
        "https://*.mybigcommerce.com",
        "http://127.0.0.1:8100",
        "http://localhost:8100",
    ]


def test_frame_ancestors_never_allow_everyone() -> None:
    for url in ("https://login.bigcommerce.com", "http://127.0.0.1:8100", "https://bc.example.test"):
        origins = frame_ancestors(url).split()
        assert "*" not in origins and "'none'" not in origins
        assert all(o.startswith(("https://", "http://127.0.0.1", "http://localhost")) for o in origins)
    assert frame_ancestors("https://bc.example.test").split()[-1] == "https://bc.example.test"
