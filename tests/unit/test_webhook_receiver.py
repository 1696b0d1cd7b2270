"""POST /webhooks/bigcommerce: one fixture per scope (tests/fixtures/webhooks/<scope>.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from smbc.bigcommerce.webhook_payloads import parse_delivery
from smbc.core import jobs
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.realtime.inbox import MAX_BODY_BYTES
from smbc.realtime.models import WebhookDelivery
from smbc.stores.hooks import NEEDED_SCOPES, SECRET_HEADER
from smbc.web.app import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
STORE = "abc123"
SECRET = "s3cret-value"


def fixture(name: str, store_hash: str = STORE) -> dict[str, Any]:
    text = (FIXTURES / f"{name}.json").read_text().replace("{store_hash}", store_hash)
    return json.loads(text)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, start_workers=False)
    with TestClient(app) as test_client:
        db = app.state.runtime.db
        with db.session() as s:
            s.add(Store(hash=STORE, store_id="1025646", webhook_secret=SECRET, access_token="t"))
            s.add(Store(hash="gone1", status="uninstalled", webhook_secret=SECRET))
        jobs.huey.flush()
        yield test_client


def post(client: TestClient, body: Any, secret: str | None = SECRET) -> Any:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/webhooks/bigcommerce", content=content, headers=headers)


def rows(client: TestClient) -> list[WebhookDelivery]:
    with client.app.state.runtime.db.session() as s:
        return list(s.scalars(select(WebhookDelivery)).all())


def assert_accepted(client: TestClient, name: str) -> None:
    body = fixture(name)
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    [row] = rows(client)
    assert (row.scope, row.hash, row.created_at) == (body["scope"], body["hash"], body["created_at"])
    assert row.status == "pending" and row.resource_id
    client.app.state.inbox_group_commit.wait_for_messages(timeout=30)  # sent just after the answer
    assert jobs.huey.pending_count() == 1  # enqueued, not processed in the handler
    with client.app.state.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RemoteCall)) == 0  # no remote call


def test_customer_created(client: TestClient) -> None:
    assert_accepted(client, "store_customer_created")


def test_customer_updated(client: TestClient) -> None:
    assert_accepted(client, "store_customer_updated")


def test_customer_deleted(client: TestClient) -> None:
    assert_accepted(client, "store_customer_deleted")


def test_address_created(client: TestClient) -> None:
    assert_accepted(client, "store_customer_address_created")


def test_address_updated(client: TestClient) -> None:
    assert_accepted(client, "store_customer_address_updated")


def test_address_deleted(client: TestClient) -> None:
    assert_accepted(client, "store_customer_address_deleted")


def test_subscriber_created(client: TestClient) -> None:
    assert_accepted(client, "store_subscriber_created")


def test_subscriber_updated(client: TestClient) -> None:
    assert_accepted(client, "store_subscriber_updated")


def test_subscriber_deleted(client: TestClient) -> None:
    assert_accepted(client, "store_subscriber_deleted")


def test_order_created(client: TestClient) -> None:
    assert_accepted(client, "store_order_created")


def test_order_status_updated(client: TestClient) -> None:
    assert_accepted(client, "store_order_statusUpdated")


def test_order_refund_created(client: TestClient) -> None:
    assert_accepted(client, "store_order_refund_created")


def test_cart_created(client: TestClient) -> None:
    assert_accepted(client, "store_cart_created")


def test_cart_updated(client: TestClient) -> None:
    assert_accepted(client, "store_cart_updated")


def test_cart_deleted(client: TestClient) -> None:
    assert_accepted(client, "store_cart_deleted")


def test_cart_converted(client: TestClient) -> None:
    assert_accepted(client, "store_cart_converted")


def test_channel_created(client: TestClient) -> None:
    assert_accepted(client, "store_channel_created")


def test_channel_updated(client: TestClient) -> None:
    assert_accepted(client, "store_channel_updated")


def test_every_needed_scope_has_a_fixture() -> None:
    assert sorted(s.replace("/", "_") for s in NEEDED_SCOPES) == sorted(
        p.stem for p in FIXTURES.glob("*.json")
    )


def test_fixtures_have_the_documented_shape(openapi_dir: Path) -> None:
    """Same keys as BigCommerce's sample payload of the same kind of event (data included)."""
    samples = openapi_dir / "webhook-payloads"
    for path in FIXTURES.glob("*.json"):
        sample_path = samples / path.name
        if not sample_path.exists() or not sample_path.read_text().strip():
            continue
        ours, theirs = json.loads(path.read_text()), json.loads(sample_path.read_text())
        assert ours.keys() == theirs.keys(), path.name
        assert ours["data"].keys() == theirs["data"].keys(), path.name
        parse_delivery(sample_path.read_text().replace("{store_hash}", "abc").encode())


def test_the_same_delivery_three_times_is_recorded_once(client: TestClient) -> None:
    body = fixture("store_order_created")
    assert [post(client, body).json()["result"] for _ in range(3)] == ["accepted", "duplicate", "duplicate"]
    client.app.state.inbox_group_commit.wait_for_messages(timeout=30)
    assert len(rows(client)) == 1 and jobs.huey.pending_count() == 1


def test_same_hash_at_another_time_is_a_new_delivery(client: TestClient) -> None:
    body = fixture("store_cart_updated")
    post(client, body)
    post(client, {**body, "created_at": body["created_at"] + 5})
    assert len(rows(client)) == 2


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
def test_wrong_or_missing_secret_is_401_and_stores_nothing(client: TestClient, secret: str | None) -> None:
    assert post(client, fixture("store_order_created"), secret=secret).status_code == 401
    assert rows(client) == []


def test_a_new_webhook_secret_is_checked_from_the_next_delivery(client: TestClient) -> None:
    body = fixture("store_order_created")
    assert post(client, body).status_code == 200  # the secret as it was, decrypted and remembered
    with client.app.state.runtime.db.session() as s:
        s.scalars(select(Store).where(Store.hash == STORE)).one().webhook_secret = "n3w-secret"
    later = {**body, "created_at": body["created_at"] + 5}
    assert post(client, later).status_code == 401
    assert post(client, later, secret="n3w-secret").status_code == 200
    assert len(rows(client)) == 2


def _metric(result: str) -> float:
    return REGISTRY.get_sample_value("smbc_webhook_deliveries_total", {"result": result}) or 0.0


def test_unknown_store_is_dropped_with_2xx_and_counted(client: TestClient) -> None:
    before = _metric("dropped_unknown_store")
    answer = post(client, fixture("store_order_created", store_hash="nostore9"), secret=None)
    assert answer.status_code == 200 and rows(client) == []
    assert _metric("dropped_unknown_store") == before + 1


def test_uninstalled_store_is_dropped_with_2xx(client: TestClient) -> None:
    before = _metric("dropped_uninstalled")
    assert post(client, fixture("store_order_created", store_hash="gone1")).status_code == 200
    assert rows(client) == [] and _metric("dropped_uninstalled") == before + 1


def test_body_over_256_kb_is_413(client: TestClient) -> None:
    body = fixture("store_order_created")
    body["padding"] = "x" * MAX_BODY_BYTES
    assert post(client, body).status_code == 413 and rows(client) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("scope"), "scope"),
        (lambda b: b.update(producer="shops/abc123"), "producer"),
        (lambda b: b.update(created_at="yesterday"), "created_at"),
        (lambda b: b["data"].update(id="not-a-number"), "data.id"),
        (lambda b: b["data"].pop("type"), "data.type"),
    ],
)
def test_not_the_documented_shape_is_400_with_a_message(client: TestClient, mutate, message: str) -> None:
    body = fixture("store_order_created")
    mutate(body)
    answer = post(client, body)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert rows(client) == []


def test_not_json_is_400(client: TestClient) -> None:
    answer = post(client, b"{not json")
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


def http_requests(method: str, status: str) -> float:
    labels = {"method": method, "route": "/webhooks/bigcommerce", "status": status}
    return REGISTRY.get_sample_value("smbc_http_requests_total", labels) or 0.0


def test_answers_are_counted_under_the_route_and_another_method_is_405(client: TestClient) -> None:
    accepted, refused = http_requests("POST", "200"), http_requests("GET", "405")
    assert post(client, fixture("store_order_created")).status_code == 200
    answer = client.get("/webhooks/bigcommerce")
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")
    assert http_requests("POST", "200") == accepted + 1 and http_requests("GET", "405") == refused + 1


def test_a_failure_in_the_receiver_is_a_counted_500_as_anywhere_else(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_asgi: Any) -> Any:
        raise RuntimeError("a bug")

    # Deliveries are taken ahead of FastAPI's middleware (smbc.web.app.App): same answer
    monkeypatch.setattr("smbc.web.app.receive_post", broken)
    failed = http_requests("POST", "500")
    with TestClient(client.app, raise_server_exceptions=False) as unchecked:
        answer = post(unchecked, fixture("store_order_created"))
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    assert http_requests("POST", "500") == failed + 1
