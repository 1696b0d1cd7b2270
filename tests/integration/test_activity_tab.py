"""The Activity tab with a minted session token: deliveries, calls, Retry, pause banner, escaping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, make_app
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.engine.ledgers import SentEvent
from smbc.realtime.models import WebhookDelivery


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings)) as test_client:
        yield test_client


def add_delivery(app: FastAPI, store_hash: str, **fields: object) -> int:
    with app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == store_hash))
        values: dict[str, object] = {
            "scope": "store/customer/updated",
            "hash": f"h{fields.get('resource_id', '1')}",
            "created_at": 1_700_000_000,
            "resource_id": "1",
            "payload": {},
        }
        values.update(fields)
        row = WebhookDelivery(store_id=store.id, **values)
        s.add(row)
        s.flush()
        return row.id


def delivery_status(app: FastAPI, delivery_id: int) -> str:
    with app.state.runtime.db.session() as s:
        return s.get(WebhookDelivery, delivery_id).status


def test_routes_need_a_session(client: TestClient) -> None:
    add_store(client.app)
    delivery_id = add_delivery(client.app, "abc123", status="failed")
    assert client.get("/app/tabs/activity").status_code == 401
    assert client.post(f"/app/activity/deliveries/{delivery_id}/retry").status_code == 401
    assert delivery_status(client.app, delivery_id) == "failed"


def test_shows_failed_delivery_with_reason_and_calls(client: TestClient) -> None:
    token = add_store(client.app)
    add_delivery(
        client.app, "abc123", status="failed", resource_id="77", reason="contact rejected", attempts=3
    )
    add_delivery(client.app, "abc123", status="done", resource_id="78", scope="store/order/created")
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        s.add(
            RemoteCall(
                store_id=store.id,
                service="salesmanago",
                method="POST",
                endpoint="/api/contact/upsert",
                outcome="rejected",
                status=400,
                duration_ms=123,
                message="Email invalid",
            )
        )
    response = client.get("/app/tabs/activity", headers=bearer(token))
    assert response.status_code == 200
    html = response.text
    assert "contact rejected" in html and "store/order/created" in html
    assert "/api/contact/upsert" in html and "Email invalid" in html and "123" in html
    assert 'data-tab="/app/tabs/activity?failed=1"' in html
    assert html.count("data-smbc-post=") == 1  # Retry only on the failed row

    failed = client.get("/app/tabs/activity?failed=1", headers=bearer(token)).text
    assert "contact rejected" in failed and "store/order/created" not in failed


def test_pause_reason_banner(client: TestClient) -> None:
    token = add_store(client.app)
    assert "banner--warning" not in client.get("/app/tabs/activity", headers=bearer(token)).text
    with client.app.state.runtime.db.session() as s:
        s.scalar(select(Store).where(Store.hash == "abc123")).sync_paused_reason = "salesmanago_logout"
    html = client.get("/app/tabs/activity", headers=bearer(token)).text
    assert "banner--warning" in html and "salesmanago_logout" in html


def test_retry_requeues_only_own_store_delivery(client: TestClient) -> None:
    token = add_store(client.app)
    add_store(client.app, store_hash="other9", email="other@shop.test")
    mine = add_delivery(client.app, "abc123", status="failed", reason="timeout")
    theirs = add_delivery(client.app, "other9", status="failed", reason="timeout")

    response = client.post(f"/app/activity/deliveries/{mine}/retry", headers=bearer(token))
    assert response.status_code == 200
    assert "banner--success" in response.text
    assert delivery_status(client.app, mine) == "pending"

    assert client.post(f"/app/activity/deliveries/{theirs}/retry", headers=bearer(token)).status_code == 404
    assert client.post("/app/activity/deliveries/999999/retry", headers=bearer(token)).status_code == 404
    assert delivery_status(client.app, theirs) == "failed"
    # No action but retry and resend on a delivery: nothing changes.
    assert client.post(f"/app/activity/deliveries/{mine}/delete", headers=bearer(token)).status_code == 404
    assert delivery_status(client.app, mine) == "pending"


def test_hostile_error_message_is_escaped(client: TestClient) -> None:
    token = add_store(client.app)
    add_delivery(client.app, "abc123", status="failed", last_error="<script>alert(1)</script>")
    html = client.get("/app/tabs/activity", headers=bearer(token)).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_send_again_only_on_a_delivery_with_an_unconfirmed_event_and_only_in_its_store(
    client: TestClient,
) -> None:
    token = add_store(client.app)
    add_store(client.app, store_hash="other9", email="other@shop.test")
    mine = add_delivery(client.app, "abc123", status="done", scope="store/order/created", resource_id="50")
    sent = add_delivery(client.app, "abc123", status="done", scope="store/order/created", resource_id="51")
    theirs = add_delivery(client.app, "other9", status="done", scope="store/order/created", resource_id="50")
    with client.app.state.runtime.db.session() as s:
        for store_hash, delivery_id, order_id, state in (
            ("abc123", mine, 50, "unconfirmed"),
            ("abc123", sent, 51, "sent"),
            ("other9", theirs, 50, "unconfirmed"),
        ):
            store = s.scalar(select(Store).where(Store.hash == store_hash))
            s.add(
                SentEvent(
                    store_id=store.id,
                    kind="PURCHASE",
                    key=str(order_id),
                    order_id=order_id,
                    state=state,
                    claimed_by=f"delivery:{delivery_id}",
                )
            )
    html = client.get("/app/tabs/activity", headers=bearer(token)).text
    assert f"/app/activity/deliveries/{mine}/resend" in html
    assert html.count("Send again</button>") == 1

    response = client.post(f"/app/activity/deliveries/{sent}/resend", headers=bearer(token))
    assert response.status_code == 200 and "has no unconfirmed event" in response.text
    assert client.post(f"/app/activity/deliveries/{theirs}/resend", headers=bearer(token)).status_code == 404
    response = client.post(f"/app/activity/deliveries/{mine}/resend", headers=bearer(token))
    assert response.status_code == 200 and "banner--success" in response.text
    assert delivery_status(client.app, mine) == "pending"
    assert delivery_status(client.app, theirs) == "done"
    with client.app.state.runtime.db.session() as s:
        assert sorted(s.scalars(select(SentEvent.claimed_by))) == [f"delivery:{sent}", f"delivery:{theirs}"]
