"""The fake SALESmanago on a real server, the combined Sandbox runner and `smbc sandbox`."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from typer.testing import CliRunner

from smbc.core.http_server import BackgroundServer
from smbc.sandbox.salesmanago import FakeSalesmanago
from support import require, wait_for


def require_fake_bigcommerce() -> None:
    try:
        import smbc.sandbox.bigcommerce as bigcommerce
    except ModuleNotFoundError:
        bigcommerce = None
    require(hasattr(bigcommerce, "FakeBigCommerce"), "smbc.sandbox.bigcommerce has no FakeBigCommerce yet")


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return True
    except OSError:
        return False


def plugin_login(base_url: str, email: str, password: str) -> dict:
    """The whole password login as the plugin does it, over HTTP."""
    with httpx.Client(timeout=5) as client:
        login = client.post(
            f"{base_url}/api/authorization/token", json={"username": email, "password": password}
        )
        endpoint = login.json()["endpoint"]
        integration = client.post(
            f"{endpoint}/api/account/integration", json={"token": login.json()["token"], "apiKey": "abc"}
        ).json()
        auth = {"clientId": integration["shortId"], "apiKey": "abc", "sha": integration["sha1"]}
        owners = client.post(
            f"{endpoint}/api/user/listByClient",
            json={**auth, "requestTime": int(time.time()), "owner": email},
        ).json()
    return {"endpoint": endpoint, "owners": owners}


def test_fake_salesmanago_serves_the_login_flow_over_http() -> None:
    sm = FakeSalesmanago()
    with BackgroundServer(sm.app) as server:
        sm.bind(server.url)
        result = plugin_login(server.url, sm.NORMAL.email, sm.NORMAL.password)
    assert result["endpoint"] == server.url
    assert result["owners"]["users"] == sm.NORMAL.owners


def test_sandbox_runs_both_fakes_and_points_the_app_at_them(tmp_path: Path) -> None:
    require_fake_bigcommerce()
    from smbc.sandbox import Sandbox
    from support import make_settings

    with Sandbox(
        app_url="http://127.0.0.1:8765", client_id="cid", client_secret="secret", customers=2, orders=3
    ) as sb:
        assert sb.bc_url.startswith("http://127.0.0.1:") and sb.sm_url.startswith("http://127.0.0.1:")
        assert sb.bc_url != sb.sm_url
        panel = urlsplit(sb.control_panel_url)
        assert (panel.hostname, panel.port, panel.path) == ("localhost", urlsplit(sb.bc_url).port, "/manage")
        assert port_open(sb.bc_url)
        assert plugin_login(sb.sm_url, sb.sm.NORMAL.email, sb.sm.NORMAL.password)["endpoint"] == sb.sm_url

        settings = make_settings(tmp_path, **sb.app_settings())
        assert settings.sm_default_endpoint == sb.sm_url
        assert settings.sm_v3_url == sb.sm_url
        assert settings.bc_api_url == sb.bc_url
        assert settings.bc_login_url == sb.bc_url
        assert (settings.bc_client_id, settings.bc_client_secret) == ("cid", "secret")
        bc_url, sm_url = sb.bc_url, sb.sm_url
    assert not port_open(bc_url)
    assert not port_open(sm_url)


def test_run_sandbox_prints_where_everything_is_and_stops() -> None:
    require_fake_bigcommerce()
    from smbc.core.http_server import free_port
    from smbc.sandbox.runner import run_sandbox

    lines: list[str] = []
    stop = threading.Event()
    bc_port, sm_port = free_port(), free_port()
    thread = threading.Thread(
        target=run_sandbox,
        kwargs={"echo": lines.append, "stop": stop, "bc_port": bc_port, "sm_port": sm_port, "customers": 1},
        daemon=True,
    )
    thread.start()
    try:
        wait_for(
            lambda: any("Ctrl-C" in line for line in lines), "run_sandbox to say Ctrl-C stops it", timeout=15
        )
        text = "\n".join(lines)
        assert f"http://127.0.0.1:{sm_port}" in text
        assert f"http://127.0.0.1:{bc_port}" in text
        assert "merchant@sandbox.test / sandbox-password" in text
        assert port_open(f"http://127.0.0.1:{sm_port}")
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert not port_open(f"http://127.0.0.1:{sm_port}")


def test_cli_has_the_sandbox_command_with_its_options() -> None:
    from smbc.cli.main import app

    result = CliRunner().invoke(app, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--bc-port", "--sm-port", "--customers", "--orders", "--app-url", "--client-id"):
        assert option in result.output


def test_an_account_on_its_own_server_is_reached_through_the_login_endpoint() -> None:
    sm = FakeSalesmanago()
    with BackgroundServer(sm.app) as login_server, BackgroundServer(sm.app) as account_server:
        sm.bind(login_server.url)
        sm.set_account_endpoint(sm.NORMAL.client_id, account_server.url)
        result = plugin_login(login_server.url, sm.NORMAL.email, sm.NORMAL.password)
        assert result["endpoint"] == account_server.url
        assert result["owners"]["users"] == sm.NORMAL.owners
        # A client that keeps calling the server it started at is refused there.
        with httpx.Client(timeout=5) as client:
            token = client.post(
                f"{login_server.url}/api/authorization/token",
                json={"username": sm.NORMAL.email, "password": sm.NORMAL.password},
            ).json()["token"]
            wrong = client.post(
                f"{login_server.url}/api/account/integration", json={"token": token, "apiKey": "k"}
            )
            assert wrong.json() == {"success": False, "message": ["User not authenticated"]}
            right = client.post(
                f"{account_server.url}/api/account/integration", json={"token": token, "apiKey": "k"}
            )
            auth = {
                "clientId": sm.NORMAL.client_id,
                "apiKey": "k",
                "sha": right.json()["sha1"],
                "requestTime": 1,
            }
            owners = {**auth, "owner": sm.NORMAL.email}
            assert (
                client.post(f"{login_server.url}/api/user/listByClient", json=owners).json()["success"]
                is False
            )
            assert (
                client.post(f"{account_server.url}/api/user/listByClient", json=owners).json()["success"]
                is True
            )


def test_sandbox_can_refuse_connections_and_come_back_with_its_state() -> None:
    require_fake_bigcommerce()
    from smbc.sandbox import Sandbox

    with Sandbox() as sb:
        sb.sm.add_contact(sb.sm.NORMAL.client_id, "kept@example.com")
        sb.refuse_connections("sm")
        with httpx.Client(timeout=2) as client:
            try:
                client.post(f"{sb.sm_url}/api/authorization/token", json={})
                refused = False
            except httpx.ConnectError:
                refused = True
        assert refused
        assert port_open(sb.bc_url)
        sb.accept_connections("sm")
        contacts = httpx.get(f"{sb.sm_url}/sandbox/api/accounts/{sb.sm.NORMAL.client_id}/contacts").json()
        assert [c["email"] for c in contacts] == ["kept@example.com"]
