"""The Export Data tab: forms with real labels, errors at their fields, start, "one is running",
progress that refreshes itself, cancel, past exports with their counts (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, connect_account, make_app, store_row
from sqlalchemy import func, select

from smbc.core.clock import utcnow
from smbc.core.config import Settings
from smbc.engine.ledgers import SentEvent
from smbc.export.models import Export

TODAY = utcnow().date().isoformat()


@pytest.fixture
def client(backend_settings: Settings) -> Iterator[TestClient]:
    app = make_app(backend_settings)
    with TestClient(app) as test_client:
        yield test_client


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def exports(client: TestClient) -> list[Export]:
    with client.app.state.runtime.db.session() as s:
        rows = list(s.scalars(select(Export).order_by(Export.id)))
        s.expunge_all()
        return rows


def test_every_route_needs_a_session(client: TestClient) -> None:
    for method, path in [
        ("GET", "/app/tabs/export"),
        ("GET", "/app/export/status"),
        ("POST", "/app/export/contacts"),
        ("POST", "/app/export/events"),
        ("POST", "/app/export/1/cancel"),
        ("POST", "/app/export/1/resend-unconfirmed"),
    ]:
        assert client.request(method, path).status_code == 401, path


def test_the_tab_has_both_forms_with_labels(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    html = client.get("/app/tabs/export", headers=bearer(token)).text
    assert "[1] Export BigCommerce customers as Contacts" in html
    assert "[2] Export BigCommerce orders as External Events" in html
    for field in (
        "contacts_date_from",
        "contacts_date_to",
        "contacts_tags",
        "events_date_from",
        "events_date_to",
    ):
        assert f'<label for="{field}"' in html and f'id="{field}"' in html, field
    assert 'action="/app/export/contacts"' in html and 'action="/app/export/events"' in html
    assert html.count("Start export</button>") == 2 and "No export is running." in html
    assert "data-refresh" not in html  # nothing to follow


def test_wrong_dates_are_shown_at_their_fields_and_nothing_starts(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    empty = client.post("/app/export/contacts", data={"date_from": "", "date_to": ""}, headers=bearer(token))
    assert empty.status_code == 422
    assert field_error(empty.text, "contacts_date_from") == "Enter a date (YYYY-MM-DD)."
    assert 'id="contacts_date_from" name="date_from"' in empty.text and 'aria-invalid="true"' in empty.text
    backwards = client.post(
        "/app/export/events", data={"date_from": "2026-02-02", "date_to": "2026-02-01"}, headers=bearer(token)
    )
    assert field_error(backwards.text, "events_date_to") == "The end date must be on or after the start date."
    assert 'value="2026-02-02"' in backwards.text  # what was typed is kept
    future = client.post(
        "/app/export/events", data={"date_from": "2026-01-01", "date_to": "2999-01-01"}, headers=bearer(token)
    )
    assert field_error(future.text, "events_date_to") == f"Choose a day up to today ({TODAY})."
    assert exports(client) == []


def test_start_shows_progress_refreshes_and_a_second_start_explains(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    started = client.post(
        "/app/export/contacts",
        data={"date_from": "2026-01-01", "date_to": TODAY, "tags": "bc export, <b>vip</b>"},
        headers=bearer(token),
    )
    assert started.status_code == 200
    [row] = exports(client)
    assert (row.kind, row.status, row.date_from, row.tags) == (
        "contacts",
        "queued",
        date(2026, 1, 1),
        ["BC_EXPORT", "<B>VIP</B>"],
    )
    assert row.actor == "merchant@shop.test"
    assert f"Contacts export #{row.id} started" in started.text
    assert 'role="progressbar"' in started.text and 'data-refresh="2000"' in started.text
    assert f'data-smbc-post="/app/export/{row.id}/cancel"' in started.text
    assert "<b>" not in started.text.split("export-status", 1)[1]  # escaped

    again = client.post(
        "/app/export/contacts", data={"date_from": "2026-01-01", "date_to": TODAY}, headers=bearer(token)
    )
    assert again.status_code == 422 and f"#{row.id}" in again.text and "still queued" in again.text
    events = client.post(
        "/app/export/events", data={"date_from": "2026-01-01", "date_to": TODAY}, headers=bearer(token)
    )
    assert events.status_code == 200 and len(exports(client)) == 2  # the other kind may run alongside

    status = client.get("/app/export/status", headers=bearer(token)).text
    assert status.lstrip().startswith("<div") and 'data-refresh-url="/app/export/status"' in status

    cancelled = client.post(f"/app/export/{row.id}/cancel", headers=bearer(token))
    assert f"Export #{row.id} is stopping" in cancelled.text
    assert exports(client)[0].status == "cancelled"  # no worker had it: it ends at once
    assert f'id="export-row-{row.id}"' in cancelled.text
    assert "not running" in client.post(f"/app/export/{row.id}/cancel", headers=bearer(token)).text


def finished_january_events(store_id: int, **counts: object) -> Export:
    """A past events export of January 2026 with these counts."""
    return Export(
        store_id=store_id,
        kind="events",
        status="done",
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 31),
        from_utc=utcnow(),
        to_utc=utcnow(),
        finished_at=utcnow(),
        **counts,
    )


def test_past_exports_show_counts_and_why(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    store_id = store_row(client.app).id
    with client.app.state.runtime.db.session() as s:
        s.add(
            finished_january_events(
                store_id,
                done=10,
                total=10,
                sent=7,
                unconfirmed=2,
                skipped={"already sent": 2},
                failed={"refused by SALESmanago": 1},
                messages=["Batch 3: SALESmanago refused it: bad <date>"],
            )
        )
    html = client.get("/app/tabs/export", headers=bearer(token)).text
    assert "already sent: 2" in html and "refused by SALESmanago: 1" in html
    assert "7 (2 unconfirmed)" in html and "bad &lt;date&gt;" in html


def test_unconfirmed_events_can_be_sent_again_from_the_past_exports(client: TestClient) -> None:
    token = add_store(client.app)
    connect_account(client.app)
    store_id = store_row(client.app).id
    with client.app.state.runtime.db.session() as s:
        row = finished_january_events(store_id, done=5, sent=5, unconfirmed=2)
        s.add(row)
        s.flush()
        old_id = row.id
        for order_id in (101, 102):
            s.add(
                SentEvent(
                    store_id=store_id,
                    kind="PURCHASE",
                    key=str(order_id),
                    order_id=order_id,
                    state="unconfirmed",
                    claimed_by=f"export:{old_id}:2",
                )
            )
    html = client.get("/app/tabs/export", headers=bearer(token)).text
    assert f'data-smbc-post="/app/export/{old_id}/resend-unconfirmed"' in html

    answer = client.post(f"/app/export/{old_id}/resend-unconfirmed", headers=bearer(token))
    assert answer.status_code == 200
    new = exports(client)[-1]
    assert new.id != old_id and new.kind == "events" and new.status == "queued"
    assert (new.date_from, new.date_to) == (date(2026, 1, 1), date(2026, 1, 31))
    assert f"Export #{new.id} sends the unconfirmed events of export #{old_id} again." in answer.text
    with client.app.state.runtime.db.session() as s:
        assert s.scalars(select(SentEvent)).all() == []  # released: the new export sends them

    again = client.post(f"/app/export/{old_id}/resend-unconfirmed", headers=bearer(token))
    assert again.status_code == 422 and "has no unconfirmed events" in again.text
    assert len(exports(client)) == 2


def test_not_connected_and_other_stores(client: TestClient) -> None:
    token = add_store(client.app)
    html = client.get("/app/tabs/export", headers=bearer(token)).text
    assert "Log in to SALESmanago on the Account Settings tab first" in html
    refused = client.post(
        "/app/export/events", data={"date_from": "2026-01-01", "date_to": TODAY}, headers=bearer(token)
    )
    assert refused.status_code == 422 and "Log in to SALESmanago" in refused.text
    other = add_store(client.app, store_hash="other1", email="someone@other.test")
    connect_account(client.app, store_hash="other1")
    client.post(
        "/app/export/events", data={"date_from": "2026-01-01", "date_to": TODAY}, headers=bearer(other)
    )
    [row] = exports(client)
    assert "not running" in client.post(f"/app/export/{row.id}/cancel", headers=bearer(token)).text
    assert exports(client)[0].status == "queued"
    with client.app.state.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Export)) == 1
    assert f"#{row.id}" not in client.get("/app/tabs/export", headers=bearer(token)).text
