"""Request bodies from outside (findings 5 and 6). SALESmanago's callbacks check the token in the
address before reading any body, read at most the webhook receiver's limit and refuse multipart; a
deeply nested JSON body is a 400 with a message on the webhook, callback and cart-link routes (it
was a 500: RecursionError is not a ValueError). A meter around the app counts the body bytes the app
pulled, so "not read" is measured, not assumed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smbc.consent.models import ConsentWriteBack
from smbc.core.config import Settings
from smbc.db.models import Store
from smbc.realtime.inbox import MAX_BODY_BYTES
from smbc.web.app import create_app

SHOP = "https://shop.example.com"
TOKEN = "callback-token-0123456789"
OPT_OUT = "/callbacks/salesmanago/opt-out"
MEGABYTE = 1024 * 1024


class BodyMeter:
    """An ASGI wrapper counting the request-body bytes the app asked for."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pulled = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.pulled += len(message.get("body", b""))
            return message

        await self.app(scope, counting_receive, send)


@pytest.fixture
def metered(settings: Settings) -> Iterator[tuple[TestClient, BodyMeter]]:
    meter = BodyMeter(create_app(settings, start_workers=False))
    with TestClient(meter, raise_server_exceptions=False) as client:
        with meter.app.state.runtime.db.session() as s:
            s.add(
                Store(
                    hash="abc123",
                    status="installed",
                    access_token="t",
                    callback_secret=TOKEN,
                    channels=[{"id": 1, "type": "storefront", "status": "active"}],
                    sites=[{"id": 1000, "channel_id": 1, "url": SHOP}],
                    info={},
                )
            )
        meter.pulled = 0
        yield client, meter


def write_backs(meter: BodyMeter) -> int:
    with meter.app.state.runtime.db.session() as s:
        return s.scalar(select(func.count()).select_from(ConsentWriteBack)) or 0


def megabytes(count: int) -> Iterator[bytes]:
    """A JSON body streamed a megabyte at a time (no Content-Length): produced only when pulled."""
    yield b'{"email": "someone@example.com", "padding": "'
    for _ in range(count):
        yield b"x" * MEGABYTE
    yield b'"}'


def post_streamed(app: Any, path: str, query: str, chunks: Iterator[bytes]) -> tuple[int, int]:
    """POST a chunked body straight to the ASGI app (the test client would read it whole first);
    the answer's status and how many body bytes the app pulled."""
    pulled = 0
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        pulled += len(chunk or b"")
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    # A thread of its own: a browser test earlier in this worker may leave an event loop running here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return statuses[0], pulled


def test_a_callback_with_a_wrong_token_reads_no_body(metered: tuple[TestClient, BodyMeter]) -> None:
    client, meter = metered
    for params in ({"store": "abc123", "token": "wrong"}, {"store": "abc123"}, {}):
        answer = client.post(
            OPT_OUT, params=params, content=megabytes(20), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 403, answer.text
        assert answer.json() == {"success": False, "message": "unknown store or wrong token"}
    # The token in the body does not count: the address carries it, and nothing was read to find it.
    answer = client.post(OPT_OUT, json={"email": "someone@example.com", "store": "abc123", "token": TOKEN})
    assert answer.status_code == 403
    assert meter.pulled == 0 and write_backs(meter) == 0


def test_a_callback_body_over_the_limit_is_413_and_read_no_further(
    metered: tuple[TestClient, BodyMeter],
) -> None:
    client, meter = metered
    address = {"store": "abc123", "token": TOKEN}
    declared = client.post(
        OPT_OUT, params=address, json={"email": "someone@example.com", "padding": "x" * MAX_BODY_BYTES}
    )
    assert declared.status_code == 413 and str(MAX_BODY_BYTES) in declared.json()["message"]
    assert meter.pulled == 0  # Content-Length said too much: nothing read
    # No Content-Length (chunked): reading stops at the first chunk past the limit.
    status, pulled = post_streamed(meter.app, OPT_OUT, "store=abc123&token=" + TOKEN, megabytes(20))
    assert status == 413 and pulled <= MAX_BODY_BYTES + MEGABYTE
    assert write_backs(meter) == 0
    # Within the limit, with the right token, the e-mail in the body is used.
    fine = client.post(OPT_OUT, params=address, json={"email": "someone@example.com"})
    assert fine.status_code == 200, fine.text
    assert write_backs(meter) == 1


def test_a_multipart_callback_is_415_and_not_read(metered: tuple[TestClient, BodyMeter]) -> None:
    client, meter = metered
    answer = client.post(
        OPT_OUT,
        params={"store": "abc123", "token": TOKEN},
        data={"email": "someone@example.com"},
        files={"upload": ("big.bin", b"x" * MEGABYTE, "application/octet-stream")},
    )
    assert answer.status_code == 415 and "multipart" in answer.json()["message"]
    assert meter.pulled == 0 and write_backs(meter) == 0


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_json_is_400_on_the_webhook_callback_and_cart_link_routes(
    metered: tuple[TestClient, BodyMeter],
) -> None:
    client, meter = metered
    json_header = {"Content-Type": "application/json"}
    webhook = client.post("/webhooks/bigcommerce", content=nested(50_000), headers=json_header)
    assert webhook.status_code == 400, webhook.text
    assert "nested deeper than" in webhook.json()["error"]
    callback = client.post(
        OPT_OUT, params={"store": "abc123", "token": TOKEN}, content=nested(50_000), headers=json_header
    )
    assert callback.status_code == 400, callback.text
    assert "nested deeper than" in callback.json()["message"]
    cart_link = client.post(
        "/storefront/cart-link?store=abc123",
        content=nested(1020),  # 2,040 bytes: within the route's 2,048
        headers={**json_header, "Origin": SHOP},
    )
    assert cart_link.status_code == 400, cart_link.text
    assert "nested deeper than" in cart_link.json()["error"]
    assert write_backs(meter) == 0
