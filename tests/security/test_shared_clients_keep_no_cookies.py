"""The process-wide HTTP clients serve every store: a cookie set on one store's call is never sent on
another's. A listener on 127.0.0.1 stands in for BigCommerce (and any remote service)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from smbc.bigcommerce.client import BigCommerceClient, shared_http
from smbc.core.http_clients import shared_client


class CookieSettingServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CookieSettingHandler)
        self.seen: list[tuple[str, str | None]] = []  # (path, Cookie header)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CookieSettingHandler(BaseHTTPRequestHandler):
    server: CookieSettingServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Cookie")))
        body = json.dumps({"data": {"id": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        tenant = self.path.split("/")[2] if self.path.startswith("/stores/") else "x"
        self.send_header("Set-Cookie", f"session={tenant}-secret; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[CookieSettingServer]:
    server = CookieSettingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_cookie_from_one_stores_call_is_not_sent_on_anothers(listener: CookieSettingServer) -> None:
    http = shared_http()
    BigCommerceClient("storeaaa", "token-a", listener.url, http=http).get("/v3/store")
    BigCommerceClient("storebbb", "token-b", listener.url, http=http).get("/v3/store")
    BigCommerceClient("storeaaa", "token-a", listener.url, http=http).get("/v3/store")
    paths = [path for path, _ in listener.seen]
    assert paths == [f"/stores/{name}/v3/store" for name in ("storeaaa", "storebbb", "storeaaa")]
    assert [cookie for _, cookie in listener.seen] == [None, None, None]
    assert len(http.cookies) == 0


def test_every_shared_client_keeps_no_cookies(listener: CookieSettingServer) -> None:
    http = shared_client("security-test-service", httpx.Client)
    http.get(listener.url + "/first")
    http.get(listener.url + "/second")
    assert [cookie for _, cookie in listener.seen] == [None, None]
