"""The app's own root is a page, and a path no route matches is a styled 404 page; the routes that
machines call keep answering their errors in JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smbc.web.app import create_app
from support import make_settings


def test_the_root_says_what_this_is_and_where_it_opens(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "frame-ancestors" in page.headers["content-security-policy"]
    assert "SALESmanago for BigCommerce" in page.text
    assert "open it from your store's control panel, Apps" in page.text
    assert "/manage" not in page.text


def test_with_a_local_control_panel_the_root_links_to_it_escaped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bc_login_url="http://127.0.0.1:8001/a&b")
    with TestClient(create_app(settings, start_workers=False)) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert 'href="http://127.0.0.1:8001/a&amp;b/manage"' in page.text
    assert "a&b" not in page.text


@pytest.mark.parametrize("path", ["/nothing-here", "/app/nothing", "/bigcommerce/nothing"])
def test_an_unknown_path_is_a_styled_404_page(tmp_path: Path, path: str) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        page = client.get(path)
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "Page not found" in page.text
    assert "/static/app.css" in page.text


@pytest.mark.parametrize(
    "path",
    ["/webhooks/nothing", "/callbacks/nothing", "/storefront/nothing", "/healthz/nothing", "/metrics/x"],
)
def test_an_unknown_path_under_a_json_route_keeps_json(tmp_path: Path, path: str) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}


def test_a_route_that_answers_404_itself_is_unchanged(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        answer = client.post("/storefront/cart-link", json={})
        wrong_method = client.get("/webhooks/bigcommerce")
    assert "text/html" not in answer.headers["content-type"]
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "Method Not Allowed"}
