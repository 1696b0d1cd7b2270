"""GET /app/activity/search: the session's store only, errors next to the field (422), escaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, make_app
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.db.models import Store
from smbc.realtime.models import WebhookDelivery


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings)) as test_client:
        yield test_client


def _delivery(client: TestClient, store_hash: str, resource_id: str, reason: str) -> None:
    with client.app.state.runtime.db.session() as s:
        store_id = s.scalar(select(Store.id).where(Store.hash == store_hash))
        s.add(
            WebhookDelivery(
                store_id=store_id,
                scope="store/cart/updated",
                hash=f"h-{store_hash}",
                created_at=1_700_000_000,
                resource_id=resource_id,
                payload={},
                status="skipped",
                reason=reason,
            )
        )


def test_search_answers_for_the_sessions_store_only_and_escapes(client: TestClient) -> None:
    token = add_store(client.app)
    add_store(client.app, "other1", email="someone@else.test")
    _delivery(client, "abc123", "c-1", "<script>alert(1)</script>")
    _delivery(client, "other1", "c-1", "the other store's secret reason")

    assert client.get("/app/activity/search?kind=cart&value=c-1").status_code == 401
    answer = client.get("/app/activity/search?kind=cart&value=c-1", headers=bearer(token))

    assert answer.status_code == 200
    assert "Everything about cart c-1" in answer.text
    assert "skipped because &lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert "<script>alert" not in answer.text and "other store" not in answer.text


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("kind=order&value=12x", "order: must be an order id (a whole number)"),
        ("kind=email&value=", "Enter what to look for."),
        ("kind=sku&value=1", "search by one of: order, customer, email, cart"),
    ],
)
def test_a_bad_search_is_refused_next_to_the_field(client: TestClient, query: str, error: str) -> None:
    token = add_store(client.app)
    answer = client.get(f"/app/activity/search?{query}", headers=bearer(token))
    assert answer.status_code == 422
    assert f'<p class="field-error" id="search-value-error">{error}</p>' in answer.text
    assert 'aria-invalid="true" aria-describedby="search-value-error"' in answer.text
    assert 'id="search-result"' not in answer.text


def test_the_tab_carries_the_search_box(client: TestClient) -> None:
    token = add_store(client.app)
    html = client.get("/app/tabs/activity", headers=bearer(token)).text
    assert 'action="/app/activity/search"' in html and '<label for="search-value">' in html
